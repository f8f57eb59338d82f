package engine

import (
	"net/http"
	"strconv"
	"time"

	"github.com/asyncd/asyncd/httpparse"
)

// The response: the builder a handler fills (SetStatus, SetHeader, Write,
// ...), and its serialization into HTTP/1.1 bytes once the handler
// returns (appendEnd). A response turned into a stream by Flush is in
// stream.go; how an off-loop handler's response gets to the loop is in
// handoff.go.

// SetStatus sets the response status code (default 200).
func (c *Ctx) SetStatus(code int) {
	if code < 100 || code > 999 {
		code = 500
	}
	c.status = code
}

// Status returns the response status code set so far.
func (c *Ctx) Status() int { return c.status }

// SetContentType sets the Content-Type of the response.
func (c *Ctx) SetContentType(v string) {
	if !c.validValue(v) {
		c.refuse("Content-Type")
		return
	}
	c.ctype = append(c.ctype[:0], v...)
}

// SetHeader adds a response header field. Content-Length, Transfer-Encoding,
// Date, Server and Connection belong to the engine and are refused here; a
// name or value with CR, LF or another character not allowed in a field is
// refused too, and the response becomes a 500 (logged).
func (c *Ctx) SetHeader(name, value string) {
	c.AddHeaderBytes(s2b(name), s2b(value))
}

// AddHeaderBytes is SetHeader for byte slices; it does not allocate.
func (c *Ctx) AddHeaderBytes(name, value []byte) {
	if !validName(name) || !c.validValue(b2s(value)) {
		c.refuse(b2s(name))
		return
	}
	switch {
	case asciiEqualFold(name, "Content-Type"):
		c.ctype = append(c.ctype[:0], value...)
		return
	case asciiEqualFold(name, "Content-Length"), asciiEqualFold(name, "Transfer-Encoding"),
		asciiEqualFold(name, "Date"), asciiEqualFold(name, "Server"):
		return // the engine owns framing and these
	case asciiEqualFold(name, "Connection"):
		if asciiContainsTokenFold(value, "close") {
			c.closeAfter = true
		}
		return
	}
	c.hdrs = append(c.hdrs, name...)
	c.hdrs = append(c.hdrs, ':', ' ')
	c.hdrs = append(c.hdrs, value...)
	c.hdrs = append(c.hdrs, '\r', '\n')
}

// ResponseHeaders returns the extra header lines set so far, serialized.
func (c *Ctx) ResponseHeaders() []byte { return c.hdrs }

// ResponseHeader returns the value of a response header set by the handler.
func (c *Ctx) ResponseHeader(name string) []byte {
	if asciiEqualFold(s2b(name), "Content-Type") {
		return c.ctype
	}
	return findHeaderLine(c.hdrs, name)
}

// Write appends p to the response body. Off the loop, once the client has
// left (or the request timed out) it drops p and returns ErrClientGone, so
// a handler that ignores errors does not pile up output nobody will read.
func (c *Ctx) Write(p []byte) (int, error) {
	if c.streaming {
		return c.streamWrite(p)
	}
	if c.off.launched && c.off.gone.Load() {
		return 0, ErrClientGone
	}
	c.out = append(c.out, p...)
	return len(p), nil
}

// WriteString appends s to the response body, as Write.
func (c *Ctx) WriteString(s string) (int, error) {
	if c.streaming {
		return c.streamWrite(s2b(s))
	}
	if c.off.launched && c.off.gone.Load() {
		return 0, ErrClientGone
	}
	c.out = append(c.out, s...)
	return len(s), nil
}

// SetBody replaces the response body with p.
func (c *Ctx) SetBody(p []byte) { c.out = append(c.out[:0], p...) }

// SetBodyString replaces the response body with s.
func (c *Ctx) SetBodyString(s string) { c.out = append(c.out[:0], s...) }

// ResponseBody returns the response body built so far.
func (c *Ctx) ResponseBody() []byte { return c.out }

// SetConnectionClose makes the engine send "Connection: close" and close
// the connection after this response.
func (c *Ctx) SetConnectionClose() { c.closeAfter = true }

// BytesSent reports the response bytes sent so far: status line, headers,
// body and, for a streamed body, its chunk framing.
func (c *Ctx) BytesSent() int64 { return c.bytesOut }

// BodyBytesSent reports the response body bytes sent so far, without the
// head or chunk framing (Gunicorn's resp.sent, the access log's %(B)s): 0
// for HEAD, 1xx, 204 and 304; for a streamed body, what was handed to the
// connection.
func (c *Ctx) BodyBytesSent() int64 { return c.bodySent }

func (c *Ctx) refuse(name string) {
	if c.badHeader == "" {
		if name == "" {
			name = "(empty)"
		}
		c.badHeader = name
	}
}

// validValue reports whether v may be sent as a field value: no CR, LF, NUL
// or other control characters but HTAB.
func (c *Ctx) validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b < 0x20 && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

