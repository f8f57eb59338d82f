package supervisor

// Signals: what each one sent to the supervisor does (Gunicorn's set).

import (
	"os"
	"strconv"
	"syscall"
)

// signal handles a signal sent to the supervisor.
func (s *Supervisor) signal(sig os.Signal) {
	switch sig {
	case syscall.SIGHUP:
		s.reload()
	case syscall.SIGTERM, syscall.SIGQUIT:
		if s.upgradeQuit(sig) {
			return
		}
		if sig == syscall.SIGQUIT {
			s.log.Info("SIGQUIT: fast stop")
			s.stop(true)
			return
		}
		s.log.Info("SIGTERM: graceful stop", "graceful_timeout", s.cfg.GracefulTimeout, "shutdown_delay", s.cfg.ShutdownDelay)
		s.stop(false)
	case syscall.SIGINT:
		s.log.Info("SIGINT: fast stop")
		s.stop(true)
	case syscall.SIGUSR1:
		s.log.Info("SIGUSR1: reopening log files")
		if s.o.ReopenLogs != nil {
			s.o.ReopenLogs()
		}
		s.chownLogs(s.cfg)
		s.log.Info("log files reopened") // the first line of the new file
		for _, g := range s.live() {
			g.cmd.Process.Signal(syscall.SIGUSR1) //nolint:errcheck // gone already is fine
		}
	case syscall.SIGUSR2:
		s.binaryUpgrade()
	case syscall.SIGTTIN, syscall.SIGTTOU:
		d := 1
		if sig == syscall.SIGTTOU {
			d = -1
		}
		if s.stopping {
			return
		}
		if s.cfg.Loops()+s.delta+d < 1 {
			s.log.Warn(sigName(sig) + ": already at one event loop")
			return
		}
		s.delta += d
		s.log.Info(sigName(sig)+": changing the number of event loops until the next reload, which returns to workers "+
			"(set workers in the config to keep a count)", "loops", s.cfg.Loops()+s.delta, "workers", s.cfg.Loops())
		s.replace("loops " + strconv.Itoa(s.cfg.Loops()+s.delta))
	}
}

// sigName is the name operators use (Go's String is "stopped (tty
// input)" for SIGTTIN).
func sigName(sig os.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGTTIN:
		return "SIGTTIN"
	case syscall.SIGTTOU:
		return "SIGTTOU"
	}
	return sig.String()
}
