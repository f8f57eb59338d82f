package engine

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncd/asyncd/loop"
)

// The off-loop hand-off.
//
// A request whose handler runs off the loop (worker_class async or
// gthread, a blocking route, a body streamed to its handler) leaves the
// loop's goroutine for one the Executor picks, and its response comes back
// to the loop, which alone writes to the socket. Every step that crosses
// between the two goroutines is in this file, and the state they share is
// one handoff in the request's Ctx (Ctx.off):
//
//	step      goroutine  where               what
//	launch    loop       conn.launch         counted in flight and given to the Executor
//	push      handler    Ctx.pushOff         a stream's output queued in wbuf, the loop woken; waits on wake
//	complete  handler    Ctx.complete        the response serialized into wbuf, the loop woken
//	collect   loop       Engine.OnWake       wbuf written; a complete request finished and uncounted
//	orphan    loop       conn.orphan         client gone or request_timeout: the request taken from the handler
//	hijack    both       Ctx.Hijack, detach  the socket handed to the handler, the connection forgotten
//
// The loop never waits for a handler's goroutine; a handler's goroutine
// waits for the loop only in push (while its client is behind: OnWake or
// OnDrained signal it) and in Hijack. The Ctx is released by whichever
// side holds it last: the loop when it collects a complete request or
// orphans one whose handler returned, the handler's goroutine (complete)
// when its request was orphaned or hijacked while it ran. A response
// reaches the socket only from push and complete through collect, so
// another way there (such as writing a response from the handler's
// goroutine when nothing else can write to the socket) changes those three
// and nothing else. A streamed request body crosses the other way, through
// its own bodyPipe (reqbody.go).
//
// Capacity is the loop's: at most Config.MaxInflight requests launched per
// loop (worker_connections). A request that finds none left, or that the
// Executor refuses, is held (hold): its connection stops reading and waits
// in loopState.waiting until admitWaiting launches it.

// handoff is the state a loop and an off-loop request's goroutine share.
// It lives in the request's Ctx, so a pooled Ctx brings it along, and a
// request that never leaves the loop pays only for its reset.
type handoff struct {
	// launched says the request left the loop (launch), and stays set
	// until the Ctx is reset. deadline is request_timeout's, for the
	// request's context (zero when none applies). Both are written on the
	// loop before the Executor gets the request, and only read after.
	launched bool
	deadline time.Time

	// wake releases a stream writer waiting in pushOff: the loop sends on
	// it (signal) once the output was written and the client is not too
	// far behind, or the request was orphaned. Made once with the Ctx.
	wake chan struct{}

	mu sync.Mutex
	// conn is the request's connection: written on the loop before
	// launch (once the head parsed), under mu after. It is nil once the
	// request was orphaned or its connection hijacked; the handler's
	// goroutine then releases the Ctx.
	conn *conn
	// The rest is under mu.
	state      ctxState
	cause      error             // why orphan took the request (context.Canceled or DeadlineExceeded); nil before
	wbuf       []byte            // output for the loop: a stream's pushes, then the serialized response
	wakeQueued bool              // a Wake for wbuf is on its way: another push adds to it without one more
	hijackCh   chan hijackResult // a Hijack waiting for the loop's detach
	sentStatus int               // a stream's status once its head went to the loop: the response started
	reqCtx     *requestContext   // the request's context, once asked for (Ctx.Context)

	// gone and hasCtx are written under mu and read without it, on paths
	// that must stay cheap: gone says the request was orphaned (Write
	// drops output), hasCtx that reqCtx is set (reset locks only then).
	gone   atomic.Bool
	hasCtx atomic.Bool
}

// ctxState is where a request's handler is. It is written on the loop
// for a handler the loop runs itself (inline), under handoff.mu once the
// request was launched.
type ctxState uint8

const (
	ctxIdle    ctxState = iota // no handler started (a pooled or loop-owned Ctx)
	ctxRunning                 // the handler runs
	ctxDone                    // the handler returned; an off-loop response waits for OnWake
)