func validName(n []byte) bool {
	if len(n) == 0 {
		return false
	}
	for _, b := range n {
		if !isTokenChar(b) {
			return false
		}
	}
	return true
}

func isTokenChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// appendEnd appends the rest of x's response to b once its handler
// returned (or the engine answered for it): the whole response, or what a
// stream still holds and its end. It reports whether the connection closes
// after it: closing, or a stream that could not end cleanly
// (appendStreamTail).
func (x *Ctx) appendEnd(b, date []byte, closing bool) ([]byte, bool) {
	if x.streaming {
		b = x.appendStreamTail(b)
		return b, closing || x.closeAfter
	}
	if x.badHeader != "" {
		x.failBadHeader()
	}
	return x.appendResponse(b, date, closing), closing
}

// failBadHeader answers 500 instead of a response whose handler set an
// invalid header (refuse), and logs it: such a head is never sent.
func (x *Ctx) failBadHeader() {
	x.e.log.Error("handler set an invalid response header; answered 500", "route", routeName(x.route), "header", x.badHeader)
	x.setError(500)
}

// appendResponse serializes x's whole buffered response into b. A HEAD
// response carries the Content-Length a GET would have, and no body.
func (x *Ctx) appendResponse(b, date []byte, closing bool) []byte {
	n := int64(len(x.out))
	if x.contentLen >= 0 && len(x.out) == 0 && isHead(&x.req) {
		n = x.contentLen
	}
	// b may already hold the responses to earlier pipelined requests:
	// count only this one's bytes.
	start := len(b)
	b = x.appendHead(b, date, n, closing)
	if bodyAllowed(x.status) && !isHead(&x.req) {
		b = append(b, x.out...)
		x.bodySent = int64(len(x.out))
	}
	x.bytesOut += int64(len(b) - start)
	return b
}

// appendHead serializes the status line and headers of x's response with
// the given body length (-1 for chunked, -2 for close-delimited) into b.
func (x *Ctx) appendHead(b, date []byte, bodyLen int64, closing bool) []byte {
	b = append(b, statusLine(x.status)...)
	b = append(b, x.e.serverLine...)
	b = append(b, date...)
	if len(x.ctype) > 0 {
		b = append(b, "Content-Type: "...)
		b = append(b, x.ctype...)
		b = append(b, '\r', '\n')
	}
	b = append(b, x.hdrs...)
	switch {
	case x.status < 200 || x.status == 204 || x.status == 304:
		// RFC 9110 §8.6, RFC 9112 §6.3: no framing headers for these.
	case bodyLen == -1:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case bodyLen >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, bodyLen, 10)
		b = append(b, '\r', '\n')
	}
	if closing {
		b = append(b, "Connection: close\r\n"...)
	} else if x.req.Major == 1 && x.req.Minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, '\r', '\n')
}

// setError replaces the response with a plain-text error.
func (x *Ctx) setError(status int) {
	x.status = status
	x.ctype = append(x.ctype[:0], "text/plain; charset=utf-8"...)
	x.hdrs = x.hdrs[:0]
	x.out = append(x.out[:0], errorBody(status)...)
}

// statusLine is the status line for code, with the reason phrase "Status"
// for a code net/http does not know.
func statusLine(code int) []byte {
	if code >= 100 && code < 600 && statusLines[code] != nil {
		return statusLines[code]
	}
	return append([]byte("HTTP/1.1 "+strconv.Itoa(code)+" Status"), '\r', '\n')
}

// statusLines holds "HTTP/1.1 <code> <reason>\r\n" for every code net/http
// knows, built once so that writing a status line is a copy.
var statusLines [600][]byte

// errorBodies holds errorBody's text for the same codes, so that the
// engine's own answers (404, parser rejections, timeouts) allocate nothing.
var errorBodies [600]string

func init() {
	for code := 100; code < 600; code++ {
		if t := http.StatusText(code); t != "" {
			statusLines[code] = []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + t + "\r\n")
			errorBodies[code] = strconv.Itoa(code) + " " + t + "\n"
		}
	}
}

// errorBody is the plain-text body of the engine's own error answers.
func errorBody(status int) string {
	if status >= 100 && status < 600 && errorBodies[status] != "" {
		return errorBodies[status]
	}
	return strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
}

// Canned answers the engine sends itself.
var (
	continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")
)

// bodyAllowed reports whether a response with this status may carry a body
// (RFC 9110 §6.4.1: not 1xx, 204 or 304).
func bodyAllowed(status int) bool {
	return status >= 200 && status != 204 && status != 304
}

func isHead(r *httpparse.Request) bool {
	return len(r.Method) == 4 && string(r.Method) == "HEAD"
}

// appendDate appends an IMF-fixdate "Date: ...\r\n" header line for t.
func appendDate(b []byte, t time.Time) []byte {
	b = append(b, "Date: "...)
	b = t.UTC().AppendFormat(b, http.TimeFormat)
	return append(b, '\r', '\n')
}
