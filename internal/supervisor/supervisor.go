// Package supervisor is asyncd's arbiter, made thin: a small process that
// owns the listening sockets and runs one serving process (all the event
// loops) at a time, replacing it without dropping a request on SIGHUP
// (config reload), SIGUSR2 (binary upgrade), SIGTTIN/SIGTTOU (one loop more
// or less), a crash, max_requests / max_worker_memory recycling, or a missed
// heartbeat (timeout). It speaks systemd's sd_notify and socket activation.
//
// It owns processes, signals, the pidfile and the socket set's lifetime. It
// must not serve HTTP or accept connections itself: every socket it holds is
// only passed down, so that the kernel's accept queue survives every
// replacement. The serving process's side of the protocol (status pipe,
// environment) is in child.go; cli/serve.go uses it.
package supervisor

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/asyncd/asyncd/internal/bind"
	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/residency"
	"github.com/asyncd/asyncd/loop"
	_ "github.com/asyncd/asyncd/loop/standard" // the backends asyncd ships
)

// Options configure a supervisor.
type Options struct {
	// Args are the command-line arguments asyncd was started with (without
	// the program name); a binary upgrade passes them to the new binary.
	Args []string
	// Version is asyncd's version, for the "asyncd starting" line.
	Version string
	// Load re-reads the configuration from the same sources (SIGHUP).
	Load func() (*config.Config, []string, error)
	// Logger is the error log.
	Logger *slog.Logger
	// ReopenLogs reopens the supervisor's own log files (SIGUSR1).
	ReopenLogs func()
	// Stdout and Stderr are given to serving processes.
	Stdout, Stderr io.Writer
	// ReadyTimeout bounds how long a new serving process may take to
	// report ready (default 60s).
	ReadyTimeout time.Duration
}

const (
	// maxFailures consecutive crashes (or failed starts) with no
	// generation serving end the supervisor with an error.
	maxFailures = 5
	// stableAfter is how long a generation must have served for its
	// predecessors' crashes to stop counting as a crash loop.
	stableAfter = 10 * time.Second
	// killMargin is added to graceful_timeout before a draining process
	// is killed: the process enforces graceful_timeout itself, the margin
	// covers its exit.
	killMargin = 5 * time.Second
	// fastGrace is how long a fast stop (SIGQUIT) may take before SIGKILL.
	fastGrace = 5 * time.Second
	// abortGrace is how long a process that missed its heartbeat gets to
	// write its goroutine dump (SIGABRT) before SIGKILL.
	abortGrace = 2 * time.Second
)

// generation is one serving process.
type generation struct {
	n        int
	cmd      *exec.Cmd
	cfg      *config.Config
	ready    bool
	readyAt  time.Time
	draining bool
	lastBeat time.Time
	started  time.Time
	killAt   time.Time // SIGKILL if still alive then
	exited   bool
	timedOut bool   // not ready within ReadyTimeout: killed
	reason   string // why it was started
	noAccept bool   // its loops no longer accept (NOACCEPT)
}

func (g *generation) pid() int { return g.cmd.Process.Pid }

type genEvent struct {
	g  *generation
	ev childEvent
}

type genExit struct {
	g   *generation
	err error
}

