package supervisor

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/asyncd/asyncd/internal/bind"
	"github.com/asyncd/asyncd/loop"
)

// upgradeState is a supervisor's part in a binary upgrade (SIGUSR2): as the
// old supervisor (upgrader, upgradeR, handedOver) or as the new one
// (upgrade).
type upgradeState struct {
	// upgrade is the write end of the pipe to the old supervisor, in a
	// supervisor started by an upgrade, until its first generation serves.
	upgrade *os.File
	// upgrader is the new supervisor this one started, until it reports.
	upgrader *exec.Cmd
	// upgradeR receives the new supervisor's answer: "READY" or "EXIT".
	upgradeR chan string
	// handedOver: the new supervisor serves; this one leaves.
	handedOver bool
}

// binaryUpgrade starts the binary on disk (possibly a new version) as a new
// supervisor that inherits the sockets; this one leaves once the new one
// reports its serving process ready, as nginx and Gunicorn do on USR2.
func (s *Supervisor) binaryUpgrade() {
	if s.upgrader != nil {
		s.log.Warn("SIGUSR2: a binary upgrade is already in progress", "new_pid", s.upgrader.Process.Pid)
		return
	}
	if s.stopping {
		return
	}
	if s.upgrade != nil {
		s.log.Warn("SIGUSR2: this supervisor is itself an upgrade that does not serve yet; try again once it does")
		return
	}
	r, w, err := os.Pipe()
	if err != nil {
		s.log.Error("SIGUSR2: binary upgrade failed; still serving", "error", err.Error())
		return
	}
	// As Gunicorn: the old supervisor's pidfile becomes PIDFILE.oldbin;
	// the new one writes PIDFILE once it serves.
	s.renamePidfile(s.cfg.PidFile, oldbin(s.cfg.PidFile))
	files, lenv := s.sockets.Export()
	mfiles, menv := s.metrics.ExportAt(bind.EnvMetrics, 3+len(files))
	files = append(append([]*os.File{}, files...), mfiles...)
	cmd := exec.Command(s.exe, s.o.Args...)
	cmd.ExtraFiles = append(files, w)
	cmd.Stdout, cmd.Stderr = s.o.Stdout, s.o.Stderr
	// The directory asyncd was started in, so that a relative -c path
	// names the same file.
	cmd.Dir = s.origDir
	cmd.Env = upgradeEnv(os.Environ(), lenv, menv, s.externalEnv(), EnvUpgradeFD+"="+strconv.Itoa(3+len(files)))
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		s.renamePidfile(oldbin(s.cfg.PidFile), s.cfg.PidFile)
		s.log.Error("SIGUSR2: binary upgrade failed; still serving", "binary", s.exe, "error", err.Error())
		return
	}
	w.Close()
	s.upgrader = cmd
	s.log.Info("SIGUSR2: binary upgrade: new supervisor started", "binary", s.exe, "new_pid", cmd.Process.Pid)
	go func() {
		buf := make([]byte, 64)
		n, _ := r.Read(buf)
		r.Close()
		msg := strings.TrimSpace(string(buf[:n]))
		if msg == "" {
			msg = "EXIT"
		}
		s.upgradeR <- msg
	}()
}

// upgradeEnv is the new supervisor's environment: this one's, minus
// internal variables, and minus WATCHDOG_PID (it names this process; the
// new one must send the watchdog pings once it is the main process).
// NOTIFY_SOCKET and WATCHDOG_USEC stay, and so does what a registered
// backend reads (loop.ReadsEnv: uring.ProbeFailEnv), which the operator set
// for every generation.
func upgradeEnv(environ []string, extra ...string) []string {
	var out []string
	for _, kv := range environ {
		if loop.ReadsEnv(kv) {
			out = append(out, kv)
			continue
		}
		if strings.HasPrefix(kv, "ASYNCD_INTERNAL_") || strings.HasPrefix(kv, "WATCHDOG_PID=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// upgraded handles the new supervisor's answer: READY (this one hands over
// and leaves) or its exit before that (this one carries on).
func (s *Supervisor) upgraded(msg string) {
	cmd := s.upgrader
	s.upgrader = nil
	if cmd == nil {
		return
	}
	if msg != "READY" {
		go cmd.Wait() //nolint:errcheck // reap it; its own log says why it stopped
		s.renamePidfile(oldbin(s.cfg.PidFile), s.cfg.PidFile)
		if !s.stopping {
			s.log.Error("SIGUSR2: the new supervisor exited before it was ready; still serving", "binary", s.exe,
				"new_pid", cmd.Process.Pid)
		}
		return
	}
	newPID := cmd.Process.Pid
	if s.stopping {
		// Told to stop while the upgrade was under way: it got the same
		// signal; do not hand over.
		go cmd.Wait() //nolint:errcheck // reap it
		return
	}
	s.log.Info("SIGUSR2: the new supervisor is serving; this one drains and leaves", "new_pid", newPID)
	s.handedOver = true
	s.owner = false
	// systemd accepts notifications from the main process only (the
	// default NotifyAccess=main): this one names its successor.
	s.notify.send(fmt.Sprintf("MAINPID=%d\nREADY=1\nSTATUS=upgraded to pid %d", newPID, newPID)) //nolint:errcheck // nothing to do without systemd
	// The new supervisor is our child: let it outlive us (it is reparented).
	go cmd.Wait() //nolint:errcheck // returns once it exits, if we are still here
	s.stopping = true
	s.queued = ""
	s.restartAt = time.Time{}
	for _, g := range s.live() {
		s.drain(g, syscall.SIGHUP)
	}
	s.cur, s.pending = nil, nil
}

// takeOver completes a binary upgrade on the new supervisor's side: its
// first generation serves, so the old supervisor may leave.
func (s *Supervisor) takeOver() {
	io.WriteString(s.upgrade, "READY\n") //nolint:errcheck // the old one gone: nothing to tell
	s.upgrade.Close()
	s.upgrade = nil
	s.owner = true
	s.log.Info("binary upgrade: this supervisor took over", "pid", os.Getpid(), "old_pid", os.Getppid())
	// Also tell systemd directly; with NotifyAccess=main it listens to the
	// old supervisor's MAINPID message instead.
	s.notify.send(fmt.Sprintf("MAINPID=%d", os.Getpid())) //nolint:errcheck // nothing to do without systemd
}

// upgradeQuit handles SIGTERM and SIGQUIT sent to an old supervisor during
// a binary upgrade, and reports whether it did. Gunicorn's upgrade scripts
// follow USR2 with kill -QUIT $(cat PIDFILE.oldbin) to make the old master
// leave while the new one serves: SIGQUIT here never stops the new
// supervisor nor cuts requests short; this one leaves once the new one
// serves (at once if it already does), its generation draining within
// graceful_timeout. SIGTERM after the hand-over is the same (systemd's
// stop signal to a leaving main process); before it, SIGTERM stops both,
// as for any stop. SIGINT always stops fast.
func (s *Supervisor) upgradeQuit(sig os.Signal) bool {
	switch {
	case s.handedOver:
		s.log.Info(sigName(sig)+": this supervisor already hands over to the upgraded one; its serving process drains",
			"graceful_timeout", s.cfg.GracefulTimeout)
		return true
	case s.upgrader != nil && sig == syscall.SIGQUIT:
		s.log.Info("SIGQUIT during a binary upgrade: this supervisor leaves once the new one serves "+
			"(if the new one fails first, this one keeps serving)", "new_pid", s.upgrader.Process.Pid)
		return true
	}
	return false
}
