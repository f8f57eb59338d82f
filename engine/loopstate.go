package engine

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// loopState is the engine's state for one event loop. Only that loop's
// goroutine touches it, but the atomics, which other goroutines read
// (Engine.Stats, Heartbeats, Blocked).
type loopState struct {
	e        *Engine
	idx      int
	conns    []*conn // every open connection, for OnTick's scan (conn.idx is its index)
	out      []byte  // responses produced during one callback, written once (conn.flush)
	date     []byte  // "Date: ...\r\n" for the current second
	dateSec  int64
	now      time.Time // the last tick's time: timers are armed from it
	draining bool      // the loop's copy of Engine.draining, taken at a tick
	lastScan time.Time // the last scan of conns for expired timers
	// idleDeadline is now + KeepAlive, set at each tick; zero without
	// keep-alive.
	idleDeadline time.Time
	logBudget    int    // error-log lines left this second (logf)
	spare        []*Ctx // reset Ctxs kept for this loop's next requests (getCtx)

	// Off-loop capacity (handoff.go): inflight requests are launched and
	// not yet finished, at most Config.MaxInflight; waiting connections
	// hold a request until one finishes.
	inflight    int
	inflightPub int64   // the value last stored in inflightN: stored only on change
	waiting     []*conn // connections held back for off-loop capacity

	// running is the route of the inline handler running now (or that ran
	// last in this callback), for Engine.Blocked; runningRoute is the
	// loop's copy, so that running is stored only on change.
	running      atomic.Pointer[Route]
	runningRoute *Route

	// Read by other goroutines.
	heartbeat atomic.Int64  // the last tick, Unix nanoseconds
	requests  atomic.Uint64 // requests finished on this loop (Engine.Requests sums them)
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
	inflightN atomic.Int64 // inflight, readable off the loop
	connsN    atomic.Int64 // len(conns), readable off the loop
}

// maxSpareCtx is how many reset Ctxs a loop keeps for itself.
const maxSpareCtx = 16

// getCtx is Engine.getCtx for the loop goroutine: it takes one of the
// loop's own spares first, which costs no sync.Pool pinning per request.
func (l *loopState) getCtx() *Ctx {
	if n := len(l.spare); n > 0 {
		x := l.spare[n-1]
		l.spare[n-1] = nil
		l.spare = l.spare[:n-1]
		return x
	}
	return l.e.getCtx()
}

// putCtx is Engine.putCtx for the loop goroutine.
func (l *loopState) putCtx(x *Ctx) {
	x.reset()
	if len(l.spare) < maxSpareCtx {
		l.spare = append(l.spare, x)
		return
	}
	l.e.ctxPool.Put(x)
}

// remove forgets a connection that closed or was detached.
func (l *loopState) remove(c *conn) {
	last := len(l.conns) - 1
	if c.idx <= last && l.conns[c.idx] == c {
		l.conns[c.idx] = l.conns[last]
		l.conns[c.idx].idx = c.idx
		l.conns[last] = nil
		l.conns = l.conns[:last]
		l.connsN.Store(int64(len(l.conns)))
	}
	if c.waiting {
		c.waiting = false
		for i, w := range l.waiting {
			if w == c {
				l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
				break
			}
		}
	}
}

// logging reports whether logf would write a line now. Callers on refusal
// paths check it first: the line's values (an address, a status, a
// reason) allocate when boxed, so that a flood of bad requests past the
// budget allocates nothing.
func (l *loopState) logging() bool { return l.logBudget > 0 }

// logf logs at most a few lines per second per loop, so that a flood of bad
// requests cannot flood the error log.
func (l *loopState) logf(level slog.Level, msg string, args ...any) {
	if l.logBudget <= 0 {
		return
	}
	l.logBudget--
	l.e.log.Log(nil, level, msg, args...) //nolint:staticcheck // nil context is allowed by slog
}

// publishInflight makes inflight readable off the loop, storing only on
// change (an atomic store is a locked instruction).
func (l *loopState) publishInflight() {
	if n := int64(l.inflight); n != l.inflightPub {
		l.inflightN.Store(n)
		l.inflightPub = n
	}
}