// Supervisor runs serving processes. Every field is owned by the goroutine
// running Run; other goroutines only send on its channels.
type Supervisor struct {
	o       Options
	log     *slog.Logger
	cfg     *config.Config
	sockets *bind.Set
	// metrics is the metrics_bind socket, nil without one (or when an
	// upgrade from an older asyncd left each serving process to bind it).
	// Held and passed down like sockets: a generation closing a socket of
	// its own would reset the scrapes queued on it.
	metrics  *bind.Set
	retired  []bind.Socket     // dropped by a reload; closed once a newer generation serves
	external map[*os.File]bool // sockets from systemd: their unix socket files are not ours to remove
	exe      string
	origDir  string // working directory at start: relative -c paths resolve there
	// startUmask is the umask asyncd was started with: the one in force
	// while the umask setting is unset.
	startUmask int
	cur        *generation   // serving (ready) generation
	pending    *generation   // started, not ready yet
	draining   []*generation // told to finish and exit
	queued     string        // a replacement asked for while one was pending
	gen        int
	reloads    int
	restarts   int
	failures   int // consecutive crashes or failed starts with nothing serving
	notify     *notifier
	// reloadOwed: RELOADING=1 was sent; READY=1 is owed once the reload
	// ends (new generation serving, or the old one kept).
	reloadOwed bool
	events     chan genEvent
	exits      chan genExit
	stopping   bool
	delta      int // event loops added with SIGTTIN/SIGTTOU since the last reload
	restartAt  time.Time
	// fatal ends Run: serving processes keep failing.
	fatal error
	// listenersClosed: a stop closed the listening sockets for good.
	listenersClosed bool
	// owner: this supervisor owns the pidfile and unix socket files. A
	// supervisor started by a binary upgrade becomes the owner only once
	// it serves; until then the old one does.
	owner bool
	upgradeState
}

// Run supervises serving processes for cfg until a stop signal. It returns
// nil after a graceful or fast stop (or after handing over to an upgraded
// supervisor) and an error when it cannot start or serving processes keep
// failing.
func Run(cfg *config.Config, o Options) error {
	// Pdeathsig is tied to the thread that forks, not to the process: every
	// serving process is started from this goroutine, so pin it to one
	// thread that lives as long as the supervisor. A serving process then
	// gets SIGTERM (and drains) if the supervisor dies, even by SIGKILL.
	runtime.LockOSThread()
	// Signals from now on wait for the loop below (a SIGHUP during start-up
	// must not kill the supervisor).
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTTIN, syscall.SIGTTOU)
	defer signal.Stop(sigs)
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	s := &Supervisor{o: o, log: o.Logger, cfg: cfg, notify: newNotifier(),
		events: make(chan genEvent, 64), exits: make(chan genExit, 8), owner: true}
	s.upgradeR = make(chan string, 1)
	if s.log == nil {
		s.log = slog.Default()
	}
	exe, err := executable()
	if err != nil {
		return fmt.Errorf("locate the asyncd binary: %w", err)
	}
	s.exe = exe
	if s.origDir, err = os.Getwd(); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	if err := checkBackend(cfg); err != nil {
		return err
	}
	if err := s.applyProcessSettings(nil, cfg); err != nil {
		return err
	}
	if fd := os.Getenv(EnvUpgradeFD); fd != "" {
		n, err := strconv.Atoi(fd)
		if err != nil {
			return fmt.Errorf("%s=%q: %w", EnvUpgradeFD, fd, err)
		}
		s.upgrade = os.NewFile(uintptr(n), "upgrade")
		syscall.CloseOnExec(n)
		s.owner = false
		os.Unsetenv(EnvUpgradeFD)
	}
	if s.upgrade == nil {
		// After an upgrade the pidfile names the old supervisor, which
		// hands it over; otherwise it must not name another live one.
		if err := checkPidfile(cfg); err != nil {
			return err
		}
	}
	// Sockets: inherited from an old supervisor (binary upgrade), from
	// systemd, or bound here.
	inherited, err := bind.Inherited(os.Getenv(bind.EnvVar))
	if err != nil {
		return err
	}
	os.Unsetenv(bind.EnvVar)
	systemd := listenFDs()
	if inherited != nil {
		// A binary upgrade: the old supervisor's sockets, adapted to the
		// config as this binary reads it (addresses added or dropped since).
		s.sockets = inherited
		have := *cfg
		have.Bind = specs(inherited)
		s.cfg = &have
		if err := s.rebind(cfg); err != nil {
			return err
		}
		s.cfg = cfg
		if err := s.inheritMetrics(cfg); err != nil {
			s.sockets.Close()
			return err
		}
	} else {
		o, err := bindOptions(cfg, systemd)
		if err != nil {
			return err
		}
		if s.sockets, err = bind.Open(cfg.Bind, o); err != nil {
			return err
		}
		if s.metrics, err = openMetrics(cfg); err != nil {
			s.sockets.Close()
			return err
		}
	}
	os.Unsetenv(bind.EnvMetrics)
	for _, f := range systemd {
		used := false
		for _, k := range s.sockets.Sockets {
			used = used || k.File == f
		}
		if !used {
			s.log.Warn("a socket-activated descriptor matches no bind address; unused", "fd", f.Fd(), "name", f.Name())
		}
	}
	s.markExternal(systemd, os.Getenv(EnvExternalFDs))
	os.Unsetenv(EnvExternalFDs)
	s.log.Info("asyncd starting", "version", o.Version, "pid", os.Getpid(), "binary", s.exe, "bind", s.sockets.Addrs(),
		"config", orDefault(cfg.ConfigFile), "upgrade", s.upgrade != nil)
	if err := s.start("start"); err != nil {
		s.cleanup()
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var watchdog <-chan time.Time
	if s.notify.watchdog > 0 {
		t := time.NewTicker(s.notify.watchdog / 2)
		defer t.Stop()
		watchdog = t.C
	}
	for {
		select {
		case sig := <-sigs:
			s.signal(sig)
		case e := <-s.events:
			s.event(e)
		case x := <-s.exits:
			s.exited(x)
		case msg := <-s.upgradeR:
			s.upgraded(msg)
		case now := <-tick.C:
			s.tick(now)
		case <-watchdog:
			s.notify.send("WATCHDOG=1") //nolint:errcheck // nothing to do without systemd
		}
		if s.fatal != nil {
			s.cleanup()
			return s.fatal
		}
		if s.stopping && s.allGone() {
			return s.finish()
		}
	}
}

