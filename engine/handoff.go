package engine

import (
	"errors"
	"net"

	"github.com/asyncd/asyncd/loop"
)

// snapshot returns a fresh Ctx with what the observer and an error answer
// read of x's request (its head, parsed again from a copy, the addresses,
// the start time) and, for a streamed response, what went out of it. x's
// handler may still run: call it under x.mu, on the loop.
func (c *conn) snapshot(x *Ctx) *Ctx {
	y := c.l.e.getCtx()
	y.head = append(y.head[:0], x.head...) // a running request owns its head (ownRequest)
	if err := reparse(&y.parser, y.head, &y.req); err != nil {
		y.req.Reset() // cannot happen: the same bytes parsed before
	}
	y.remote, y.local, y.secure = x.remote, x.local, x.secure
	y.started, y.route = x.started, x.route
	if x.sentStatus != 0 {
		y.status, y.bytesOut, y.bodySent = x.sentStatus, x.bytesOut, x.bodySent
	}
	return y
}

// hold parks a request until off-loop capacity frees up.
func (c *conn) hold() dispatchResult {
	x := c.ctx
	if len(x.head) > 0 {
		// the request already left the input: keep it, retry on wake
		c.phase = phaseBody
	} else {
		c.l.e.putCtx(x) // resets its parser
		c.ctx = nil
		c.phase = phaseIdle
	}
	if !c.paused {
		c.paused = true
		c.lc.PauseRead()
	}
	if !c.waiting {
		c.waiting = true
		c.l.waiting = append(c.l.waiting, c)
	}
	return dispatchHeld
}

// bodyComplete reports whether x's request has all of its body (or has
// none), so it can be dispatched as it is.
func (x *Ctx) bodyComplete() bool {
	return x.body != nil || (!x.req.Chunked && x.req.ContentLength <= 0)
}

// admitWaiting resumes connections held back for capacity.
func (l *loopState) admitWaiting() {
	for len(l.waiting) > 0 && l.inflight < l.e.cfg.MaxInflight {
		c := l.waiting[0]
		l.waiting = l.waiting[1:]
		c.waiting = false
		if c.phase == phaseBody && c.ctx != nil && c.ctx.streamHeld {
			if c.startStream() == dispatchHeld {
				return
			}
			c.paused = false
			c.lc.ResumeRead()
			continue
		}
		if c.phase == phaseBody && c.ctx != nil && c.ctx.bodyComplete() {
			// A request kept whole in its Ctx (refused by the executor
			// after ownRequest): its bytes are consumed, so no read will
			// bring it back; run it now.
			if c.dispatch() == dispatchHeld {
				return
			}
		}
		c.paused = false
		c.lc.ResumeRead()
	}
}

// OnWake implements loop.Handler: an off-loop request finished, or its
// stream writer queued more output.
func (e *Engine) OnWake(lc loop.Conn) {
	c, ok := lc.Context().(*conn)
	if !ok || c == nil || c.ctx == nil || c.phase != phaseRunning {
		return
	}
	x := c.ctx
	l := c.l
	x.mu.Lock()
	if ch := x.hijackCh; ch != nil {
		x.hijackCh = nil
		x.mu.Unlock()
		c.detach(x, ch)
		return
	}
	x.mu.Unlock()
	if p := x.pipe; p != nil {
		cont, more := p.takeRequests()
		if cont {
			l.out = append(l.out, continue100...)
			x.contOwed = false
			if !x.bodyDone && !x.bodyFailed {
				c.armBody() // the client sends the body now
			}
		}
		if more && c.paused && !x.bodyFailed {
			c.paused = false
			lc.ResumeRead()
			c.armBody()
		}
	}
	// Read the state and take the output under one lock: a completion that
	// lands meanwhile has its Wake merged into this call.
	x.mu.Lock()
	state := x.state
	l.out = append(l.out, x.wbuf...)
	x.wbuf = x.wbuf[:0]
	x.flushQueued = false
	x.mu.Unlock()
	if state != ctxDone {
		// a streamed part: send it, and let the writer go on unless the
		// client is behind (OnDrained signals it then)
		c.flush()
		if lc.OutboundBuffered() <= e.cfg.OutputBufferLimit {
			x.signal()
		}
		return
	}
	if x.timedOut {
		return
	}
	l.inflight--
	closing := x.closeAfter
	if x.pipe != nil && !x.bodyDone {
		closing = true // the handler left body bytes unread: close, never mis-frame
	}
	c.finish(x, closing)
	c.flush()
	l.admitWaiting()
	if c.phase == phaseIdle && !c.paused {
		lc.ResumeRead() // carry on with pipelined input
	}
}

// Run implements Task: it runs an off-loop request and hands the response
// back to the loop.
func (x *Ctx) Run() {
	func() {
		defer func() {
			if r := recover(); r != nil {
				x.e.handlerPanic(x, r)
			}
		}()
		x.route.Handler.Serve(x)
	}()
	x.complete()
}

