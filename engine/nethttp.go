package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/internal/loglimit"
)

// HTTPHandler runs a net/http Handler (an http.ServeMux with Go 1.22
// patterns, or any router built on net/http) as an asyncd handler.
//
// What the handler sees is what net/http would give it: Method, URL (the
// request target: no scheme or host for an origin-form one, also behind a
// trusted proxy; RequestScheme has asyncd's verdict), RequestURI, Proto,
// Header (canonical keys), Host, ContentLength and Body (0 and http.NoBody
// without a body), TransferEncoding, Trailer, RemoteAddr, and a Context
// that is cancelled when the client goes away or the request times out
// (with request_timeout's Deadline) and holds http.ServerContextKey and
// http.LocalAddrContextKey. A chunked request's trailer fields reach
// Trailer once the body was read to its end; a read after Body.Close
// fails with http.ErrBodyReadAfterClose.
//
// The ResponseWriter buffers the body and sends it with Content-Length when
// the handler returns; it implements http.Flusher (the response becomes a
// chunked stream, or uses the Content-Length the handler set), CloseNotify,
// http.ResponseController's FlushError, SetWriteDeadline, SetReadDeadline
// (on a streamed body) and EnableFullDuplex, and, for handlers running off
// the loop, http.Hijacker. Declared and http.TrailerPrefix trailers are
// sent after a chunked body. A write after the client left fails with an
// error matching syscall.EPIPE, one past the write deadline with
// os.ErrDeadlineExceeded, one past a declared Content-Length with
// http.ErrContentLength (a shorter body is cut, the connection closed), one
// to a 204 or 304 with http.ErrBodyNotAllowed. http.MaxBytesReader works as with net/http. A
// response the handler cannot finish (it panics, with http.ErrAbortHandler
// or anything else, after its response began) ends with the connection
// closed before its framing completes.
//
// Each of these is tested side by side with net/http's server
// (nethttp_parity_test.go); the differences from net/http are listed in
// docs/design.md ("net/http adapter").
func HTTPHandler(h http.Handler) Handler {
	// srv is what http.ServerContextKey holds: a description of the server
	// the handler runs in, never started (asyncd serves the requests). Its
	// presence is how handlers know a server will end a response they
	// abort (httputil.ReverseProxy then panics with http.ErrAbortHandler
	// when an upstream dies mid-body), and net/http logs through its
	// ErrorLog. Its other fields are zero: asyncd's settings govern.
	srv := &http.Server{Handler: h, ErrorLog: adapterErrorLog}
	return HandlerFunc(func(c *Ctx) {
		req, err := c.httpRequest(srv)
		if err != nil {
			c.setError(400)
			return
		}
		w := &responseWriter{c: c, header: make(http.Header)}
		defer w.recoverPanic()
		h.ServeHTTP(w, req)
		w.finish()
	})
}

// adapterErrorLog is the ErrorLog of the adapter's http.Server: net/http's
// lines about a handler, at WARN in the error log, rate-limited.
var adapterErrorLog = loglimit.NewLogLogger(nil, slog.LevelWarn)