// checkBackend refuses a named backend (`backend: io_uring`) that cannot
// run here, with the probe's reason, before a serving process is started:
// every one would fail the same way, after a crash loop that hides the
// reason. `auto` needs no check (it falls back to a backend that runs), and
// the serving process probes again as the user it runs as, which may be
// refused where root is not.
func checkBackend(cfg *config.Config) error {
	if cfg.Backend == config.BackendAuto {
		return nil
	}
	b, ok := loop.Lookup(string(cfg.Backend))
	if !ok { // config accepts registered backends only
		return fmt.Errorf("%s: backend: unknown backend %q", cfg.Source.Of("backend"), cfg.Backend)
	}
	if err := b.Probe(); err != nil {
		return fmt.Errorf("%s: backend %s: %w", cfg.Source.Of("backend"), cfg.Backend, err)
	}
	return nil
}

// specs lists the bind addresses of a socket set, once each, in order.
func specs(set *bind.Set) []string {
	var out []string
	for _, k := range set.Sockets {
		if len(out) == 0 || out[len(out)-1] != k.Addr.Spec {
			out = append(out, k.Addr.Spec)
		}
	}
	return out
}

func orDefault(s string) string {
	if s == "" {
		return "defaults"
	}
	return s
}

// bindOptions are how the supervisor binds cfg's addresses; systemd's
// sockets are adopted as they are (their unix socket files are the
// socket unit's: SocketUser=, SocketGroup=, SocketMode=).
func bindOptions(cfg *config.Config, systemd []*os.File) (bind.Options, error) {
	o := bind.Options{Loops: cfg.Loops(), ReusePort: cfg.ReusePort, Backlog: cfg.Backlog,
		SocketMode: cfg.SocketMode, Systemd: systemd}
	var err error
	if o.SocketOwner, err = socketOwner(cfg); err != nil {
		return o, err
	}
	o.Untrusted, err = ServingUser(cfg)
	return o, err
}

// start starts a new generation with the current config; it becomes
// s.pending.
func (s *Supervisor) start(reason string) error {
	cfg := *s.cfg
	cfg.Workers = max(s.cfg.Loops()+s.delta, 1)
	g, err := s.spawn(&cfg, reason)
	if err != nil {
		return err
	}
	s.pending = g
	return nil
}

