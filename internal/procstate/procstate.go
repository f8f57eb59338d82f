// Package procstate is the process-wide view of the running serving process
// that handler plugins may read: the engine's counters, whether the process
// is ready or draining, its generation and restart counts. The serving
// process (package serving) publishes it; plugins such as health and metrics
// read it. It owns no behaviour: it must not start, stop or configure
// anything.
package procstate

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of the serving process's counters.
type Stats struct {
	// Requests answered (handlers and the engine's own answers).
	Requests uint64
	// InFlight is the number of requests running off the loops.
	InFlight int64
	// ConnsPerLoop is the open connections of each event loop.
	ConnsPerLoop []int
	// BytesIn and BytesOut count socket payload bytes read and written.
	BytesIn, BytesOut uint64
	// Rejected counts requests refused by the parser, by status code.
	Rejected map[int]uint64
}

// Source provides the live state; worker sets it.
type Source interface {
	Stats() Stats
	// Ready reports whether the process accepts and serves new work; it is
	// false before the loops start and while the process drains.
	Ready() bool
}

var (
	// replaced: a newer generation of this instance serves (SIGHUP from
	// the supervisor); stopping: the whole instance drains (SIGTERM).
	replaced, stopping atomic.Bool

	src        atomic.Pointer[Source]
	generation atomic.Int64
	restarts   atomic.Int64
	reloads    atomic.Int64
	started    atomic.Int64
	// failing names the readiness check that failed last ("" while all
	// pass); the serving process's checker goroutine stores it.
	failing atomic.Pointer[string]
)

// SetFailingCheck records the readiness check that fails, or "" when
// every check passes (package serving runs them).
func SetFailingCheck(name string) {
	if name == "" {
		failing.Store(nil)
		return
	}
	failing.Store(&name)
}

// FailingCheck names the readiness check that failed last, or "".
func FailingCheck() string {
	if p := failing.Load(); p != nil {
		return *p
	}
	return ""
}

// Publish makes s the process's state source.
func Publish(s Source) {
	src.Store(&s)
	started.CompareAndSwap(0, time.Now().UnixNano())
}

// Current returns the published source, or nil before Publish.
func Current() Source {
	if p := src.Load(); p != nil {
		return *p
	}
	return nil
}

// SetReplaced records that a newer generation of this instance serves
// and this process only drains what it holds: a reload, a binary upgrade's
// hand-over or a recycle, not a reason for a load balancer to take the
// instance out.
func SetReplaced() { replaced.Store(true) }

// SetStopping records that the whole instance is stopping (SIGTERM).
func SetStopping() { stopping.Store(true) }

// InstanceReady reports whether the instance this process belongs to
// should get traffic, as a readiness check answers it: not before the
// process serves, not once the instance stops, and still while this
// process hands over to a newer generation (its keep-alive connections
// still reach it then, and a 503 on them would take the whole instance out
// of rotation on every reload). While it serves, a failing readiness check
// of a plugin (FailingCheck) makes it not ready.
func InstanceReady() bool {
	s := Current()
	switch {
	case s == nil || stopping.Load():
		return false
	case replaced.Load():
		return true
	}
	return s.Ready() && failing.Load() == nil
}

// SetLineage records the generation of this serving process and the
// supervisor's reload and restart counts (passed down by the supervisor).
func SetLineage(gen, reloadCount, restartCount int64) {
	generation.Store(gen)
	reloads.Store(reloadCount)
	restarts.Store(restartCount)
}

// Generation is this serving process's generation (1 for the first).
func Generation() int64 { return generation.Load() }

// Reloads is how many reloads the supervisor has done.
func Reloads() int64 { return reloads.Load() }

// Restarts is how many times the supervisor restarted a crashed process.
func Restarts() int64 { return restarts.Load() }

// Started is when the state was first published.
func Started() time.Time { return time.Unix(0, started.Load()) }
