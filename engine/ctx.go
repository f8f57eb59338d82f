package engine

import (
	"context"
	"net/netip"
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

// Value returns slot i of the handler-local storage (i < 4), for adapters
// that keep per-request state with the Ctx across pooled reuse.
func (c *Ctx) Value(i int) any { return c.values[i] }

// SetValue sets slot i of the handler-local storage.
func (c *Ctx) SetValue(i int, v any) { c.values[i] = v }

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