// complete serializes the response (off the loop) and wakes the loop.
func (x *Ctx) complete() {
	e := x.e
	if x.lazy == lazyPending {
		// The handler never touched its deferred body: from here Body
		// must not wait for it (an Observer calls Body on the loop).
		x.lazy = lazyStreamed
	}
	x.mu.Lock()
	c := x.conn
	if c == nil || x.timedOut {
		x.state = ctxDone
		x.mu.Unlock()
		if c == nil {
			e.putCtx(x) // orphaned: the connection is gone
		}
		return
	}
	if x.badHeader != "" && !x.streaming {
		e.log.Error("handler set an invalid response header; answered 500", "route", routeName(x.route), "header", x.badHeader)
		x.setError(500)
	}
	x.closeAfter = x.closeAfter || !x.req.KeepAlive
	if e.draining.Load() && !x.streaming && !x.hijacked {
		// A streamed head went out before the drain without Connection:
		// close (startStream decides it): closing after the stream would
		// drop the client's next request. Its next response says close.
		x.closeAfter = true
	}
	if x.pipe != nil && !x.pipe.complete() {
		// The body was not all received (the handler stopped reading, or
		// its framing broke): the connection cannot be reused, so say so.
		// OnWake closes it; it sees bodyDone, which the loop sets with
		// the pipe's done, so the two never disagree.
		x.closeAfter = true
	}
	switch {
	case x.hijacked:
	case x.streaming:
		x.wbuf = x.appendStreamTail(x.wbuf)
	default:
		x.wbuf = x.appendResponse(x.wbuf[:0], *e.dateLine.Load(), x.closeAfter)
	}
	x.state = ctxDone
	lc := c.lc
	x.mu.Unlock()
	lc.Wake()
}

// signal lets a waiting stream writer continue.
func (x *Ctx) signal() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// ctxState tracks a Ctx through its life.
type ctxState uint8

const (
	ctxIdle    ctxState = iota // in a pool
	ctxRunning                 // handler running
	ctxDone                    // handler returned, response ready
)

// ErrClientGone is returned by Write, Flush and Hijack of an off-loop
// handler once the connection has closed or the request has timed out; what
// was written is dropped.
var ErrClientGone = errors.New("engine: client connection closed")

// ErrHijackInline is returned by Hijack for a handler running on the event
// loop: taking a connection over needs worker_class async (or gthread), or
// a route marked blocking.
var ErrHijackInline = errors.New("engine: hijack needs an off-loop handler (worker_class async or a blocking route)")

// hijackResult carries a detached connection from the loop to the handler.
type hijackResult struct {
	conn   net.Conn
	unread []byte
	err    error
}

// Hijack takes the connection over: the engine forgets it, and the caller
// owns the returned net.Conn (and must close it). unread holds bytes the
// client sent after this request's head and body that the engine had
// already read. Nothing is written for this request by the engine
// afterwards. It needs an off-loop handler (ErrHijackInline otherwise).
func (c *Ctx) Hijack() (conn net.Conn, unread []byte, err error) {
	if !c.offloop {
		return nil, nil, ErrHijackInline
	}
	if c.streaming {
		return nil, nil, errors.New("engine: hijack after the response started")
	}
	c.mu.Lock()
	cn := c.conn
	if cn == nil || c.timedOut {
		c.mu.Unlock()
		return nil, nil, ErrClientGone
	}
	ch := make(chan hijackResult, 1)
	c.hijackCh = ch
	lc := cn.lc
	c.mu.Unlock()
	if !lc.Wake() {
		return nil, nil, ErrClientGone
	}
	r := <-ch
	if r.err != nil {
		return nil, nil, r.err
	}
	c.mu.Lock()
	c.responseStarted() // the connection is the handler's: no deadline applies
	c.mu.Unlock()
	c.hijacked = true
	return r.conn, r.unread, nil
}

// detach runs on the loop for Hijack: it removes the connection from the
// loop and the engine, and hands its socket to the waiting handler.
func (cn *conn) detach(x *Ctx, ch chan hijackResult) {
	l := cn.l
	f, unread, err := cn.lc.Detach()
	if err != nil {
		ch <- hijackResult{err: err}
		return
	}
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		ch <- hijackResult{err: err}
		return
	}
	// The engine forgets the connection: no OnClose follows a Detach.
	cn.lc.SetContext(nil)
	l.remove(cn)
	x.mu.Lock()
	x.conn = nil // the goroutine releases the Ctx when the handler returns
	x.mu.Unlock()
	cn.ctx = nil
	l.inflight--
	l.publishInflight()
	l.admitWaiting()
	ch <- hijackResult{conn: nc, unread: unread}
}
