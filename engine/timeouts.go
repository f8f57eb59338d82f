package engine

import (
	"context"
	"log/slog"
	"time"
)

// Timers. A connection's timer is its phase's deadline (conn.deadline:
// keepalive, header_timeout, body_timeout or request_timeout; phase's doc
// comment says which), plus bodyDeadline for a body streaming to a
// handler. request_timeout bounds the wait for a response to start;
// send_timeout then bounds each stretch without progress in sending it,
// as nginx's send_timeout does, not the whole transfer. None costs a timer
// per request: the loop's tick (OnTick, every 100 ms) scans its
// connections.

// OnTick implements loop.Handler: the Date header, timeouts and draining.
func (e *Engine) OnTick(idx int, now time.Time) {
	l := e.loops[idx]
	l.now = now
	if ka := e.cfg.KeepAlive; ka > 0 {
		l.idleDeadline = now.Add(ka) // once per tick, not per request (toIdle)
	}
	l.heartbeat.Store(now.UnixNano())
	if s := now.Unix(); s != l.dateSec {
		l.dateSec = s
		l.date = appendDate(l.date[:0], now)
		l.logBudget = 10
		if old := e.dateSec.Load(); old != s && e.dateSec.CompareAndSwap(old, s) {
			d := appendDate(nil, now)
			e.dateLine.Store(&d)
		}
	}
	if !l.draining && e.draining.Load() {
		l.draining = true
		l.lastScan = time.Time{}
	}
	if now.Sub(l.lastScan) < 100*time.Millisecond {
		return
	}
	l.lastScan = now
	// Iterate backwards: closing a connection may swap-remove it.
	for i := len(l.conns) - 1; i >= 0; i-- {
		if i >= len(l.conns) {
			continue
		}
		c := l.conns[i]
		if !c.bodyDeadline.IsZero() && !now.Before(c.bodyDeadline) {
			c.pipeTimeout()
		}
		if st := e.cfg.SendTimeout; st > 0 && c.sendStalled(now, st) {
			c.sendTimeout()
			continue
		}
		if l.draining && c.drainIdle(now) {
			c.close()
			continue
		}
		if c.deadline.IsZero() || now.Before(c.deadline) {
			continue
		}
		c.timeout()
	}
}

// DefaultDrainIdle is how long a keep-alive connection must stay idle
// after a response before a draining engine closes it. A keep-alive client
// that just got a response is usually about to send the next request:
// closing then would race that request (the client reads EOF where it
// expected an answer, and only some clients retry). Left open, its next
// request is answered with Connection: close and the client leaves
// politely. One idle this long is parked in a pool; closing it can only
// meet a request sent at that very moment and still on its way, the
// keep-alive race every client handles by retrying on a new connection
// (RFC 9112 §9.3.1), as on an ordinary keep-alive timeout.
const DefaultDrainIdle = time.Second

// drainIdle reports whether a draining loop may close c now (the scan of
// OnTick calls it every 100 ms or so with the loop's current time). Only a
// connection that is idle, holding no unread request (paused connections
// keep unconsumed input in the backend: a request held for capacity, or
// pipelined behind pending output), and seen idle by the scans for long
// enough: DrainIdle after a response; header_timeout, as for any request
// head, for a connection that has not sent its first request yet, since
// its client cannot tell a close from a failure (it retries a request
// only on a connection that served one before) and nginx too waits for
// that request. Then only if no input has arrived that the loop has not
// read yet: a loop that could not run for a while (CPU starved, or an
// inline handler holding it) ticks before it reads what came meanwhile,
// and closing then would throw away a request that was already here.
func (c *conn) drainIdle(now time.Time) bool {
	if c.phase != phaseIdle || c.paused || c.waiting {
		return false
	}
	if c.idleSeen.IsZero() {
		c.idleSeen = now // the wait starts now, by a fresh clock
		return false
	}
	wait := c.l.e.cfg.DrainIdle
	if !c.served {
		if wait = c.l.e.cfg.HeaderTimeout; wait <= 0 {
			return false // graceful_timeout ends the wait
		}
	}
	return now.Sub(c.idleSeen) >= wait && !c.lc.InputPending()
}

// timeout handles the expiry of c's deadline, the timer of its phase.
func (c *conn) timeout() {
	l := c.l
	c.deadline = time.Time{}
	switch c.phase {
	case phaseIdle:
		c.close()
	case phaseHead, phaseBody:
		if l.logging() {
			l.logf(slog.LevelInfo, "request timeout", "remote", c.lc.RemoteAddr(), "phase", c.phaseName())
		}
		x := c.ctx
		if x == nil || x.off.conn == nil {
			// The head is incomplete and the input it was parsed from is
			// gone: the observer gets the copy of its request line, if any.
			x = c.unparsed(false)
		}
		c.failAndClose(x, 408)
	case phaseRunning:
		y, ok := c.orphan(context.DeadlineExceeded)
		if !ok {
			return // the response started: request_timeout no longer applies
		}
		l.e.log.Warn("request_timeout exceeded", "route", routeName(y.route), "remote", c.lc.RemoteAddr(),
			"timeout", l.e.cfg.RequestTimeout)
		c.failAndClose(y, 503)
	}
}

// armRequestTimeout starts request_timeout for x, which is about to run
// off the loop; the handler's context reports the same deadline.
func (c *conn) armRequestTimeout(x *Ctx) {
	if rt := c.l.e.cfg.RequestTimeout; rt > 0 {
		c.deadline = c.l.now.Add(rt)
	} else {
		c.deadline = time.Time{}
	}
	x.off.deadline = c.deadline
}

// sendStalled reports whether c's output has waited in the backend for
// limit with none of it taken by the kernel: the client stopped reading.
// Only a connection that wrote since the loop last saw its output drained
// is asked about its queue.
func (c *conn) sendStalled(now time.Time, limit time.Duration) bool {
	if c.written == c.sendSeen && c.sendSince.IsZero() {
		return false
	}
	c.sendSeen = c.written
	queued := c.lc.OutboundBuffered()
	if queued == 0 {
		c.sendSince = time.Time{}
		return false
	}
	taken := c.written - uint64(queued)
	if c.sendSince.IsZero() || taken != c.sendTaken {
		c.sendSince, c.sendTaken = now, taken // progress
		return false
	}
	return now.Sub(c.sendSince) >= limit
}

// sendTimeout closes a connection whose client stopped reading for
// send_timeout, dropping its queued output (nginx closes it too). OnClose
// then treats it as a client that left: a handler still streaming gets
// ErrClientGone and its context is cancelled (context.Canceled), and a
// response cut short is logged with what went out.
func (c *conn) sendTimeout() {
	l := c.l
	if l.logging() {
		l.logf(slog.LevelInfo, "send timeout", "remote", c.lc.RemoteAddr(),
			"queued", c.lc.OutboundBuffered(), "timeout", l.e.cfg.SendTimeout)
	}
	c.sendSince = time.Time{}
	c.abort()
}
