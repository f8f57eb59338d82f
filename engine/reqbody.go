package engine

import (
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/asyncd/asyncd/httpparse"
)

// Request bodies. One already in the input is used in place (process).
// One still arriving is collected whole into the Ctx (readBody), under
// body_timeout, up to Config.BodyBufferSize. A larger one streams to a
// handler launched before it is complete (streamBody): the loop feeds it
// through a bodyPipe (feedPipe) as the handler reads it, and stops reading
// from the client while the pipe is full. A body the client holds back
// for "Expect: 100-continue" goes the same way to an off-loop handler
// (deferBody), whose first read asks for it. The handler's side is Body
// and BodyReader.

// readBody collects body bytes from in into the Ctx's own buffer; it
// reports how many it consumed and whether the body is complete.
func (c *conn) readBody(in []byte) (int, bool) {
	x := c.ctx
	if bt := c.l.e.cfg.BodyTimeout; bt > 0 {
		c.deadline = c.l.now.Add(bt)
	}
	if x.req.Chunked {
		out, n, done, err := x.chunk.Decode(x.bodyBf, in)
		x.bodyBf = out
		if err != nil {
			c.reject(err)
			return len(in), false
		}
		if done {
			x.body = x.bodyBf
			c.deadline = time.Time{}
		} else if (len(x.bodyBf) > c.l.e.cfg.BodyBufferSize || x.route.StreamBody) && !x.route.Inline {
			c.streamBody() // too large to buffer, or not to be buffered: stream the rest
		}
		return n, done
	}
	need := int(x.req.ContentLength) - len(x.bodyBf)
	if need > len(in) {
		x.bodyBf = append(x.bodyBf, in...)
		return len(in), false
	}
	x.bodyBf = append(x.bodyBf, in[:need]...)
	x.body = x.bodyBf
	c.deadline = time.Time{}
	return need, true
}

// streamsBody reports whether a Content-Length body, of which have bytes
// are in the input, streams to its handler: one too large to buffer, or
// not all there yet on a route with request_buffering: false.
func (c *conn) streamsBody(have int64) bool {
	x := c.ctx
	n := x.req.ContentLength
	return n > int64(c.l.e.cfg.BodyBufferSize) || x.route.StreamBody && n > have
}

// sendContinue answers Expect: 100-continue before the engine collects the
// body itself: only for inline routes, whose handler must get the body
// whole on the loop (deferBody does the rest).
func (c *conn) sendContinue() {
	x := c.ctx
	if x.req.Expect100 && !x.continued {
		x.continued = true
		c.l.out = append(c.l.out, continue100...)
		c.flush()
	}
}

// deferBody dispatches a request whose client waits for "100 Continue"
// before it sends a body small enough to buffer. Buffering it first would
// mean sending 100 for a handler that never reads the body (RFC 9110
// §10.1.1: 100 asks for the content, so only a server that will read it
// should send it). Instead the handler runs at once, off the loop, and the
// body follows through the pipe as a streamed one does: the first
// Ctx.Body (which then loads it whole) or BodyReader read sends the 100.
// A handler that answers without touching the body gets no 100, and its
// answer closes the connection (complete), since the body never came.
func (c *conn) deferBody() dispatchResult {
	c.ctx.lazy = lazyPending
	return c.streamBody()
}

// streamBody dispatches the request off the loop before its body is
// complete; the loop then feeds the body to the handler through a pipe
// (feedPipe). Without off-loop capacity the request is held, its body
// waiting in the backend, until admitWaiting calls streamBody again.
func (c *conn) streamBody() dispatchResult {
	if !c.launch(true) {
		c.ctx.bodyHeld = true
		return c.hold()
	}
	return dispatchAsync
}

// openPipe gives c's request the pipe its body streams through, as launch
// starts it. What was buffered of the body so far goes first; 100
// Continue, if still owed, is left to the handler's first read.
func (c *conn) openPipe() {
	x := c.ctx
	x.bodyHeld = false
	owed := x.req.Expect100 && !x.continued
	p := newBodyPipe(owed, c.lc.Wake)
	x.contOwed = owed
	x.continued = true
	if len(x.bodyBf) > 0 {
		p.buf = x.bodyBf // what was buffered so far goes first
		x.bodyFed = int64(len(x.bodyBf))
		x.bodyBf = nil
		p.full = true
	}
	x.pipe = p
}

