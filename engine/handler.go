package engine

import (
	"context"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncd/asyncd/httpparse"
)

// Handler serves one request. Serve reads the request and builds the
// response through c; the engine sends the response when Serve returns
// (unless the handler streamed it or took the connection over). c and every
// slice it returns are only valid until Serve returns.
type Handler interface {
	Serve(c *Ctx)
}

// InlineHandler is implemented by handlers that must run on the event loop
// whatever the worker class, because they never block and must answer even
// when every off-loop worker is busy (health checks).
type InlineHandler interface {
	Handler
	Inline() bool
}

// BlockingHandler is implemented by handlers that must never run on the
// event loop, whatever the worker class (reverse proxy, files on disk).
type BlockingHandler interface {
	Handler
	Blocking() bool
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(c *Ctx)

// Serve calls f(c).
func (f HandlerFunc) Serve(c *Ctx) { f(c) }

// ctxState tracks a Ctx through its life.
type ctxState uint8

const (
	ctxIdle    ctxState = iota // in a pool
	ctxRunning                 // handler running
	ctxDone                    // handler returned, response ready
)

// Ctx is one request and its response. The engine owns it: a handler must
// not keep it, or any slice it returned, after Serve returns.
//
// Request accessors return slices into the engine's buffers without copying
// or allocating. Response methods build into per-Ctx buffers that are reused
// from request to request, so a handler that sets a few headers and a small
// body allocates nothing.
type Ctx struct {
	req httpparse.Request
	// parser parses req's head: here, not in the connection, so that an
	// idle keep-alive connection (which holds no Ctx) holds no parser.
	parser httpparse.Parser
	body   []byte // the whole request body when buffered
	head   []byte // owned copy of the head, when the request left the input buffer
	bodyBf []byte // owned body buffer (content-length or chunked, collected)
	chunk  httpparse.ChunkedDecoder

	remote  netip.AddrPort
	local   netip.AddrPort
	secure  bool
	route   *Route
	conn    *conn
	started time.Time

	// response
	status      int
	ctype       []byte
	hdrs        []byte // serialized extra header lines: "Name: value\r\n"...
	out         []byte // response body
	wbuf        []byte // serialized response (off-loop handlers)
	closeAfter  bool   // send Connection: close and close after the response
	badHeader   string // first refused header, for the 500 log line
	streaming   bool   // headers sent, chunked body being streamed
	streamCL    int64  // declared Content-Length for a streamed body, -1 if chunked
	streamSent  int64
	hijacked    bool
	bytesOut    int64
	timedOut    bool        // request_timeout fired; the handler's result is discarded
	gone        atomic.Bool // client left or request timed out while off the loop: set under mu, atomic so Write needs no lock
	offloop     bool        // running on another goroutine
	state       ctxState
	wake        chan struct{} // off-loop flush waits here for the loop
	reqCtx      *requestContext
	hasCtx      atomic.Bool // reqCtx set: set under mu, atomic so reset skips the lock when unset
	expect100   bool        // 100 Continue still owed before reading the body
	panicked    bool
	values      [4]any // handler-local storage for adapters (net/http)
	bodyReader  bodyReader
	contentLen  int64 // set by SetContentLength for HEAD-style responses, -1 unset
	mu          sync.Mutex
	flushQueued bool
	hijackCh    chan hijackResult
	pipe        *bodyPipe
	decodeBuf   []byte // de-chunked body bytes on their way to the pipe (loop only)
	pipeWake    func() bool
	streamFed   int64
	bodyDone    bool
	bodyFailed  bool // the streamed body's framing broke (loop only)
	streamHeld  bool
	contOwed    bool // the pipe owes 100 Continue: body_timeout waits (loop only)
	// lazy and lazyBuf are a deferred body's (deferBody), handler side.
	lazy    lazyState
	lazyBuf []byte
	scratch []byte
	e       *Engine

	// deadline is request_timeout's for a handler off the loop, set on
	// the loop before it runs; zero on the loop.
	deadline time.Time

	// bodySent is the response body bytes handed to the loop
	// (BodyBytesSent). Off the loop a stream's push updates it under mu, so
	// that the loop can read it while the handler still runs (snapshot).
	bodySent int64
	// sentStatus is the status of a streamed response once an off-loop
	// handler handed its head to the loop (under mu): from then on a
	// response went out, and it is observed even if it is cut short.
	sentStatus int
	// lineCopy keeps the request line of a head still incomplete: the
	// input it was parsed from is gone by the time a header timeout
	// answers the request.
	lineCopy []byte
	// pathBuf holds the normalized path when it differs from req.Path
	// (pathNorm): an owned buffer, so that it survives ownHead's re-parse
	// and an off-loop handler.
	pathBuf  []byte
	pathNorm bool
}

// lazyState is where a deferred body (deferBody) is for the handler.
type lazyState uint8

const (
	lazyNone     lazyState = iota // not deferred
	lazyPending                   // in the pipe, untouched: Body loads it
	lazyLoaded                    // Body loaded it whole into lazyBuf
	lazyStreamed                  // read as a stream (BodyReader, or too large for Body)
)

// Method returns the request method, e.g. "GET".
func (c *Ctx) Method() []byte { return c.req.Method }

// Target returns the request-target exactly as sent: the raw form of
// Path and Query, for handlers that need the client's own bytes.
func (c *Ctx) Target() []byte { return c.req.Target }

// Path returns the normalized path the route was matched on (package
// uripath: unreserved escapes decoded, dot segments removed, slashes
// merged), "/" for an absolute-form target without a path. Before the
// request is routed, and in Request().Path, it is the path as sent.
func (c *Ctx) Path() []byte {
	if c.pathNorm {
		return c.pathBuf
	}
	return c.req.Path
}

// Query returns the raw query (after '?', without it), or nil.
func (c *Ctx) Query() []byte { return c.req.Query }

// Host returns the effective authority: the absolute-form target's, or Host.
func (c *Ctx) Host() []byte { return c.req.Host }

// Proto returns the request's protocol version, e.g. "HTTP/1.1".
func (c *Ctx) Proto() string { return c.req.Version() }

// ProtoAtLeast reports whether the request's version is at least major.minor.
func (c *Ctx) ProtoAtLeast(major, minor int) bool {
	return int(c.req.Major) > major || int(c.req.Major) == major && int(c.req.Minor) >= minor
}

// Header returns the value of the first header field named name (ASCII
// case-insensitive), or nil. It does not allocate.
func (c *Ctx) Header(name string) []byte {
	v, _ := c.req.Header(name)
	return v
}

// Headers returns every request header field in the order received, names
// as sent and values trimmed of surrounding whitespace.
func (c *Ctx) Headers() []httpparse.Header { return c.req.Headers }

// Request returns the parsed request (read-only).
func (c *Ctx) Request() *httpparse.Request { return &c.req }

// Trailers returns the trailer fields of a chunked request body.
func (c *Ctx) Trailers() []httpparse.Header {
	if !c.req.Chunked {
		return nil
	}
	return c.chunk.Trailers
}

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
		n, err := c.pipe.read(buf[len(buf):min(cap(buf), limit+1)], c.pipeWake)
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

// RemoteAddr returns the client's address (after proxy-protocol or trusted
// forwarding headers have been applied). It is the zero AddrPort on a unix
// socket.
func (c *Ctx) RemoteAddr() netip.AddrPort { return c.remote }

// LocalAddr returns the address the connection was accepted on.
func (c *Ctx) LocalAddr() netip.AddrPort { return c.local }

// Scheme returns "https" when a trusted proxy said the client used TLS,
// otherwise "http".
func (c *Ctx) Scheme() string {
	if c.secure {
		return "https"
	}
	return "http"
}

// Route returns the route that matched, or nil for the engine's own answers.
func (c *Ctx) Route() *Route { return c.route }

// Context returns the request's context, created on first use. For a
// handler running off the loop, its Deadline is request_timeout's until
// the response starts (its head is sent: Flush, or a net/http body past
// 32 KiB) and none after; if request_timeout expires first, the context
// is cancelled with Err context.DeadlineExceeded and the client gets 503.
// It is cancelled with context.Canceled when the client goes away (or
// stops reading for send_timeout), when the server stops, and when the
// request ends. A handler on the loop (worker_class sync) has no deadline:
// request_timeout cannot interrupt it.
func (c *Ctx) Context() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reqCtx == nil {
		c.reqCtx = newRequestContext(c.deadline, c.sentStatus != 0 || c.hijacked)
		c.hasCtx.Store(true)
		switch { // asked for after the request ended its way: done already
		case c.timedOut:
			c.reqCtx.end(context.DeadlineExceeded)
		case c.gone.Load():
			c.reqCtx.end(context.Canceled)
		}
	}
	return c.reqCtx
}

