// Package procstate is the process-wide view of the running serving process
// that handler plugins may read: the engine's counters, whether the process
// is ready or draining, its generation and restart counts. The serving
// process (package worker) publishes it; plugins such as health and metrics
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
	src        atomic.Pointer[Source]
	generation atomic.Int64
	restarts   atomic.Int64
	reloads    atomic.Int64
	started    atomic.Int64
)

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