// feedPipe moves body bytes from in to the streaming handler; stop reports
// that the caller must return (paused, or waiting for more input).
func (c *conn) feedPipe(in []byte) (n int, stop bool) {
	x := c.ctx
	p := x.pipe
	space := p.space()
	if space <= 0 {
		return 0, c.pauseForPipe(1)
	}
	if x.req.Chunked {
		lim := min(len(in), space)
		out, used, done, err := x.chunk.Decode(x.decodeBuf[:0], in[:lim])
		x.decodeBuf = out[:0]
		if err != nil {
			// The handler's read gets err; the pipe stays incomplete, so
			// the answer carries Connection: close and the connection
			// closes after it (complete, OnWake).
			p.finish(err)
			x.bodyFailed = true
			c.bodyDeadline = time.Time{}
			c.pauseRead()
			if c.l.logging() {
				c.l.logf(slog.LevelInfo, "bad request body", "remote", c.lc.RemoteAddr(), "error", err.Error())
			}
			return len(in), true
		}
		p.feed(out)
		switch {
		case done:
			p.finish(nil)
			x.bodyDone = true
			c.bodyDeadline = time.Time{}
			return used, false
		case lim < len(in) && used > 0:
			return used, false // progress: go on with what is left
		case lim < len(in):
			// Not enough room for the next chunk line: wait for the reader
			// to free a useful amount.
			return used, c.pauseForPipe(min(len(in), 4096))
		default:
			c.armBody()
			return used, true // need more input
		}
	}
	left := x.req.ContentLength - x.bodyFed
	take := int(min(int64(len(in)), left, int64(space)))
	p.feed(in[:take])
	x.bodyFed += int64(take)
	if x.bodyFed == x.req.ContentLength {
		p.finish(nil)
		x.bodyDone = true
		c.bodyDeadline = time.Time{}
		return take, false
	}
	if take < len(in) {
		return take, c.pauseForPipe(1)
	}
	c.armBody()
	return take, true
}

// pauseForPipe stops reading until the handler drains the pipe; it returns
// false when the handler already made room (the caller feeds on).
func (c *conn) pauseForPipe(want int) bool {
	if !c.ctx.pipe.markFull(want) {
		return false
	}
	// Waiting for the handler, not the client: body_timeout resumes when
	// the handler makes room (OnWake).
	c.bodyDeadline = time.Time{}
	if !c.paused {
		c.paused = true
		c.lc.PauseRead()
	}
	return true
}

// pipeRequests does, on the loop, what the handler reading a streamed
// body asked for (OnWake): send 100 Continue, or read again once it made
// room in the pipe.
func (c *conn) pipeRequests() {
	x := c.ctx
	cont, more := x.pipe.takeRequests()
	if cont {
		c.l.out = append(c.l.out, continue100...)
		x.contOwed = false
		if !x.bodyDone && !x.bodyFailed {
			c.armBody() // the client sends the body now
		}
	}
	if more && c.paused && !x.bodyFailed {
		c.paused = false
		c.lc.ResumeRead()
		c.armBody()
	}
}

// armBody (re)starts body_timeout for a streamed body.
func (c *conn) armBody() {
	if bt := c.l.e.cfg.BodyTimeout; bt > 0 && !c.ctx.contOwed {
		c.bodyDeadline = c.l.now.Add(bt)
	}
}

// pipeTimeout ends a streamed body whose client went quiet for
// body_timeout: the handler's read fails with errBodyTimeout (status 408),
// and whatever it answers goes out with Connection: close, as after a body
// whose framing broke (the rest of the body would be mistaken for a
// request).
func (c *conn) pipeTimeout() {
	c.bodyDeadline = time.Time{}
	x := c.ctx
	if c.phase != phaseRunning || x == nil || x.pipe == nil || x.bodyDone || x.bodyFailed {
		return
	}
	if c.l.logging() {
		c.l.logf(slog.LevelInfo, "request timeout", "remote", c.lc.RemoteAddr(), "phase", "body")
	}
	x.pipe.finish(errBodyTimeout)
	x.bodyFailed = true
	c.pauseRead()
}