// event handles a line from a serving process.
func (s *Supervisor) event(e genEvent) {
	g := e.g
	switch e.ev.kind {
	case msgHeartbeat:
		g.lastBeat = time.Now()
	case msgReady:
		s.ready(g)
	case msgRecycle:
		s.replaceFor(g, "recycle: "+e.ev.arg, false)
	case msgStuck:
		s.replaceFor(g, "stuck event loop: "+e.ev.arg, true)
	case msgNoAccept:
		g.noAccept = true
		s.closeListeners()
	}
}

// ready handles a generation's READY: it becomes the serving one and its
// predecessor drains.
func (s *Supervisor) ready(g *generation) {
	g.lastBeat = time.Now()
	if g != s.pending || g.draining {
		return // superseded, or told to stop while starting
	}
	g.ready, g.readyAt = true, time.Now()
	s.pending = nil
	old := s.cur
	s.cur = g
	if old != nil {
		s.drain(old, syscall.SIGHUP)
	}
	s.closeRetired()
	if s.upgrade != nil {
		s.takeOver()
	}
	// The pidfile before the log line: whoever waits for the line (a
	// script, the e2e tests) finds the pidfile in place.
	s.writePidfile()
	s.log.Info("serving process ready", "generation", g.n, "pid", g.pid(), "reason", g.reason,
		"loops", g.cfg.Workers)
	if s.queued != "" {
		reason := s.queued
		s.queued = ""
		s.log.Info("starting the replacement asked for while this one was starting", "reason", reason)
		if err := s.start(reason); err != nil {
			s.log.Error("cannot start a new serving process; the current one keeps serving", "error", err.Error())
		} else {
			return // READY=1 once that one serves
		}
	}
	s.notify.send("READY=1\nSTATUS=serving generation " + strconv.Itoa(g.n)) //nolint:errcheck
	s.reloadOwed = false
	s.shed()
}

// shed gives back what reading, validating and starting the generation
// left resident in the supervisor (internal/residency): from here on it
// only waits on signals and its children, and every page it drops is one
// that resident-memory figures would otherwise count twice, here and in
// the serving process that maps the same executable.
func (s *Supervisor) shed() {
	n, err := residency.Shed()
	if err != nil {
		s.log.Warn("could not give back start-up memory", "error", err.Error())
		return
	}
	s.log.Debug("gave back start-up memory", "executable_bytes_advised", n)
}

// replaceFor handles a serving process asking to be replaced (max_requests,
// max_worker_memory) or reporting a stuck loop.
func (s *Supervisor) replaceFor(g *generation, reason string, stuck bool) {
	if g != s.cur || s.stopping {
		return
	}
	if stuck {
		s.log.Error("serving process reports a stuck event loop; replacing it", "generation", g.n, "detail", reason)
	} else {
		s.log.Info("replacing the serving process", "generation", g.n, "reason", reason)
	}
	if s.pending != nil {
		return // a replacement is already starting
	}
	if err := s.start(reason); err != nil {
		s.log.Error("cannot start a replacement; the current one keeps serving", "error", err.Error())
	}
}

// drain asks a generation to finish its requests and exit; it is killed
// if it is still there after graceful_timeout (plus shutdown_delay on
// SIGTERM) and a margin.
func (s *Supervisor) drain(g *generation, sig syscall.Signal) {
	if g.draining || g.exited {
		return
	}
	g.draining = true
	grace := g.cfg.GracefulTimeout + killMargin
	if sig == syscall.SIGTERM {
		grace += g.cfg.ShutdownDelay
	}
	g.killAt = time.Now().Add(grace)
	g.cmd.Process.Signal(sig) //nolint:errcheck // it may have exited already: its exit is on s.exits
	s.draining = append(s.draining, g)
}