// endContext cancels the request's context, if one was asked for, with
// err. Call it under mu.
func (c *Ctx) endContext(err error) {
	if c.reqCtx != nil {
		c.reqCtx.end(err)
	}
}

// responseStarted lifts request_timeout's deadline from the request's
// context: the response started (or the connection was hijacked). Call it
// under mu.
func (c *Ctx) responseStarted() {
	if c.reqCtx != nil {
		c.reqCtx.started.Store(true)
	}
}

// Value returns slot i of the handler-local storage (i < 4), for adapters
// that keep per-request state with the Ctx across pooled reuse.
func (c *Ctx) Value(i int) any { return c.values[i] }

// SetValue sets slot i of the handler-local storage.
func (c *Ctx) SetValue(i int, v any) { c.values[i] = v }

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
	if c.offloop && c.gone.Load() {
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
	if c.offloop && c.gone.Load() {
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

// maxPooledBuf is the largest response buffer a pooled Ctx keeps: one
// large response must not pin its memory in the pool for every later
// request.
const maxPooledBuf = 256 << 10

// keepBuf returns b emptied, or nil when it is too large to keep pooled.
func keepBuf(b []byte) []byte {
	if cap(b) > maxPooledBuf {
		return nil
	}
	return b[:0]
}

// reset prepares c for the next request, keeping its buffers (unless
// oversized).
func (c *Ctx) reset() {
	c.req.Reset()
	c.parser.Reset()
	c.body = nil
	c.head = c.head[:0]
	c.bodyBf = c.bodyBf[:0]
	c.chunk.Reset()
	c.route = nil
	c.conn = nil
	c.pathNorm = false
	c.started = time.Time{} // a refused head is timed from here (Engine.observe)
	c.status = 200
	c.ctype = c.ctype[:0]
	c.hdrs = c.hdrs[:0]
	c.out = keepBuf(c.out)
	c.wbuf = keepBuf(c.wbuf)
	c.scratch = keepBuf(c.scratch)
	c.decodeBuf = keepBuf(c.decodeBuf)
	c.closeAfter = false
	c.badHeader = ""
	c.streaming = false
	c.streamCL = -1
	c.streamSent = 0
	c.hijacked = false
	c.bytesOut = 0
	c.bodySent = 0
	c.sentStatus = 0
	c.lineCopy = c.lineCopy[:0]
	c.timedOut = false
	if c.gone.Load() { // a load, not a store: an atomic store costs a locked instruction per request
		c.gone.Store(false)
	}
	if c.offloop { // only off-loop requests have one: no store (and write barrier) for the others
		c.deadline = time.Time{}
	}
	c.offloop = false
	c.state = ctxIdle
	c.expect100 = false
	c.panicked = false
	c.values = [4]any{}
	c.bodyReader = bodyReader{}
	c.contentLen = -1
	c.flushQueued = false
	c.hijackCh = nil
	c.pipe = nil
	c.pipeWake = nil
	c.streamFed = 0
	c.bodyDone = false
	c.bodyFailed = false
	c.streamHeld = false
	c.contOwed = false
	c.lazy = lazyNone
	c.lazyBuf = keepBuf(c.lazyBuf)
	c.secure = false
	if c.hasCtx.Load() { // most requests never ask for a Context: no lock for them
		c.mu.Lock()
		c.reqCtx.end(context.Canceled)
		c.reqCtx = nil
		c.hasCtx.Store(false)
		c.mu.Unlock()
	}
}

// statusLine is the status line for code, with the reason phrase "Status"
// for a code net/http does not know.
func statusLine(code int) []byte {
	if code >= 100 && code < 600 && statusLines[code] != nil {
		return statusLines[code]
	}
	return append([]byte("HTTP/1.1 "+strconv.Itoa(code)+" Status"), '\r', '\n')
}