// signal lets a stream writer waiting in pushOff continue.
func (h *handoff) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// reset readies h for the Ctx's next request. A request its loop ran
// itself touched only conn and state, unless it asked for its context (it
// cannot be orphaned while it runs: its handler runs within one loop
// callback, and OnClose and OnTick are others). reset stays within the
// inliner's budget: a plaintext request on the loop pays no call for it.
func (h *handoff) reset() {
	if h.launched || h.hasCtx.Load() {
		h.resetLaunched()
	}
	h.conn, h.state = nil, ctxIdle
}

// resetLaunched is reset for a request that left the loop or asked for
// its context.
func (h *handoff) resetLaunched() {
	h.wbuf = keepBuf(h.wbuf)
	h.sentStatus = 0
	h.wakeQueued = false
	h.hijackCh = nil
	if h.launched {
		h.deadline = time.Time{}
		h.launched = false
	}
	if h.gone.Load() {
		h.gone.Store(false)
		h.cause = nil
	}
	if h.hasCtx.Load() {
		h.mu.Lock()
		h.reqCtx.end(context.Canceled)
		h.reqCtx = nil
		h.hasCtx.Store(false)
		h.mu.Unlock()
	}
}

// launch starts c's request off the loop, on the Executor, and reports
// whether it did: the one way a request leaves the loop. stream says its
// body is still to come: it then streams through a pipe (openPipe).
//
// It does not launch a request while the loop's launched requests are at
// Config.MaxInflight, nor one with its whole body that the Executor
// refuses: the caller then holds it (hold), and admitWaiting tries again.
// A streamed request the Executor refuses runs on a goroutine of its own,
// since its body must keep moving.
func (c *conn) launch(stream bool) bool {
	l := c.l
	e := l.e
	x := c.ctx
	if l.inflight >= e.cfg.MaxInflight {
		return false
	}
	if stream {
		c.openPipe()
	} else {
		c.ownRequest()
	}
	x.off.launched = true
	x.off.state = ctxRunning
	c.toRunning(x)
	l.inflight++
	if stream {
		c.armBody()
	}
	if e.cfg.Executor.Submit(l.idx, x) {
		return true
	}
	if stream {
		go x.Run()
		return true
	}
	l.inflight--
	x.off.state = ctxIdle
	x.off.launched = false
	x.off.deadline = time.Time{} // reset clears it only for a launched request
	c.toBody()
	return false
}