// exited handles a serving process's exit.
func (s *Supervisor) exited(x genExit) {
	g := x.g
	g.exited = true
	for i, d := range s.draining {
		if d == g {
			s.draining = append(s.draining[:i], s.draining[i+1:]...)
			break
		}
	}
	status := "exit status 0"
	if x.err != nil {
		status = x.err.Error()
	}
	switch {
	case g.draining:
		s.log.Info("serving process exited", "generation", g.n, "pid", g.pid(), "status", status)
		s.closeListeners()
	case g == s.pending:
		s.pending = nil
		if s.cur != nil {
			s.log.Error("new serving process exited before it was ready; the current one keeps serving",
				"generation", g.n, "status", status, "reason", g.reason, "serving", s.cur.n)
			s.startQueued()
			return
		}
		s.failures++
		s.log.Error("new serving process exited before it was ready", "generation", g.n, "status", status,
			"reason", g.reason, "failures", s.failures)
		if s.failures >= maxFailures {
			s.fatal = fmt.Errorf("serving process failed to start %d times in a row; last: %s", s.failures, status)
			return
		}
		s.queued = ""
		s.scheduleRestart()
	case g == s.cur:
		s.cur = nil
		s.restarts++
		s.failures++
		s.log.Error("serving process died; restarting it", "generation", g.n, "pid", g.pid(), "status", status,
			"restarts", s.restarts, "failures", s.failures)
		if s.pending != nil {
			return // its replacement is starting already
		}
		if s.failures >= maxFailures {
			s.fatal = fmt.Errorf("serving process keeps crashing (%d times in a row); last: %s", s.failures, status)
			return
		}
		s.scheduleRestart()
	}
}

// startQueued starts the replacement asked for while the pending one was
// starting, after that one failed; otherwise the reload has ended.
func (s *Supervisor) startQueued() {
	if s.queued == "" || s.stopping {
		s.endReload()
		return
	}
	reason := s.queued
	s.queued = ""
	if err := s.start(reason); err != nil {
		s.log.Error("cannot start a new serving process; the current one keeps serving", "error", err.Error())
		s.endReload()
	}
}

// endReload sends the READY=1 owed after RELOADING=1 when a reload ends
// with the running generation kept.
func (s *Supervisor) endReload() {
	if s.reloadOwed && s.cur != nil {
		s.notify.send("READY=1\nSTATUS=serving generation " + strconv.Itoa(s.cur.n)) //nolint:errcheck
		s.reloadOwed = false
	}
}

// scheduleRestart restarts at once after a first crash, then backs off
// (200ms, 400ms, 800ms, ...) while crashes follow each other.
func (s *Supervisor) scheduleRestart() {
	if s.stopping || s.fatal != nil {
		return
	}
	s.restartAt = time.Time{}
	if s.failures <= 1 {
		err := s.start("restart after crash")
		if err == nil {
			return
		}
		s.log.Error("cannot restart the serving process", "error", err.Error())
		s.failures++
	}
	delay := min(100*time.Millisecond<<min(s.failures-1, 10), 10*time.Second)
	s.restartAt = time.Now().Add(delay)
}

// restartNow is a scheduled restart coming due.
func (s *Supervisor) restartNow() {
	if err := s.start("restart after crash"); err != nil {
		s.failures++
		s.log.Error("cannot restart the serving process", "error", err.Error(), "failures", s.failures)
		if s.failures >= maxFailures {
			s.fatal = fmt.Errorf("cannot start the serving process (%d failures in a row): %w", s.failures, err)
			return
		}
		s.scheduleRestart()
	}
}

// allGone reports that no process of ours is left (stop is complete).
func (s *Supervisor) allGone() bool {
	return s.cur == nil && s.pending == nil && len(s.draining) == 0 && s.upgrader == nil
}

