package engine

import (
	"log/slog"
	"time"
)

// request_timeout bounds the wait for a response to start; send_timeout
// then bounds each stretch without progress in sending it, as nginx's
// send_timeout does, not the whole transfer. Neither costs a timer per
// request: the loop's tick (OnTick, every 100 ms) checks them.

// armRequestTimeout starts request_timeout for x, which is about to run
// off the loop; the handler's context reports the same deadline.
func (c *conn) armRequestTimeout(x *Ctx) {
	if rt := c.l.e.cfg.RequestTimeout; rt > 0 {
		c.deadline = c.l.now.Add(rt)
	} else {
		c.deadline = time.Time{}
	}
	x.deadline = c.deadline
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
	c.phase = phaseClosing
	c.deadline = time.Time{}
	c.sendSince = time.Time{}
	c.lc.Abort()
}
