package plugins

import (
	"log/slog"

	"github.com/asyncd/asyncd/internal/metrics"
	"github.com/asyncd/asyncd/internal/procstate"
)

// Context is what the process gives a plugin, in place of package globals
// (slog.Default, the metrics registry, the process state): a factory gets
// it as Route.Context(), an HTTP factory as its first argument. Factories
// run in the supervisor and for --check-config too, so a Context says
// nothing about where the plugin runs: work that needs the serving
// process (opening a pool, registering a gauge) belongs in Provision.
type Context struct {
	// Route is the route the plugin serves.
	Route Route
	// Logger is the process's error log, scoped to the route: every line
	// carries route="routes[2] (/api/)" and handler="proxy".
	Logger *slog.Logger
	// Metrics is the registry the metrics plugin and metrics_bind serve.
	Metrics Metrics
	// Process is the serving process's state, as the health and metrics
	// plugins read it.
	Process Process
}

// Metrics is a Prometheus registry (the one asyncd's own metrics are in).
// Register a plugin's gauges and counters in Provision: a factory also runs
// where nothing serves them.
type Metrics interface {
	// AddGauge exposes f's value as a gauge; a name registered twice is
	// an error.
	AddGauge(name, help string, f func() float64) error
	// AddCounter exposes f's value as a counter.
	AddCounter(name, help string, f func() float64) error
	// AppendText appends the exposition (text format 0.0.4) to b.
	AppendText(b []byte) []byte
}

// Stats is a snapshot of the serving process's counters.
type Stats = procstate.Stats

// Process reads the serving process's state. Its zero value reads the
// process's own (package procstate); it never changes it.
type Process struct{}

// InstanceReady reports whether the instance should get traffic: the
// serving process started, the instance is not stopping (SIGTERM), and
// (while it still serves) every readiness check passes; see ReadyChecker.
func (Process) InstanceReady() bool { return procstate.InstanceReady() }

// FailingCheck names the readiness check that failed last, or "" while
// every check passes.
func (Process) FailingCheck() string { return procstate.FailingCheck() }

// Stats returns the serving process's counters, and false before it
// serves (in the supervisor, in --check-config).
func (Process) Stats() (Stats, bool) {
	s := procstate.Current()
	if s == nil {
		return Stats{}, false
	}
	return s.Stats(), true
}

// Generation is this serving process's generation: 1 for the first, one
// more for each reload or restart; 0 outside a serving process.
func (Process) Generation() int64 { return procstate.Generation() }

// contextFor is the Context of route r, its logger base (slog.Default
// when nil) scoped to the route.
func contextFor(r Route, base *slog.Logger) *Context {
	if base == nil {
		base = slog.Default()
	}
	r.ctx = nil
	return &Context{
		Route:   r,
		Logger:  base.With("route", r.String(), "handler", r.Handler),
		Metrics: metrics.Default(),
	}
}
