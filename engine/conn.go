package engine

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/loop"
)

// phase is where a connection is in its request cycle.
type phase uint8

const (
	phaseIdle    phase = iota // between requests (keep-alive)
	phaseHead                 // part of a request head received
	phaseBody                 // head complete, body arriving
	phaseRunning              // handler running off the loop
	phaseClosing              // closing after the last response
)

// conn is the engine's per-connection state. It is small on purpose: an
// idle keep-alive connection holds no buffers and no Ctx.
type conn struct {
	lc       loop.Conn
	l        *loopState
	idx      int
	ctx      *Ctx // the request in progress, with its parser; nil while idle
	phase    phase
	paused   bool // we paused reading for back-pressure or capacity
	waiting  bool // in l.waiting
	deadline time.Time
	// idleSince is when the connection last went idle (its last response
	// or its accept): a draining loop closes it only once it stays idle.
	idleSince time.Time
	served    uint32
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

func (c *conn) phaseName() string {
	switch c.phase {
	case phaseHead:
		return "headers"
	case phaseBody:
		return "body"
	}
	return "idle"
}

// setIdle enters keep-alive idle between requests.
func (c *conn) setIdle() {
	c.phase = phaseIdle
	c.idleSince = c.l.now
	c.deadline = c.l.idleDeadline // zero without keep-alive
}

// OnOpen implements loop.Handler.
func (e *Engine) OnOpen(lc loop.Conn) {
	l := e.loops[lc.Loop()]
	c := &conn{lc: lc, l: l, idx: len(l.conns)}
	c.proxy = e.proxyOpen(lc)
	c.setIdle()
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
		c.ctx.signal()
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
	l := c.l
	l.remove(c)
	if x := c.ctx; x != nil {
		c.ctx = nil
		x.mu.Lock()
		running := x.state == ctxRunning
		// An off-loop request counts in flight until OnWake, a timeout or
		// a hijack uncounts it (each also clears c.ctx): one whose handler
		// returned but whose Wake was not handled yet still counts.
		counted := x.offloop
		var cut *Ctx
		if x.sentStatus != 0 && e.cfg.Observer != nil {
			// The client left during a streamed response: that response
			// went out, in part, and is observed as such. From a copy,
			// since the handler may still own x.
			cut = c.snapshot(x)
		}
		if running {
			x.conn = nil // orphan: the goroutine releases it
			x.gone.Store(true)
			x.endContext(context.Canceled)
			// Under the lock: once it is released the goroutine may
			// recycle x, and a signal would reach another request.
			x.signal() // a stream writer waiting for the loop gives up
			if ch := x.hijackCh; ch != nil {
				x.hijackCh = nil
				ch <- hijackResult{err: ErrClientGone} // buffered: never blocks
			}
		}
		pipe := x.pipe
		x.mu.Unlock()
		// From here an orphaned goroutine may release (reset) x at any
		// time: touch only what was copied above.
		if pipe != nil {
			pipe.finish(ErrClientGone) // a pipe is never reused
		}
		if cut != nil {
			e.observe(cut)
			e.putCtx(cut)
		}
		if !running {
			e.putCtx(x)
		}
		if counted {
			l.inflight--
			l.publishInflight() // no flush follows a close
			l.admitWaiting()
		}
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
			if c.ctx.streamHeld {
				if c.startStream() == dispatchHeld {
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
				c.phase = phaseHead
				if e.cfg.HeaderTimeout > 0 {
					c.deadline = l.now.Add(e.cfg.HeaderTimeout)
				}
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
		c.phase = phaseBody
		c.deadline = time.Time{}
		x.conn = c
		x.remote = c.lc.RemoteAddr()
		x.local = c.lc.LocalAddr()
		if p := e.cfg.Proxies; p != nil && !x.applyForwarded(p) {
			if l.logging() {
				l.logf(slog.LevelInfo, "bad request", "remote", x.remote, "status", 400, "reason", "conflicting scheme headers")
			}
			e.rejected[400].Add(1)
			c.answer(400, "")
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
		case req.ContentLength > int64(e.cfg.BodyBufferSize) && !x.route.Inline:
			c.ownHead(c.rawHead)
			off = bodyStart
			if c.startStream() == dispatchHeld {
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
	c.phase = phaseBody
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

type dispatchResult uint8

const (
	dispatchDone dispatchResult = iota
	dispatchAsync
	dispatchHeld
)

// dispatch runs the handler for the request in c.ctx, whose body is
// complete.
func (c *conn) dispatch() dispatchResult {
	l := c.l
	e := l.e
	x := c.ctx
	if (e.cfg.Dispatch == OffLoop || x.route.Blocking) && !x.route.Inline {
		if l.inflight >= e.cfg.MaxInflight {
			return c.hold()
		}
		c.ownRequest()
		x.offloop = true
		x.state = ctxRunning
		c.phase = phaseRunning
		c.armRequestTimeout(x)
		l.inflight++
		if !e.cfg.Executor.Submit(l.idx, x) {
			l.inflight--
			x.state = ctxIdle
			x.offloop = false
			x.deadline = time.Time{} // reset clears it only for an off-loop request
			c.phase = phaseBody
			return c.hold()
		}
		return dispatchAsync
	}
	x.state = ctxRunning
	if l.runningRoute != x.route {
		// Stored when the route changes, and cleared once the callback's
		// batch is written (flush), not around every request: pipelined
		// requests to one route cost one atomic store, not two each.
		l.running.Store(x.route)
		l.runningRoute = x.route
	}
	c.runInline(x)
	closing := c.writeResponse(x, c.closing(x))
	c.finish(x, closing)
	return dispatchDone
}

// runInline runs the handler on the loop, turning a panic into a 500.
func (c *conn) runInline(x *Ctx) {
	defer func() {
		if r := recover(); r != nil {
			c.l.e.handlerPanic(x, r)
		}
	}()
	x.route.Handler.Serve(x)
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
	e := l.e
	l.requests.Add(1) // per loop: a shared counter's cache line would bounce between loops
	c.served++
	e.observe(x) // the engine's own answers (404, 405 ...) too
	hijacked := x.hijacked
	c.ctx = nil
	c.bodyDeadline = time.Time{}
	l.putCtx(x)
	if hijacked {
		c.phase = phaseClosing
		return
	}
	if closing {
		c.flush()
		c.phase = phaseClosing
		c.deadline = time.Time{}
		c.lc.Close()
		return
	}
	c.setIdle()
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
