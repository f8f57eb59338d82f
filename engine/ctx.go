package engine

import (
	"fmt"
	"net/netip"
	"runtime/debug"
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

// serve runs x's handler, on the loop or off it, turning a panic into a
// 500 (or, once the response started, a response cut short).
func (x *Ctx) serve() {
	defer func() {
		if r := recover(); r != nil {
			x.e.handlerPanic(x, r)
		}
	}()
	x.route.Handler.Serve(x)
}

// handlerPanic logs a handler's panic, and answers 500 unless the response
// already started (a stream, which then ends cut short: appendStreamTail)
// or the connection was hijacked.
func (e *Engine) handlerPanic(x *Ctx, r any) {
	e.log.Error("handler panic", "route", routeName(x.route), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	x.panicked = true
	if x.streaming || x.hijacked {
		return
	}
	x.setError(500)
}

// Ctx is one request and its response. The engine owns it: a handler must
// not keep it, or any slice it returned, after Serve returns.
//
// Request accessors return slices into the engine's buffers without copying
// or allocating. Response methods build into per-Ctx buffers that are reused
// from request to request, so a handler that sets a few headers and a small
// body allocates nothing.
//
// A Ctx belongs to one goroutine at a time, the request's: its loop's
// while the request arrives, and while its handler runs there (inline);
// from launch, the goroutine its off-loop handler runs on, until complete
// hands it back to the loop (OnWake). Fields say where they differ from
// that. The one place both goroutines meet is off, the hand-off
// (handoff.go).
type Ctx struct {
	// The request: written on the loop before the handler runs, read-only
	// after (the loop copies it, under off.mu, for a request it takes from
	// a running handler: snapshot).
	req httpparse.Request
	// parser parses req's head: here, not in the connection, so that an
	// idle keep-alive connection (which holds no Ctx) holds no parser.
	parser httpparse.Parser
	head   []byte // owned copy of the head, once the request left the input buffer (ownHead)
	body   []byte // the whole body, when buffered; a deferred one's is loaded by the handler (loadBody)
	bodyBf []byte // owned body buffer, collected (readBody) or copied (ownRequest); the pipe's first bytes
	// chunk de-chunks a chunked body: on the loop, also while it streams
	// to a handler (feedPipe); the handler reads its Trailers once it
	// read the body to its end, which the pipe's lock orders after.
	chunk  httpparse.ChunkedDecoder
	remote netip.AddrPort
	local  netip.AddrPort
	secure bool
	route  *Route
	// started is when the request's head was whole (or, refused before
	// that, began): the observer times the request from it.
	started time.Time
	// lineCopy keeps the request line of a head still incomplete: the
	// input it was parsed from is gone by the time a header timeout
	// answers the request.
	lineCopy []byte
	// pathBuf holds the normalized path when it differs from req.Path
	// (pathNorm): an owned buffer, so that it survives ownHead's re-parse
	// and an off-loop handler.
	pathBuf  []byte
	pathNorm bool

	// The request body on its way to the handler (reqbody.go). pipe is
	// set on the loop before launch, and has a lock of its own; the loop
	// alone touches decodeBuf ... continued, even while the handler runs,
	// since it reads the body from the client.
	pipe       *bodyPipe
	decodeBuf  []byte // de-chunked body bytes on their way to the pipe
	bodyFed    int64  // bytes of a Content-Length body fed to the pipe so far
	bodyDone   bool   // the whole body went into the pipe
	bodyFailed bool   // the streamed body's framing broke, or body_timeout ended it
	bodyHeld   bool   // held for capacity before its stream started: streamBody again
	contOwed   bool   // the pipe owes 100 Continue: body_timeout waits for it
	continued  bool   // 100 Continue sent, or left to the pipe: never twice
	// lazy and lazyBuf are a deferred body's (deferBody): set on the loop
	// before launch, then the handler's. bodyReader is the handler's.
	lazy       lazyState
	lazyBuf    []byte
	bodyReader bodyReader

	// The response, built by the request's goroutine.
	status     int
	ctype      []byte
	hdrs       []byte // serialized extra header lines: "Name: value\r\n"...
	out        []byte // the body, or a stream's staged output
	contentLen int64  // set by SetContentLength for HEAD-style responses, -1 unset
	closeAfter bool   // send Connection: close and close after the response
	badHeader  string // first refused header, for the 500 log line (failBadHeader)
	panicked   bool
	hijacked   bool
	values     [4]any // handler-local storage for adapters (net/http)
	// A streamed response (stream.go). The loop reads streaming while an
	// off-loop handler runs (OnDrained), and only once a push made it
	// true: the push's lock orders the two.
	streaming  bool
	streamCL   int64  // declared Content-Length for a streamed body, -1 if chunked, -2 close-delimited
	streamSent int64  // body bytes framed so far
	trailers   []byte // a chunked stream's trailer fields, "Name: value\r\n"...
	scratch    []byte
	// bytesOut and bodySent are the response bytes, and its body bytes,
	// handed to the loop (BytesSent, BodyBytesSent). Once launched they
	// change under off.mu, so that the loop can read them while the
	// handler still runs (snapshot).
	bytesOut int64
	bodySent int64

	off handoff // shared with the loop once launched (handoff.go)
	e   *Engine // set when the Ctx is made
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
	c.pathNorm = false
	c.started = time.Time{} // a refused head is timed from here (Engine.observe)
	c.lineCopy = c.lineCopy[:0]
	c.secure = false

	c.pipe = nil
	c.decodeBuf = keepBuf(c.decodeBuf)
	c.bodyFed = 0
	c.bodyDone = false
	c.bodyFailed = false
	c.bodyHeld = false
	c.contOwed = false
	c.continued = false
	c.lazy = lazyNone
	c.lazyBuf = keepBuf(c.lazyBuf)
	c.bodyReader = bodyReader{}

	c.status = 200
	c.ctype = c.ctype[:0]
	c.hdrs = c.hdrs[:0]
	c.out = keepBuf(c.out)
	c.contentLen = -1
	c.closeAfter = false
	c.badHeader = ""
	c.panicked = false
	c.hijacked = false
	c.values = [4]any{}
	c.streaming = false
	c.streamCL = -1
	c.streamSent = 0
	c.trailers = nil
	c.scratch = keepBuf(c.scratch)
	c.bytesOut = 0
	c.bodySent = 0

	c.off.reset()
}