// tick enforces kill deadlines, the ready timeout, scheduled restarts,
// heartbeats, and ends a crash streak once a generation has served long
// enough.
func (s *Supervisor) tick(now time.Time) {
	for _, g := range s.draining {
		if !g.killAt.IsZero() && now.After(g.killAt) && !g.exited {
			s.log.Warn("serving process did not exit in time; killing it", "generation", g.n, "pid", g.pid())
			g.cmd.Process.Kill() //nolint:errcheck // already gone is fine
			g.killAt = time.Time{}
		}
	}
	if p := s.pending; p != nil && !p.draining && !p.timedOut && now.Sub(p.started) > s.o.ReadyTimeout {
		s.log.Error("new serving process did not become ready in time; killing it", "generation", p.n,
			"waited", s.o.ReadyTimeout)
		p.timedOut = true
		p.cmd.Process.Kill() //nolint:errcheck // its exit is handled as a failed start
	}
	if !s.restartAt.IsZero() && now.After(s.restartAt) && !s.stopping {
		s.restartAt = time.Time{}
		if s.pending == nil && s.cur == nil {
			s.restartNow()
		}
	}
	g := s.cur
	if g == nil || s.stopping {
		return
	}
	if s.failures > 0 && now.Sub(g.readyAt) > stableAfter {
		s.failures = 0
	}
	if to := g.cfg.Timeout; to > 0 {
		if since := now.Sub(g.lastBeat); since > to {
			s.log.Error("serving process missed its heartbeat (timeout); replacing it", "generation", g.n,
				"pid", g.pid(), "silent_for", since.Round(time.Millisecond), "timeout", to)
			// SIGABRT makes the Go runtime write every goroutine's stack to
			// the process's stderr (the error log file, if one is set)
			// before it exits.
			g.cmd.Process.Signal(syscall.SIGABRT) //nolint:errcheck // gone already is fine
			g.draining = true
			g.killAt = now.Add(abortGrace)
			s.draining = append(s.draining, g)
			s.cur = nil
			s.restarts++
			if s.pending == nil {
				if err := s.start("heartbeat timeout"); err != nil {
					s.log.Error("cannot start a replacement", "error", err.Error())
					s.failures++
					s.scheduleRestart()
				}
			}
		}
	}
}

func (s *Supervisor) live() []*generation {
	var out []*generation
	for _, g := range append([]*generation{s.cur, s.pending}, s.draining...) {
		if g != nil && !g.exited {
			out = append(out, g)
		}
	}
	return out
}

// stop starts a graceful (SIGTERM to every serving process) or fast
// (SIGQUIT, then SIGKILL after fastGrace) stop. A process still starting
// gets the same signal: it may already hold connections.
func (s *Supervisor) stop(fast bool) {
	if !s.stopping {
		s.notify.send("STOPPING=1") //nolint:errcheck // nothing to do without systemd
	}
	s.stopping = true
	s.queued = ""
	s.restartAt = time.Time{}
	for _, g := range s.live() {
		if fast {
			g.cmd.Process.Signal(syscall.SIGQUIT) //nolint:errcheck // gone already is fine
			if deadline := time.Now().Add(fastGrace); g.killAt.IsZero() || deadline.Before(g.killAt) {
				g.killAt = deadline
			}
			if !g.draining {
				g.draining = true
				s.draining = append(s.draining, g)
			}
			continue
		}
		if g.draining {
			// A generation a newer one replaced drains already, but its
			// readiness must now say the instance stops (it answered
			// ready for the instance). A second SIGTERM, passed on, ends
			// shutdown_delay.
			g.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // gone already is fine
			continue
		}
		s.drain(g, syscall.SIGTERM)
	}
	s.cur, s.pending = nil, nil
	if s.upgrader != nil {
		// An upgrade in progress stops too: the operator asked for a stop.
		sig := syscall.SIGTERM
		if fast {
			sig = syscall.SIGQUIT
		}
		s.upgrader.Process.Signal(sig) //nolint:errcheck // gone already is fine
	}
	s.closeListeners()
}

// finish releases what the supervisor owns before it exits.
func (s *Supervisor) finish() error {
	s.cleanup()
	if s.handedOver {
		s.log.Info("asyncd handed over to the upgraded supervisor and stopped")
	} else {
		s.log.Info("asyncd stopped")
	}
	return nil
}
