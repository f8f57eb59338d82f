package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/loop"
)

// phase is where a connection is in its request cycle. Every change of
// it is one of the transitions below (in this file), each with the timer
// its new phase runs under (conn.deadline, checked by OnTick):
//
//	from           to       transition    when                                  timer
//	-              idle     toIdle        accepted (OnOpen)                     keepalive
//	idle           head     toHead        part of a head (or PROXY header)      header_timeout
//	head           idle     toIdle        a PROXY header is whole (proxyRead)   keepalive
//	idle, head     body     toBody        a whole head (process)                none; body_timeout for a body
//	body           running  toRunning     launched off the loop (launch)        request_timeout
//	running        body     toBody        refused by the Executor (launch)      request_timeout's, left armed
//	body           idle     toIdleUnread  handed back to the input (hold)       none: reads are paused
//	body, running  idle     toIdle        response out, keep-alive (finish)     keepalive
//	any            closing  close, abort  close, refusal, timeout, drain        none
//
// An inline handler runs in phaseBody (dispatch); a request the engine
// answers itself (404, 405, ...) is finished from phaseBody too. A
// hijacked connection leaves in phaseRunning: the engine forgets it
// (detach).
type phase uint8

const (
	phaseIdle    phase = iota // between requests (keep-alive)
	phaseHead                 // part of a request head received
	phaseBody                 // head complete: its body arriving, or its handler running on the loop
	phaseRunning              // launched: its handler runs off the loop
	phaseClosing              // closing after the last response
)

// conn is the engine's per-connection state. It is small on purpose: an
// idle keep-alive connection holds no buffers and no Ctx.
//
// Only its loop's goroutine touches a conn, with one exception: a
// launched request's goroutine reads lc (under the Ctx's off.mu, to Wake
// the loop), which changes only before the first request (proxyRead).
type conn struct {
	lc    loop.Conn
	l     *loopState
	idx   int   // its index in l.conns
	ctx   *Ctx  // the request in progress, with its parser; nil while idle
	phase phase // see the table above; changed only by its transitions
	// deadline is the current phase's timer (zero: none).
	deadline time.Time
	paused   bool // reading is paused: back-pressure, capacity or a streamed body's pipe
	waiting  bool // in l.waiting, held for off-loop capacity
	// idleSeen is when a draining loop's scan first saw the connection
	// idle since it last went idle (zero: not seen yet; toIdle clears
	// it). Not when it went idle: the loop's l.now is only as fresh as its
	// last tick, and after a loop that could not run for a while it is
	// older than a response the loop just sent (see drainIdle).
	idleSeen time.Time
	// served is set once the connection has answered a request: a
	// draining loop then gives it DrainIdle, not header_timeout (drainIdle).
	served bool
	// rawHead is the current request's head in the input buffer; it is only
	// valid during OnRead.
	rawHead []byte
	// proxy is set while a PROXY protocol header may come (proxyheader.go).
	proxy proxyState
	// bodyDeadline is body_timeout for a body streamed through a pipe,
	// armed only while the loop waits for the client's bytes (not while
	// the handler is slow to read, nor while 100 Continue is still owed):
	// deadline then bounds the wait for the response (request_timeout).
	bodyDeadline time.Time
	// written counts the bytes handed to lc.Write; sendSeen is written as
	// the last send_timeout check saw it, sendTaken what the kernel had
	// taken then, and sendSince when that last changed while output
	// waited (zero: none waits). See sendStalled.
	written, sendSeen, sendTaken uint64
	sendSince                    time.Time
}

// toIdle enters keep-alive idle between requests.
func (c *conn) toIdle() {
	c.phase = phaseIdle
	c.idleSeen = time.Time{}
	c.deadline = c.l.idleDeadline // zero without keep-alive
}

// toHead starts waiting for the rest of a head, under header_timeout.
func (c *conn) toHead() {
	c.phase = phaseHead
	if ht := c.l.e.cfg.HeaderTimeout; ht > 0 {
		c.deadline = c.l.now.Add(ht)
	}
}

// toBody records a request whose head is whole: its body and then its
// handler come next. The caller sets the timer (process clears it; a body
// still arriving gets body_timeout in ownHead and readBody).
func (c *conn) toBody() { c.phase = phaseBody }

