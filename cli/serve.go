package cli

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/asyncd/asyncd/internal/bind"
	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/procstate"
	"github.com/asyncd/asyncd/internal/serving"
	"github.com/asyncd/asyncd/internal/supervisor"
	"golang.org/x/sys/unix"
)

// serve runs the serving process the supervisor started: SIGTERM stops it
// gracefully (readiness off, shutdown_delay, then drain; a second SIGTERM
// skips the rest of the delay), SIGHUP drains it at once (a new generation
// is already serving, and serves metrics_bind too), SIGINT/SIGQUIT stop it
// fast (also during the delay) and SIGUSR1 reopens its log files, the access
// log included.
func serve(cfg *config.Config, logs *errorLog) error {
	log := logs.Logger
	// The supervisor put this process in its own process group, so a
	// terminal would stop it with SIGTTOU for writing a log line (stty
	// tostop) and SIGTTIN/SIGTTOU/SIGUSR2 sent here by mistake would stop
	// or kill it: they only mean something to the supervisor.
	signal.Ignore(syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR2)
	// Runtime crash output (fatal errors, the goroutine dump of SIGABRT
	// after a missed heartbeat) goes to fd 2: make that the error log.
	logs.stderrToFile()

	set, err := bind.Inherited(os.Getenv(bind.EnvVar))
	if err != nil {
		return err
	}
	status := supervisor.OpenStatus()
	gen, _ := strconv.ParseInt(os.Getenv(supervisor.EnvGeneration), 10, 64)
	rel, _ := strconv.ParseInt(os.Getenv(supervisor.EnvReloads), 10, 64)
	rst, _ := strconv.ParseInt(os.Getenv(supervisor.EnvRestarts), 10, 64)
	procstate.SetLineage(gen, rel, rst)

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	obs, err := openObservability(cfg, log)
	if err != nil {
		return err
	}
	defer obs.Close() // after the loops stopped: the last lines are written
	p, err := serving.New(serving.Options{Config: cfg, Sockets: set, Logger: log, Observer: obs.observer})
	if err != nil {
		return err
	}
	p.OnReopen(obs.Reopen)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fast := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	var reported sync.Once
	drain := func() {
		cancel()
		reported.Do(func() { go reportNoAccept(p, status, stop) })
	}
	if cfg.Timeout > 0 {
		go status.Heartbeat(max(cfg.Timeout/4, 100*time.Millisecond), stop)
	}
	go func() {
		var delay <-chan time.Time
		for {
			select {
			case <-stop:
				return
			case <-delay:
				delay = nil
				log.Info("shutdown_delay over: draining", "graceful_timeout", cfg.GracefulTimeout)
				drain()
			case s := <-sigs:
				switch s {
				case syscall.SIGTERM:
					procstate.SetStopping()
					p.SetUnready()
					if d := cfg.ShutdownDelay; d > 0 && delay == nil && ctx.Err() == nil {
						log.Info("SIGTERM: not ready; serving on for shutdown_delay", "shutdown_delay", d)
						delay = time.After(d)
						continue
					}
					delay = nil
					log.Info("SIGTERM: draining", "graceful_timeout", cfg.GracefulTimeout)
					drain()
				case syscall.SIGHUP:
					log.Info("replaced by a new generation: draining", "graceful_timeout", cfg.GracefulTimeout)
					procstate.SetReplaced() // the instance stays ready: readiness is not this process's
					p.SetUnready()
					obs.Replaced()
					drain()
				case syscall.SIGUSR1:
					logs.Reopen()
					logs.stderrToFile()
					p.ReopenLogs()
				default:
					select {
					case <-fast:
					default:
						log.Info("fast stop", "signal", s.String())
						close(fast)
					}
				}
			}
		}
	}()
	return p.Run(ctx, fast, serving.Options{
		Ready:   func(serving.ReadyInfo) { obs.Serving(); status.Ready() },
		Recycle: status.Recycle,
		Stuck:   status.Stuck,
	})
}

// noAcceptTicks is how many ticks every loop must have made after the
// engine started draining before the loops surely stopped accepting (see
// reportNoAccept).
const noAcceptTicks = 3

// reportNoAccept tells the supervisor (Status.NoAccept) once this
// process's loops no longer accept, so that a stopping instance's
// listening sockets can be closed without a loop meeting a dead listener.
// Process.Run calls StopAccepting, then starts the engine's drain; a loop
// acts on StopAccepting when it next wakes (io_uring: it cancels its
// accepts at the next submission). A tick of a loop that began after an
// earlier tick, itself after the drain was seen, comes after that wake-up;
// the third tick after it, after the cancellation completed too. A loop
// that does not tick (a handler holding it) does not hold the report back
// for more than two seconds.
func reportNoAccept(p *serving.Process, status *supervisor.Status, stop <-chan struct{}) {
	eng := p.Engine()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	limit := time.NewTimer(2 * time.Second)
	defer limit.Stop()
	var last []int64
	var ticks []int
	for {
		select {
		case <-stop:
			return
		case <-limit.C:
			status.NoAccept()
			return
		case <-poll.C:
		}
		if !eng.Draining() {
			continue
		}
		hb := eng.Heartbeats()
		if last == nil {
			last, ticks = hb, make([]int, len(hb))
			continue
		}
		done := true
		for i := range hb {
			if hb[i] != last[i] {
				last[i] = hb[i]
				ticks[i]++
			}
			done = done && ticks[i] >= noAcceptTicks
		}
		if done {
			status.NoAccept()
			return
		}
	}
}

// stderrToFile points descriptor 2 at the error log file, when there is
// one, so that what the Go runtime itself writes lands in the error log.
func (l *errorLog) stderrToFile() {
	if l.file == nil {
		return
	}
	l.file.mu.Lock()
	defer l.file.mu.Unlock()
	if err := unix.Dup2(int(l.file.f.Fd()), 2); err != nil {
		l.Logger.Warn("cannot send stderr to the error log", "error", err.Error())
	}
}