// httpRequest builds the *http.Request for c, served by srv.
func (c *Ctx) httpRequest(srv *http.Server) (*http.Request, error) {
	target := string(c.req.Target)
	var u *url.URL
	var err error
	switch c.req.Form {
	case httpparse.AsteriskForm:
		u = &url.URL{Path: "*"}
	default:
		u, err = url.ParseRequestURI(target)
		if err != nil {
			return nil, err
		}
		if c.pathNorm {
			// URL.Path (and RawPath, set as net/http sets it) is the
			// normalized path the route matched; RequestURI keeps the
			// target as sent.
			p, err := url.ParseRequestURI(string(c.pathBuf))
			if err != nil {
				return nil, err
			}
			u.Path, u.RawPath = p.Path, p.RawPath
		}
	}
	h := make(http.Header, len(c.req.Headers))
	for _, f := range c.req.Headers {
		k := http.CanonicalHeaderKey(string(f.Name))
		if k == "Host" || k == "Transfer-Encoding" || k == "Trailer" && c.req.Chunked {
			// net/http moves Host to Request.Host, and a chunked body's
			// Trailer to Request.Trailer; framing is below.
			continue
		}
		h[k] = append(h[k], string(f.Value))
	}
	req := &http.Request{
		Method:     string(c.req.Method),
		URL:        u,
		Proto:      c.req.Version(),
		ProtoMajor: int(c.req.Major),
		ProtoMinor: int(c.req.Minor),
		Header:     h,
		Host:       string(c.req.Host),
		RequestURI: target,
		Close:      !c.req.KeepAlive,
		RemoteAddr: c.remote.String(),
	}
	if !c.remote.IsValid() {
		req.RemoteAddr = "@"
	}
	// The framing is the parser's verdict, never the field values as sent:
	// a handler that forwards the request (httputil.ReverseProxy) frames
	// the body it sends upstream from these two fields alone, and a value
	// net/http does not read as chunked would send the body unframed.
	// Without Content-Length or chunked there is no body (RFC 9112 §6.3),
	// and ContentLength is 0, as net/http's server says.
	switch {
	case c.req.Chunked:
		req.TransferEncoding, req.ContentLength = []string{"chunked"}, -1
	case c.req.ContentLength > 0:
		req.ContentLength = c.req.ContentLength
	}
	if c.req.Chunked {
		req.Trailer = c.declaredTrailer()
	}
	if req.ContentLength != 0 {
		req.Body = &requestBody{r: c.BodyReader(), c: c, req: req}
	} else {
		req.Body = http.NoBody
	}
	// URL is the request target, as net/http's server leaves it: an
	// origin-form target has no scheme or host (a trusted proxy's "https"
	// is not put there: URL.String would read "https:///path").
	return req.WithContext(&serverContext{Context: c.Context(), srv: srv, local: c.local, secure: c.secure}), nil
}

// declaredTrailer returns the names a chunked request's Trailer field
// declares, without values, as net/http's Request.Trailer holds them
// until the body was read (requestBody fills them in); nil without any.
func (c *Ctx) declaredTrailer() http.Header {
	var t http.Header
	for _, f := range c.req.Headers {
		if !asciiEqualFold(f.Name, "Trailer") {
			continue
		}
		for name := range strings.SplitSeq(string(f.Value), ",") {
			if k := http.CanonicalHeaderKey(strings.TrimSpace(name)); k != "" {
				if t == nil {
					t = make(http.Header)
				}
				t[k] = nil
			}
		}
	}
	return t
}

// requestBody is the adapter's Request.Body: the Ctx's BodyReader, whose
// reads after Close fail as net/http's do, and which puts a chunked body's
// trailer fields in req.Trailer once it was read to its end (net/http's
// mergeSetHeader: every field received, declared or not). closed is
// atomic: a handler may close the body from another goroutine.
type requestBody struct {
	r       io.Reader
	c       *Ctx
	req     *http.Request
	closed  atomic.Bool
	trailed bool // the trailer fields went into req.Trailer
}

// Read implements io.Reader.
func (b *requestBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.r.Read(p)
	if err == io.EOF && !b.trailed && b.c.req.Chunked {
		b.trailed = true
		for _, f := range b.c.chunk.Trailers {
			if b.req.Trailer == nil {
				b.req.Trailer = make(http.Header)
			}
			k := http.CanonicalHeaderKey(string(f.Name))
			b.req.Trailer[k] = append(b.req.Trailer[k], string(f.Value))
		}
	}
	return n, err
}

// Close implements io.Closer. What the handler left unread the engine
// deals with, as for any body (Connection: close when it streamed).
func (b *requestBody) Close() error {
	b.closed.Store(true)
	return nil
}