// errBodyTimeout fails a streamed body's read when the client stops
// sending it for body_timeout.
var errBodyTimeout = &httpparse.Error{Status: 408, Reason: "request body timeout"}

// lazyState is where a deferred body (deferBody) is for the handler.
type lazyState uint8

const (
	lazyNone     lazyState = iota // not deferred
	lazyPending                   // in the pipe, untouched: Body loads it
	lazyLoaded                    // Body loaded it whole into lazyBuf
	lazyStreamed                  // read as a stream (BodyReader, or too large for Body)
)

// Body returns the whole request body. Bodies up to the engine's body buffer
// size are buffered before the handler runs; a larger one is streamed to a
// handler running off the loop (whatever the worker class) and read with
// BodyReader, and Body then returns nil (BodyStreamed reports it).
//
// A client that sent "Expect: 100-continue" has not sent its body yet: the
// handler then runs off the loop before the body arrives, and the first
// call of Body sends "100 Continue" and waits for the whole body. If it
// turns out larger than the body buffer (a chunked body), or cannot be
// read (client gone, bad framing, body_timeout), Body returns nil and
// BodyStreamed reports true; BodyReader then yields the whole body (from
// its start) or the error.
func (c *Ctx) Body() []byte {
	if c.lazy == lazyPending {
		c.loadBody()
	}
	return c.body
}

// emptyBody is a loaded empty body: non-nil, so it is told from "none".
var emptyBody = []byte{}

// loadBody reads a deferred body from the pipe into lazyBuf. It runs on the
// handler's goroutine, off the loop: deferBody dispatches only there.
func (c *Ctx) loadBody() {
	limit := c.e.cfg.BodyBufferSize
	buf := c.lazyBuf[:0]
	if n := c.req.ContentLength; !c.req.Chunked && n > 0 && int64(cap(buf)) < n {
		buf = make([]byte, 0, n) // known size (at most the body buffer)
	}
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(4096, cap(buf)))
		}
		// At most limit+1 bytes: one past the limit proves it too large.
		n, err := c.pipe.read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			c.lazyBuf, c.lazy = buf, lazyLoaded
			c.body = buf
			if c.body == nil {
				c.body = emptyBody
			}
			return
		case err != nil || len(buf) > limit:
			c.lazyBuf, c.lazy = buf, lazyStreamed
			return
		}
	}
}

// BodyReader returns the request body as a stream. It works for buffered and
// streamed bodies alike; reading it is what sends "100 Continue" to a client
// that asked for it.
func (c *Ctx) BodyReader() io.Reader {
	c.bodyReader.c = c
	return &c.bodyReader
}

// BodyStreamed reports whether the body is streamed (larger than the body
// buffer): Body is then nil and BodyReader reads it as it arrives. For a
// body deferred by "Expect: 100-continue" it reports false until Body or
// BodyReader has looked at the body; check it after calling Body.
func (c *Ctx) BodyStreamed() bool {
	return c.pipe != nil && c.lazy != lazyPending && c.lazy != lazyLoaded
}

// bodyReader reads a buffered request body.
type bodyReader struct {
	c   *Ctx
	off int
}

// Read implements io.Reader.
func (r *bodyReader) Read(p []byte) (int, error) {
	c := r.c
	if c.lazy == lazyPending {
		c.lazy = lazyStreamed // read as a stream from here: Body stays nil
	}
	if pp := c.pipe; pp != nil && c.lazy != lazyLoaded {
		if r.off < len(c.lazyBuf) {
			// What Body took from the pipe before it found the body too
			// large to buffer comes first.
			n := copy(p, c.lazyBuf[r.off:])
			r.off += n
			return n, nil
		}
		return pp.read(p)
	}
	b := r.c.body
	if r.off >= len(b) {
		return 0, io.EOF
	}
	n := copy(p, b[r.off:])
	r.off += n
	return n, nil
}
