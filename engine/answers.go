package engine

import (
	"log/slog"
	"net/netip"

	"github.com/asyncd/asyncd/httpparse"
)

// unparsed returns the Ctx that answers a request refused before its head
// was complete (a parser error, a PROXY refusal, a header timeout), with
// what is known of it for the observer: the request line if the parser
// accepted it (else none: the access log shows "-"), the fields parsed
// before the error, and the connection's addresses. live says the input
// the parser read is still there (during OnRead); otherwise only the copy
// of the request line that process kept is left.
func (c *conn) unparsed(live bool) *Ctx {
	x := c.ctx
	if x == nil {
		x = c.l.e.getCtx() // nothing HTTP arrived yet (PROXY header stage)
		c.ctx = x
	}
	if !live || !lineParsed(&x.req) {
		x.req.Reset()
	}
	if !live && len(x.lineCopy) > 0 {
		// A lone request line parses up to the fields, then waits for
		// them: that fills the line's parts, pointing into the copy.
		reparse(&x.parser, x.lineCopy, &x.req) //nolint:errcheck // the same line parsed before
	}
	x.remote, x.local = c.lc.RemoteAddr(), c.lc.LocalAddr()
	return x
}

// reparse parses a copy of bytes that parsed before into req, with p, which
// is idle while no head is arriving.
func reparse(p *httpparse.Parser, buf []byte, req *httpparse.Request) error {
	p.Reset()
	_, err := p.ParseHead(buf, req)
	p.Reset()
	return err
}

// lineParsed reports whether the parser accepted r's request line. The
// parser sets Method and the version before it judges the target, but
// Path (non-nil, if empty, for every target form) only once the target is
// accepted; a head still arriving has all three once its line is done.
func lineParsed(r *httpparse.Request) bool {
	return len(r.Method) > 0 && r.Version() != "" && r.Path != nil
}

// appendRequestLine appends r's request line, as it was sent, with CRLF.
func appendRequestLine(b []byte, r *httpparse.Request) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Target...)
	b = append(b, ' ')
	b = append(b, r.Version()...)
	return append(b, '\r', '\n')
}

// failAndClose answers x's request (what is known of it) with a
// plain-text status and Connection: close, tells the observer, releases x
// and closes the connection.
func (c *conn) failAndClose(x *Ctx, status int) {
	l := c.l
	x.setError(status)
	l.out = x.appendResponse(l.out, l.date, true)
	l.e.observe(x)
	c.ctx = nil
	l.e.putCtx(x)
	c.flush()
	c.close()
}

// reject answers a parser error (an *httpparse.Error, or a malformed
// PROXY header: 400), tells the observer and closes the connection.
func (c *conn) reject(err error) {
	l := c.l
	status := 400
	pe, parsing := err.(*httpparse.Error)
	if parsing {
		status = pe.Status
	}
	if l.logging() {
		reason := err.Error()
		if parsing {
			reason = pe.Reason
		}
		l.logf(slog.LevelInfo, "bad request", "remote", c.lc.RemoteAddr(), "status", status, "reason", reason)
	}
	if status >= 0 && status < len(l.e.rejected) {
		l.e.rejected[status].Add(1)
	}
	x := c.ctx
	if x == nil || x.off.conn == nil {
		x = c.unparsed(true) // the head did not parse (off.conn is set once it does)
	}
	c.failAndClose(x, status)
}

// answer sends one of the engine's own responses to the current request.
// With a body still to come, the connection closes after the answer.
func (c *conn) answer(status int, extra string) {
	x := c.ctx
	req := &x.req
	x.status = status
	hasBody := req.Chunked || req.ContentLength > 0
	if status >= 400 {
		x.SetContentType("text/plain; charset=utf-8")
		x.SetBodyString(errorBody(status))
	}
	x.hdrs = append(x.hdrs, extra...)
	closing := !req.KeepAlive || hasBody || c.l.e.draining.Load() || x.closeAfter
	c.l.out, closing = x.appendEnd(c.l.out, c.l.date, closing)
	c.finish(x, closing)
}

// answerBadRequest answers the current request, whose head parsed, 400
// for reason: logged with the client's address remote, and counted as a
// rejection. The connection closes if a body was to follow.
func (c *conn) answerBadRequest(remote netip.AddrPort, reason string) {
	l := c.l
	if l.logging() {
		l.logf(slog.LevelInfo, "bad request", "remote", remote, "status", 400, "reason", reason)
	}
	l.e.rejected[400].Add(1)
	c.answer(400, "")
}