// RequestScheme returns the scheme asyncd decided a request came in with:
// "https" when a trusted proxy said so (forwarded_allow_ips and
// secure_scheme_headers), as Ctx.Scheme says to native handlers. The
// net/http adapter, like net/http's server, leaves r.URL the request
// target and r.TLS nil, so this is where a net/http handler finds it. For
// a request from another server it reports "https" when r.TLS is set.
func RequestScheme(r *http.Request) string {
	if secure, _ := r.Context().Value(secureKey{}).(bool); secure || r.TLS != nil {
		return "https"
	}
	return "http"
}

// secureKey is the context key of RequestScheme's verdict.
type secureKey struct{}

// serverContext adds what net/http's server puts in a request's context:
// http.ServerContextKey and http.LocalAddrContextKey. One value instead of
// two context.WithValue layers and an address nobody may ask for.
type serverContext struct {
	context.Context
	srv    *http.Server
	local  netip.AddrPort // invalid on a unix socket
	secure bool           // a trusted proxy said https (RequestScheme)
}

// Value implements context.Context.
func (s *serverContext) Value(key any) any {
	switch key {
	case http.ServerContextKey:
		return s.srv
	case http.LocalAddrContextKey:
		if !s.local.IsValid() {
			return &net.UnixAddr{Net: "unix"}
		}
		return net.TCPAddrFromAddrPort(s.local)
	case secureKey{}:
		return s.secure
	}
	return s.Context.Value(key)
}

// responseWriter is the http.ResponseWriter of HTTPHandler.
type responseWriter struct {
	c           *Ctx
	header      http.Header
	wroteHeader bool
	hijacked    bool
	sniff       bool       // no Content-Type set: detect it from the first write
	ext         *writerExt // what few handlers use, made on first use (nethttpctl.go)
}

// Header implements http.ResponseWriter.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		w.logIgnoredWriteHeader()
		return
	}
	if code >= 100 && code < 200 && code != 101 {
		return // interim responses are not forwarded; see docs
	}
	w.wroteHeader = true
	w.c.SetStatus(code)
	for k, vs := range w.header {
		switch k {
		case "Content-Length":
			if n, err := strconv.ParseInt(vs[0], 10, 64); err == nil {
				w.c.SetContentLength(n)
			}
			continue
		case "Trailer":
			w.declareTrailers(vs)
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue // sent after the body (sendTrailers)
		}
		for _, v := range vs {
			w.c.SetHeader(k, v)
		}
	}
	if _, ok := w.header["Content-Type"]; !ok && len(w.c.ctype) == 0 && bodyAllowed(code) {
		w.sniff = true
	}
}

// Write implements http.ResponseWriter. Off the loop, a body that grows past
// the stream threshold is flushed, so a large response never sits whole in
// memory.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.pastWriteDeadline() {
		return 0, errWriteTimeout
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.c.status) {
		return 0, http.ErrBodyNotAllowed // 204, 304: as net/http says
	}
	if w.pastContentLength(len(p)) {
		return 0, http.ErrContentLength
	}
	if w.sniff && len(w.c.ctype) == 0 && len(p) > 0 {
		w.c.SetContentType(http.DetectContentType(p))
	}
	n, err := w.c.Write(p)
	if err == nil && !w.c.streaming && w.c.off.launched && len(w.c.out) >= streamChunk {
		err = w.c.Flush()
	}
	if err != nil {
		return n, w.writeErr(err)
	}
	if w.pastWriteDeadline() {
		return 0, errWriteTimeout // it passed while the write waited for the client
	}
	return n, nil
}

// writeErr is what a failed write or flush returns: net/http's error for
// a client that left, or for a write deadline that passed while the
// write waited for the client (the response is then cut short).
func (w *responseWriter) writeErr(err error) error {
	if w.pastWriteDeadline() {
		return errWriteTimeout
	}
	return httpWriteErr(err)
}

// WriteString implements io.StringWriter.
func (w *responseWriter) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() {
	w.FlushError() //nolint:errcheck // http.Flusher has no error
}