// toRunning records a request launched off the loop, and arms
// request_timeout for it.
func (c *conn) toRunning(x *Ctx) {
	c.phase = phaseRunning
	c.armRequestTimeout(x)
}

// toIdleUnread records a request handed back to the input by hold: the
// connection reads nothing (it is paused) until admitWaiting lets it, and
// then parses the request again. No timer: it waits for capacity, not
// for the client.
func (c *conn) toIdleUnread() { c.phase = phaseIdle }

// close closes the connection once its output is sent; OnClose follows.
func (c *conn) close() {
	c.phase = phaseClosing
	c.deadline = time.Time{}
	c.lc.Close()
}

// abort closes the connection at once, dropping its output.
func (c *conn) abort() {
	c.phase = phaseClosing
	c.deadline = time.Time{}
	c.lc.Abort()
}

// phaseName names the phase in the log line of a header or body timeout.
func (c *conn) phaseName() string {
	switch c.phase {
	case phaseHead:
		return "headers"
	case phaseBody:
		return "body"
	}
	return "idle"
}

// OnOpen implements loop.Handler.
func (e *Engine) OnOpen(lc loop.Conn) {
	l := e.loops[lc.Loop()]
	c := &conn{lc: lc, l: l, idx: len(l.conns)}
	c.proxy = e.proxyOpen(lc)
	c.toIdle()
	l.conns = append(l.conns, c)
	l.connsN.Store(int64(len(l.conns)))
	lc.SetContext(c)
}

// OnRead implements loop.Handler: parse and serve as many requests as the
// input holds, then write every response they produced at once.
func (e *Engine) OnRead(lc loop.Conn, in []byte) int {
	c, ok := lc.Context().(*conn)
	if !ok || c == nil {
		return len(in)
	}
	if c.proxy != proxyNone {
		return c.proxyRead(in)
	}
	n := c.process(in)
	c.flush()
	c.l.bytesIn.Add(uint64(n))
	return n
}

// OnDrained implements loop.Handler: output fell back under the limit.
func (e *Engine) OnDrained(lc loop.Conn) {
	c, ok := lc.Context().(*conn)
	if !ok || c == nil {
		return
	}
	if c.ctx != nil && c.ctx.streaming {
		c.ctx.off.signal()
	}
	if c.paused && !c.waiting {
		c.paused = false
		lc.ResumeRead()
	}
}

// OnClose implements loop.Handler.
func (e *Engine) OnClose(lc loop.Conn, err error) {
	c, ok := lc.Context().(*conn)
	if !ok || c == nil {
		return
	}
	lc.SetContext(nil)
	c.l.remove(c)
	if c.ctx == nil {
		return
	}
	if cut, _ := c.orphan(context.Canceled); cut != nil {
		// The client left during a streamed response: that response went
		// out, in part, and is observed as such.
		e.observe(cut)
		e.putCtx(cut)
	}
}

