package engine

import (
	"errors"
	"strconv"
)

// Streamed responses. Flush sends the head and what the body holds so far;
// from then on what the handler writes is framed (chunked, up to a
// declared length, or close-delimited for HTTP/1.0), staged, and pushed to
// the connection at each Flush and every streamChunk bytes: on the loop
// straight into its output, off it through the hand-off (pushOff), which
// makes the writer wait while its client is behind.

// streamChunk is how much a stream writer stages before it hands output to
// the loop.
const streamChunk = 32 << 10

// SetContentLength declares the length of a streamed body (so it is sent
// with Content-Length instead of chunked), or of a HEAD response's body.
func (c *Ctx) SetContentLength(n int64) {
	if n >= 0 && !c.streaming {
		c.contentLen = n
	}
}

// Flush sends the response headers and the body written so far, and turns
// the response into a stream: later writes go out as they are flushed
// (chunked, or with the length set by SetContentLength, or close-delimited
// for an HTTP/1.0 client). A handler running off the loop blocks in Flush
// while the client is behind by more than the output buffer limit, so a
// slow reader never makes the server buffer without bound. On the loop
// (worker_class sync) Flush cannot wait: mark a route that streams large
// responses blocking.
func (c *Ctx) Flush() error {
	if c.hijacked {
		return nil
	}
	if !c.streaming {
		c.streamHead()
	}
	return c.push()
}

// streamHead turns the response into a stream: it stages the response's
// head, followed by what the body holds so far.
func (c *Ctx) streamHead() {
	body := c.out
	c.streaming = true
	switch {
	case c.contentLen >= 0:
		c.streamCL = c.contentLen
	case c.ProtoAtLeast(1, 1):
		c.streamCL = -1
	default:
		c.streamCL = -2
		c.closeAfter = true
	}
	if !c.req.KeepAlive || (c.e != nil && c.e.draining.Load()) {
		c.closeAfter = true
	}
	if c.badHeader != "" {
		c.failBadHeader()
		body = c.out
		c.streamCL = int64(len(body))
	}
	date := *c.e.dateLine.Load()
	c.scratch = append(c.scratch[:0], body...)
	c.out = c.appendHead(c.out[:0], date, c.streamCL, c.closeAfter)
	if !bodyAllowed(c.status) || isHead(&c.req) {
		c.streamCL = 0
		return
	}
	c.out = c.frame(c.out, c.scratch)
}

// frame appends p to b with the stream's framing.
func (c *Ctx) frame(b, p []byte) []byte {
	if len(p) == 0 {
		return b
	}
	if c.streamCL >= 0 {
		if left := c.streamCL - c.streamSent; int64(len(p)) > left {
			p = p[:left]
		}
	}
	// Every framing counts its payload: the declared length is checked
	// against it, and the access log reports it (BodyBytesSent).
	c.streamSent += int64(len(p))
	if c.streamCL == -1 {
		b = strconv.AppendInt(b, int64(len(p)), 16)
		b = append(b, '\r', '\n')
		b = append(b, p...)
		return append(b, '\r', '\n')
	}
	return append(b, p...)
}

// streamWrite stages p and hands it to the loop once enough is staged.
func (c *Ctx) streamWrite(p []byte) (int, error) {
	if !bodyAllowed(c.status) || isHead(&c.req) {
		return len(p), nil
	}
	if c.streamCL >= 0 && c.streamSent+int64(len(p)) > c.streamCL {
		return 0, errors.New("engine: write past the declared Content-Length")
	}
	if c.off.launched && c.off.gone.Load() {
		c.out = c.out[:0] // nobody will read it
		return 0, ErrClientGone
	}
	c.out = c.frame(c.out, p)
	if len(c.out) >= streamChunk {
		if err := c.push(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// appendStreamTail appends what is still staged and the end of the stream,
// and counts them as sent (off the loop it runs under off.mu).
func (c *Ctx) appendStreamTail(b []byte) []byte {
	start := len(b)
	b = append(b, c.out...)
	c.out = c.out[:0]
	switch {
	case c.panicked:
		// The handler died mid-stream: the body is cut short, and the only
		// way left to say so is to close without completing the framing
		// (no last chunk, or fewer bytes than declared).
		c.closeAfter = true
	case c.streamCL == -1 && bodyAllowed(c.status) && !isHead(&c.req):
		b = append(b, "0\r\n"...)
		b = append(b, c.trailers...)
		b = append(b, '\r', '\n')
	case c.streamCL >= 0 && c.streamSent < c.streamCL:
		// The handler wrote less than it declared: the client cannot tell
		// where this response ends, so the connection must close.
		c.closeAfter = true
	}
	c.bytesOut += int64(len(b) - start)
	c.bodySent = c.streamSent
	return b
}

// push hands the staged output to the loop: on the loop straight to the
// connection, off it through the hand-off (pushOff), which waits until the
// loop has written it and the client is not too far behind.
func (c *Ctx) push() error {
	if c.off.launched {
		return c.pushOff()
	}
	if len(c.out) == 0 {
		return nil
	}
	cn := c.off.conn
	cn.l.out = append(cn.l.out, c.out...)
	c.bytesOut += int64(len(c.out))
	c.bodySent = c.streamSent
	c.out = c.out[:0]
	cn.flush()
	return nil
}