// hold parks c's request until off-loop capacity frees up (admitWaiting):
// the connection stops reading and waits in the loop's queue. A request
// already copied out of the input waits in its Ctx; any other is handed
// back to the input (dispatchHeld tells process to return the offset its
// head starts at), to be parsed again when the connection reads again.
func (c *conn) hold() dispatchResult {
	x := c.ctx
	if len(x.head) == 0 {
		c.ctx = nil
		c.l.e.putCtx(x) // resets its parser
		c.toIdleUnread()
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

// admitWaiting launches what the connections held for capacity kept, as
// far as capacity allows, and lets them read again.
func (l *loopState) admitWaiting() {
	for len(l.waiting) > 0 && l.inflight < l.e.cfg.MaxInflight {
		c := l.waiting[0]
		l.waiting = l.waiting[1:]
		c.waiting = false
		if x := c.ctx; c.phase == phaseBody && x != nil {
			// A request kept in its Ctx: its bytes are consumed, so no read
			// will bring it back; launch it now.
			r := dispatchDone
			switch {
			case x.bodyHeld:
				r = c.streamBody()
			case x.bodyComplete():
				r = c.dispatch()
			}
			if r == dispatchHeld {
				return
			}
		}
		c.paused = false
		c.lc.ResumeRead()
	}
}

// bodyComplete reports whether x's request has all of its body (or has
// none), so it can be dispatched as it is.
func (x *Ctx) bodyComplete() bool {
	return x.body != nil || (!x.req.Chunked && x.req.ContentLength <= 0)
}

// uncount ends a launched request's claim on the loop's capacity, and
// admits the connections waiting for it.
func (l *loopState) uncount() {
	l.inflight--
	l.publishInflight()
	l.admitWaiting()
}

// Run implements Task: it runs a launched request's handler on the
// Executor's goroutine and hands the response back to the loop.
func (x *Ctx) Run() {
	x.serve()
	x.complete()
}

// complete ends a launched request on its handler's goroutine: it
// serializes the response for the loop and wakes it (OnWake collects it),
// or releases the Ctx when the request was orphaned or hijacked meanwhile.
func (x *Ctx) complete() {
	e := x.e
	if x.lazy == lazyPending {
		// The handler never touched its deferred body: from here Body
		// must not wait for it (an Observer calls Body on the loop).
		x.lazy = lazyStreamed
	}
	x.off.mu.Lock()
	c := x.off.conn
	if c == nil {
		x.off.state = ctxDone
		x.off.mu.Unlock()
		e.putCtx(x)
		return
	}
	x.closeAfter = x.closeAfter || !x.req.KeepAlive
	if e.draining.Load() && !x.streaming {
		// A streamed head went out before the drain without Connection:
		// close (streamHead decides it): closing after the stream would
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
	x.off.wbuf, _ = x.appendEnd(x.off.wbuf, *e.dateLine.Load(), x.closeAfter)
	x.off.state = ctxDone
	lc := c.lc
	x.off.mu.Unlock()
	lc.Wake()
}

// pushOff hands a stream's staged output to the loop from the handler's
// goroutine, and waits until the loop has written it and the client is
// not too far behind (OnWake or OnDrained signal it).
func (x *Ctx) pushOff() error {
	x.off.mu.Lock()
	cn := x.off.conn
	if cn == nil {
		x.off.mu.Unlock()
		// Drop what is staged: a handler that ignores the error must not
		// pile up output for a client that left.
		x.out = x.out[:0]
		return ErrClientGone
	}
	if len(x.out) == 0 {
		x.off.mu.Unlock()
		return nil
	}
	x.off.wbuf = append(x.off.wbuf, x.out...)
	x.bytesOut += int64(len(x.out))
	x.bodySent = x.streamSent // everything framed so far is in x.out
	if x.off.sentStatus == 0 {
		x.off.sentStatus = x.status
		x.responseStarted()
	}
	x.out = x.out[:0]
	needWake := !x.off.wakeQueued
	x.off.wakeQueued = true
	lc := cn.lc
	x.off.mu.Unlock()
	if needWake && !lc.Wake() {
		x.off.mu.Lock()
		x.off.wbuf = x.off.wbuf[:0] // closed: no OnWake will take it
		x.off.mu.Unlock()
		return ErrClientGone
	}
	<-x.off.wake
	x.off.mu.Lock()
	gone := x.off.conn == nil
	x.off.mu.Unlock()
	if gone {
		return ErrClientGone
	}
	return nil
}

// OnWake implements loop.Handler: it collects what a launched request's
// goroutine handed to the loop (a Hijack, a pipe reader's requests, a
// stream's output, the complete response).
func (e *Engine) OnWake(lc loop.Conn) {
	c, ok := lc.Context().(*conn)
	if !ok || c == nil || c.ctx == nil || c.phase != phaseRunning {
		return
	}
	x := c.ctx
	l := c.l
	x.off.mu.Lock()
	if ch := x.off.hijackCh; ch != nil {
		x.off.hijackCh = nil
		x.off.mu.Unlock()
		c.detach(x, ch)
		return
	}
	x.off.mu.Unlock()
	if x.pipe != nil {
		c.pipeRequests()
	}
	// Read the state and take the output under one lock: a completion that
	// lands meanwhile has its Wake merged into this call.
	x.off.mu.Lock()
	state := x.off.state
	l.out = append(l.out, x.off.wbuf...)
	x.off.wbuf = x.off.wbuf[:0]
	x.off.wakeQueued = false
	x.off.mu.Unlock()
	if state != ctxDone {
		// a streamed part: send it, and let the writer go on unless the
		// client is behind (OnDrained signals it then)
		c.flush()
		if lc.OutboundBuffered() <= e.cfg.OutputBufferLimit {
			x.off.signal()
		}
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

// orphan takes c's request from it, on the loop, when the connection
// closed (cause context.Canceled) or request_timeout expired
// (context.DeadlineExceeded). A handler still running keeps the Ctx,
// orphaned: its writes fail with ErrClientGone, a stream writer or a
// Hijack waiting for the loop is released, its context ends with cause,
// a streamed body's reads fail, and its goroutine releases the Ctx when
// the handler returns (complete). Any other Ctx (the loop's own, or one
// whose response waits for OnWake) is released here. A launched request
// is uncounted.
//
// It returns what the loop still needs of the request, copied under the
// lock (snapshot), since the handler's goroutine may release the Ctx from
// then on: for request_timeout the request, which the loop answers 503;
// for a close, a streamed response cut short, which is observed. It takes
// nothing for request_timeout (ok false) once the response started or is
// complete: request_timeout bounds only the wait for the response to
// start (a stream then runs as long as its client reads, bounded by
// send_timeout), and a complete one OnWake sends.
func (c *conn) orphan(cause error) (y *Ctx, ok bool) {
	l := c.l
	x := c.ctx
	timedOut := cause == context.DeadlineExceeded
	x.off.mu.Lock()
	if timedOut && (x.off.sentStatus != 0 || x.off.state == ctxDone) {
		x.off.mu.Unlock()
		return nil, false
	}
	// A stream that had not pushed its head yet is answered 503 like any
	// other request (its next push finds it orphaned and drops it).
	if timedOut || x.off.sentStatus != 0 && l.e.cfg.Observer != nil {
		y = c.snapshot(x)
	}
	running := x.off.state == ctxRunning
	if running {
		x.off.conn = nil
		x.off.cause = cause
		x.off.gone.Store(true)
		x.endContext(cause)
		// Under the lock: once it is released the goroutine may recycle
		// x, and a signal would reach another request.
		x.off.signal()
		if ch := x.off.hijackCh; ch != nil {
			x.off.hijackCh = nil
			ch <- hijackResult{err: ErrClientGone} // buffered: never blocks
		}
	}
	counted := x.off.launched
	pipe := x.pipe
	x.off.mu.Unlock()
	// From here an orphaned goroutine may release (reset) x at any time:
	// touch only what was copied above.
	c.ctx = nil
	if pipe != nil {
		pipe.finish(ErrClientGone) // a pipe is never reused
	}
	if !running {
		l.e.putCtx(x)
	}
	if counted {
		l.uncount()
	}
	return y, true
}

// snapshot returns a fresh Ctx with what the observer and an error answer
// read of x's request (its head, parsed again from a copy, the addresses,
// the start time) and, for a streamed response, what went out of it. x's
// handler may still run: call it under x.off.mu, on the loop.
func (c *conn) snapshot(x *Ctx) *Ctx {
	y := c.l.e.getCtx()
	y.head = append(y.head[:0], x.head...) // a launched request owns its head (ownRequest)
	if err := reparse(&y.parser, y.head, &y.req); err != nil {
		y.req.Reset() // cannot happen: the same bytes parsed before
	}
	y.remote, y.local, y.secure = x.remote, x.local, x.secure
	y.started, y.route = x.started, x.route
	if x.off.sentStatus != 0 {
		y.status, y.bytesOut, y.bodySent = x.off.sentStatus, x.bytesOut, x.bodySent
	}
	return y
}

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
	if !c.off.launched {
		return nil, nil, ErrHijackInline
	}
	if c.streaming {
		return nil, nil, errors.New("engine: hijack after the response started")
	}
	c.off.mu.Lock()
	cn := c.off.conn
	if cn == nil {
		c.off.mu.Unlock()
		return nil, nil, ErrClientGone
	}
	ch := make(chan hijackResult, 1)
	c.off.hijackCh = ch
	lc := cn.lc
	c.off.mu.Unlock()
	if !lc.Wake() {
		return nil, nil, ErrClientGone
	}
	r := <-ch
	if r.err != nil {
		return nil, nil, r.err
	}
	c.off.mu.Lock()
	c.responseStarted() // the connection is the handler's: no deadline applies
	c.off.mu.Unlock()
	c.hijacked = true
	return r.conn, r.unread, nil
}

// detach runs on the loop for Hijack: it removes the connection from the
// loop and the engine, and hands its socket to the waiting handler.
func (c *conn) detach(x *Ctx, ch chan hijackResult) {
	f, unread, err := c.lc.Detach()
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
	c.lc.SetContext(nil)
	c.l.remove(c)
	x.off.mu.Lock()
	x.off.conn = nil // the goroutine releases the Ctx when the handler returns
	x.off.mu.Unlock()
	c.ctx = nil
	c.l.uncount()
	ch <- hijackResult{conn: nc, unread: unread}
}