// process consumes requests from in and returns the bytes consumed.
func (c *conn) process(in []byte) int {
	l := c.l
	e := l.e
	off := 0
	for off < len(in) {
		switch c.phase {
		case phaseClosing:
			return len(in) // after Connection: close nothing more is read
		case phaseRunning:
			x := c.ctx
			if x.bodyFailed {
				// The body's framing broke: where the next request starts
				// is unknown, so nothing more is parsed; the connection
				// closes after the handler's answer.
				c.pauseRead()
				return len(in)
			}
			if x.pipe == nil || x.bodyDone {
				// One request in flight; the rest waits in the backend.
				// Past heldInputLimit stop reading: a client pipelining
				// behind a slow off-loop request would otherwise make the
				// backend buffer its input without bound. OnWake resumes
				// reading when the request completes.
				if len(in)-off > heldInputLimit {
					c.lc.PauseRead()
				}
				return off
			}
			n, stop := c.feedPipe(in[off:])
			off += n
			if stop {
				return off
			}
			continue
		case phaseBody:
			if c.ctx.bodyHeld {
				if c.streamBody() == dispatchHeld {
					return off
				}
				continue
			}
			if c.ctx.body == nil {
				n, done := c.readBody(in[off:])
				off += n
				if c.phase == phaseRunning {
					continue // the body turned out too large: now streamed
				}
				if !done {
					return off
				}
			}
			if c.dispatch() == dispatchHeld {
				return off
			}
			continue
		}
		if c.overLimit() {
			// Write what this read produced; pause only if the kernel did
			// not take it, since only queued output brings an OnDrained.
			c.flush()
			if c.lc.OutboundBuffered() > e.cfg.OutputBufferLimit {
				c.paused = true
				c.lc.PauseRead()
				return off
			}
		}
		if c.ctx == nil {
			c.ctx = l.getCtx()
		}
		x := c.ctx
		wasPartial := c.phase == phaseHead
		n, err := x.parser.ParseHead(in[off:], &x.req)
		if err != nil {
			c.reject(err)
			return len(in)
		}
		if n == 0 {
			if c.phase != phaseHead {
				c.toHead()
				if e.cfg.Observer != nil {
					// A head refused before it is whole (408) is timed
					// from its first bytes; a parsed one from its end.
					x.started = time.Now()
				}
			}
			if e.cfg.Observer != nil && len(x.lineCopy) == 0 && lineParsed(&x.req) {
				// Once per request: a header timeout answers after this
				// input is gone, and the log should still show the line.
				x.lineCopy = appendRequestLine(x.lineCopy, &x.req)
			}
			return off
		}
		if wasPartial {
			// The head came in pieces: parse it again in one go so that
			// every slice points into the current input.
			x.parser.Reset()
			x.req.Reset()
			if n2, err := x.parser.ParseHead(in[off:off+n], &x.req); err != nil || n2 != n {
				c.reject(errParserDisagrees)
				return len(in)
			}
		}
		x.parser.Reset()
		start := off
		c.rawHead = in[off : off+n]
		c.toBody()
		c.deadline = time.Time{}
		x.off.conn = c
		x.remote = c.lc.RemoteAddr()
		x.local = c.lc.LocalAddr()
		if p := e.cfg.Proxies; p != nil && !x.applyForwarded(p) {
			c.answerBadRequest(x.remote, "conflicting scheme headers")
			return len(in)
		}
		if e.cfg.Observer != nil {
			x.started = time.Now() // request timing for the access log
		}
		if !c.route() {
			// answered already (404, 405, 501 ...)
			if c.phase == phaseClosing {
				return len(in)
			}
			off += n
			continue
		}
		req := &x.req
		bodyStart := off + n
		switch {
		case req.Chunked:
			x.chunk.Limits = e.cfg.Limits
			c.ownHead(c.rawHead)
			off = bodyStart
			if x.route.Inline {
				// An inline handler gets its body whole on the loop, so
				// the engine asks for it before the handler runs.
				c.sendContinue()
			}
			m, done := c.readBody(in[off:])
			off += m
			if c.phase == phaseRunning {
				continue
			}
			if !done {
				if c.phase == phaseBody && req.Expect100 && !x.route.Inline {
					if c.deferBody() == dispatchHeld {
						return off
					}
					continue
				}
				return off
			}
		case c.streamsBody(int64(len(in)-bodyStart)) && !x.route.Inline:
			c.ownHead(c.rawHead)
			off = bodyStart
			if c.streamBody() == dispatchHeld {
				return off
			}
			continue
		case req.Expect100 && !x.route.Inline && int64(bodyStart)+req.ContentLength > int64(len(in)):
			// The client waits for 100 Continue before it sends the body:
			// the handler decides whether it is sent (deferBody).
			c.ownHead(c.rawHead)
			off = bodyStart
			if c.deferBody() == dispatchHeld {
				return off
			}
			continue
		case req.ContentLength > 0:
			end := int64(bodyStart) + req.ContentLength
			if end <= int64(len(in)) {
				x.body = in[bodyStart:end]
				off = int(end)
				break
			}
			c.ownHead(c.rawHead)
			off = bodyStart
			c.sendContinue()
			m, done := c.readBody(in[off:])
			off += m
			if !done {
				return off
			}
		default:
			off = bodyStart
		}
		if c.dispatch() == dispatchHeld {
			// hold kept the Ctx if the request was already copied out of
			// the input (ownHead before dispatch, or ownRequest inside it
			// when the executor refused the task): it is consumed and
			// waits there. Otherwise hand the bytes back to be parsed again
			// on wake; returning start for a kept request would run it
			// twice.
			if c.ctx != nil {
				return off
			}
			return start
		}
	}
	return off
}