// FlushError is Flush with an error, as http.ResponseController uses.
func (w *responseWriter) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if w.pastWriteDeadline() {
		return errWriteTimeout
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.c.Flush(); err != nil {
		return w.writeErr(err)
	}
	if w.pastWriteDeadline() {
		return errWriteTimeout
	}
	return nil
}

// Hijack implements http.Hijacker: the returned conn belongs to the caller,
// and the reader holds any bytes the client sent after this request.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.wroteHeader && w.c.streaming {
		return nil, nil, errors.New("asyncd: hijack after the response started")
	}
	conn, unread, err := w.c.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	var r io.Reader = conn
	if len(unread) > 0 {
		r = io.MultiReader(bytes.NewReader(unread), conn)
	}
	return conn, bufio.NewReadWriter(bufio.NewReader(r), bufio.NewWriter(conn)), nil
}

// recoverPanic ends the response of a handler that panicked. Once the
// handler began its response (WriteHeader or Write), what it wrote goes out
// with the framing it would have had and the connection closes before that
// framing completes (no last chunk, fewer bytes than the Content-Length),
// so the client sees the cut, as nginx shows an upstream that died
// mid-body. http.ErrAbortHandler, net/http's sentinel for "abort this
// response", is logged at DEBUG only, and with nothing to cut short it
// closes the connection without an answer, as net/http does; any other
// panic is logged with its stack and, when nothing went out, answered 500.
func (w *responseWriter) recoverPanic() {
	r := recover()
	if r == nil {
		return
	}
	w.endWriteDeadline()
	c := w.c
	abort := r == http.ErrAbortHandler
	switch {
	case w.hijacked || c.streaming:
	case w.wroteHeader && w.canCut():
		c.Flush() //nolint:errcheck // a client that left needs no answer; the close below is the point
	case abort:
		// No answer at all: the stream is empty and ends in a close.
		c.status, c.out, c.streaming = http.StatusInternalServerError, c.out[:0], true
	}
	if !abort {
		c.e.handlerPanic(c, r) // logs; answers 500 unless the response streams
		return
	}
	c.panicked = true // the stream ends in a close, never in its last chunk
	if c.e != nil {
		c.e.log.Debug("net/http handler aborted its response (http.ErrAbortHandler)", "route", routeName(c.route))
	}
}

// canCut reports whether the response written so far, sent as a stream,
// could end without looking complete: it has a body, and chunked framing
// (HTTP/1.1) or a declared Content-Length it has not reached. A
// close-delimited body (HTTP/1.0 without a length) cannot show the cut.
func (w *responseWriter) canCut() bool {
	c := w.c
	switch {
	case !bodyAllowed(c.status) || isHead(&c.req):
		return false
	case c.contentLen >= 0:
		return int64(len(c.out)) < c.contentLen
	}
	return c.ProtoAtLeast(1, 1)
}

// pastContentLength reports whether n more body bytes would pass the
// Content-Length the handler declared: net/http refuses such a write whole.
func (w *responseWriter) pastContentLength(n int) bool {
	c := w.c
	if c.contentLen < 0 || isHead(&c.req) {
		return false
	}
	written := c.streamSent
	if !c.streaming {
		written = int64(len(c.out))
	}
	return written+int64(n) > c.contentLen
}

// endShort sends a body shorter than the Content-Length the handler
// declared under that length, and the connection closes after it
// (appendStreamTail): the client sees the response cut short, as net/http
// shows it. Sent with the length written, a body cut short by the
// handler's error (a failed read while copying a file) would look whole.
func (w *responseWriter) endShort() {
	c := w.c
	if c.contentLen >= 0 && !c.streaming && bodyAllowed(c.status) && !isHead(&c.req) && int64(len(c.out)) < c.contentLen {
		c.streamHead()
	}
}

// finish completes the response when ServeHTTP returns.
func (w *responseWriter) finish() {
	w.endWriteDeadline()
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.pastWriteDeadline() {
		return // net/http's final flush fails on a timed-out connection
	}
	w.endShort()
	w.sendTrailers()
}