// heldInputLimit is how much input behind a request running off the loop
// the engine lets the backend hold before it stops reading from the
// connection. Below it, modest pipelining costs no pause/resume syscalls.
const heldInputLimit = 64 << 10

var errParserDisagrees = &httpparse.Error{Status: 400, Reason: "request head changed between reads"}

// ownHead copies the head into the Ctx and re-parses it there, so that the
// request outlives the input buffer while its body arrives.
func (c *conn) ownHead(head []byte) {
	x := c.ctx
	x.head = append(x.head[:0], head...)
	x.req.Reset()
	if err := reparse(&x.parser, x.head, &x.req); err != nil {
		// cannot happen: the same bytes parsed a moment ago
		panic(fmt.Sprintf("engine: head re-parse failed: %v", err))
	}
	if bt := c.l.e.cfg.BodyTimeout; bt > 0 {
		c.deadline = c.l.now.Add(bt)
	}
}

// ownRequest makes the request independent of the input buffer before it
// leaves the loop.
func (c *conn) ownRequest() {
	x := c.ctx
	if len(x.head) > 0 {
		return
	}
	body := x.body
	c.ownHead(c.rawHead)
	if body != nil {
		x.bodyBf = append(x.bodyBf[:0], body...)
		x.body = x.bodyBf
	}
}

// dispatchResult is what became of a request given to dispatch (or
// streamBody): answered on the loop, launched off it, or held for
// capacity (hold).
type dispatchResult uint8

const (
	dispatchDone dispatchResult = iota
	dispatchAsync
	dispatchHeld
)

// dispatch runs the handler for the request in c.ctx, whose body is
// complete: on the loop, or off it (launch) for an off-loop class or a
// blocking route.
func (c *conn) dispatch() dispatchResult {
	l := c.l
	e := l.e
	x := c.ctx
	if (e.cfg.Dispatch == OffLoop || x.route.Blocking) && !x.route.Inline {
		if !c.launch(false) {
			return c.hold()
		}
		return dispatchAsync
	}
	x.off.state = ctxRunning
	if l.runningRoute != x.route {
		// Stored when the route changes, and cleared once the callback's
		// batch is written (flush), not around every request: pipelined
		// requests to one route cost one atomic store, not two each.
		l.running.Store(x.route)
		l.runningRoute = x.route
	}
	x.serve()
	var closing bool
	l.out, closing = x.appendEnd(l.out, l.date, c.closing(x))
	c.finish(x, closing)
	return dispatchDone
}

// closing reports whether the connection closes after x's response.
func (c *conn) closing(x *Ctx) bool {
	// The engine's flag, not the loop's copy: from the moment Drain returns
	// every response says close, not only from the loop's next tick.
	return !x.req.KeepAlive || x.closeAfter || c.l.e.draining.Load()
}

// finish ends the request cycle on the loop: observe, release, and either
// close or go back to idle.
func (c *conn) finish(x *Ctx, closing bool) {
	l := c.l
	l.requests.Add(1) // per loop: a shared counter's cache line would bounce between loops
	c.served = true
	l.e.observe(x) // the engine's own answers (404, 405 ...) too
	c.ctx = nil
	c.bodyDeadline = time.Time{}
	l.putCtx(x)
	if closing {
		c.flush()
		c.close()
		return
	}
	c.toIdle()
}

// flush writes the responses accumulated during this callback.
func (c *conn) flush() {
	l := c.l
	if n := uint64(len(l.out)); n > 0 {
		c.lc.Write(l.out)
		c.written += n
		l.bytesOut.Add(n)
		l.out = l.out[:0]
	}
	if l.runningRoute != nil {
		l.running.Store(nil)
		l.runningRoute = nil
	}
	l.publishInflight()
}

// overLimit reports whether the connection has more output pending than the
// engine lets it have before it stops taking requests from it.
func (c *conn) overLimit() bool {
	return len(c.l.out)+c.lc.OutboundBuffered() > c.l.e.cfg.OutputBufferLimit
}

// pauseRead stops reading from the connection.
func (c *conn) pauseRead() {
	if !c.paused {
		c.paused = true
		c.lc.PauseRead()
	}
}
