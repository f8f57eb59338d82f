package engine

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/uripath"
)

// Task is work handed to an Executor: one request to run off the loop.
type Task interface{ Run() }

// Executor runs requests off the event loop (the async and gthread worker
// classes). Submit must not block; it returns false when it cannot take the
// task now, and the engine then holds the request back (back-pressure) until
// one of the loop's off-loop requests completes.
type Executor interface {
	Submit(loop int, t Task) bool
}

// Dispatch decides where a route's handler runs.
type Dispatch uint8

const (
	// Inline runs handlers on the event loop (worker_class sync).
	Inline Dispatch = iota
	// OffLoop runs every handler through the Executor (async, gthread).
	OffLoop
)

// Observer is told about every completed request, on the loop goroutine
// (access log, metrics). It must not block or keep c.
type Observer interface {
	Observe(c *Ctx, took time.Duration)
}

// Config configures an Engine. Zero durations disable that timeout.
type Config struct {
	Router   *Router
	Limits   httpparse.Limits
	Dispatch Dispatch
	// Executor runs off-loop requests (required when Dispatch is OffLoop or
	// a route is Blocking).
	Executor Executor
	// MaxInflight bounds off-loop requests per loop (worker_connections).
	MaxInflight int

	KeepAlive      time.Duration // idle time between requests
	HeaderTimeout  time.Duration // time to receive a whole request head
	BodyTimeout    time.Duration // longest gap between two reads of a body
	RequestTimeout time.Duration // longest an off-loop handler may take to start its response
	SendTimeout    time.Duration // longest the client may take no output while some waits
	BlockWarning   time.Duration // an inline handler holding the loop longer is logged
	// DrainIdle is how long a connection must stay idle before a draining
	// engine closes it; 0 means DefaultDrainIdle.
	DrainIdle time.Duration

	// BodyBufferSize is the largest request body buffered whole before the
	// handler runs (Ctx.Body); a larger one is streamed to the handler,
	// which then runs off the loop and reads it with Ctx.BodyReader.
	BodyBufferSize int
	// OutputBufferLimit is the per-connection output past which the engine
	// stops taking requests from that connection until it drains.
	OutputBufferLimit int
	// ServerHeader is the Server header value; empty sends none.
	ServerHeader string
	Logger       *slog.Logger
	Observer     Observer
	// Proxies decides whose forwarding headers are believed; nil trusts
	// nobody's.
	Proxies *Proxies
	// ProxyProtocol reads PROXY protocol headers (proxyheader.go); nil
	// reads none.
	ProxyProtocol *ProxyProtocol
	// Loops is the number of loops the backend runs.
	Loops int
}

// Engine is a loop.Handler that speaks HTTP/1.1.
type Engine struct {
	cfg        Config
	log        *slog.Logger
	loops      []*loopState
	serverLine []byte
	draining   atomic.Bool
	ctxPool    sync.Pool
	// dateLine is the current "Date: ...\r\n" line for off-loop
	// goroutines; loops keep their own copy.
	dateLine atomic.Pointer[[]byte]
	dateSec  atomic.Int64
	rejected [600]atomic.Uint64
}

// Stats is a snapshot of the engine's counters.
type Stats struct {
	Requests          uint64
	InFlight          int64
	ConnsPerLoop      []int
	BytesIn, BytesOut uint64
	Rejected          map[int]uint64 // parser rejections by status
}

// Stats returns the engine's counters; safe from any goroutine.
func (e *Engine) Stats() Stats {
	s := Stats{Requests: e.Requests(), Rejected: map[int]uint64{}}
	for _, l := range e.loops {
		s.BytesIn += l.bytesIn.Load()
		s.BytesOut += l.bytesOut.Load()
		s.InFlight += l.inflightN.Load()
		s.ConnsPerLoop = append(s.ConnsPerLoop, int(l.connsN.Load()))
	}
	for code := range e.rejected {
		if n := e.rejected[code].Load(); n > 0 {
			s.Rejected[code] = n
		}
	}
	return s
}

// New creates an engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Router == nil {
		return nil, fmt.Errorf("engine: no router")
	}
	if cfg.Loops < 1 {
		return nil, fmt.Errorf("engine: loops must be >= 1, got %d", cfg.Loops)
	}
	if cfg.Executor == nil && cfg.Dispatch == OffLoop {
		return nil, fmt.Errorf("engine: off-loop dispatch needs an executor")
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 1000
	}
	if cfg.OutputBufferLimit <= 0 {
		cfg.OutputBufferLimit = 256 << 10
	}
	if cfg.BodyBufferSize <= 0 {
		cfg.BodyBufferSize = 1 << 20
	}
	if cfg.Executor == nil {
		cfg.Executor = goExecutor{}
	}
	if cfg.DrainIdle <= 0 {
		cfg.DrainIdle = DefaultDrainIdle
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Proxies != nil {
		cfg.Proxies = cfg.Proxies.compiled()
	}
	lim := httpparse.DefaultLimits()
	if cfg.Limits.MaxRequestLine > 0 {
		lim.MaxRequestLine = cfg.Limits.MaxRequestLine
	}
	if cfg.Limits.MaxHeaderCount > 0 {
		lim.MaxHeaderCount = cfg.Limits.MaxHeaderCount
	}
	if cfg.Limits.MaxFieldSize > 0 {
		lim.MaxFieldSize = cfg.Limits.MaxFieldSize
	}
	if cfg.Limits.MaxBodySize > 0 {
		lim.MaxBodySize = cfg.Limits.MaxBodySize
	}
	if cfg.Limits.MaxChunkExtension > 0 {
		lim.MaxChunkExtension = cfg.Limits.MaxChunkExtension
	}
	cfg.Limits = lim
	e := &Engine{cfg: cfg, log: cfg.Logger}
	if cfg.ServerHeader != "" {
		e.serverLine = []byte("Server: " + cfg.ServerHeader + "\r\n")
	}
	now := time.Now()
	d := appendDate(nil, now)
	e.dateLine.Store(&d)
	e.dateSec.Store(now.Unix())
	for i := 0; i < cfg.Loops; i++ {
		// logBudget: the first second's lines too (OnTick refills it only
		// when the second changes).
		l := &loopState{e: e, idx: i, now: now, logBudget: 10}
		l.date = appendDate(nil, now)
		l.dateSec = now.Unix()
		if cfg.KeepAlive > 0 {
			l.idleDeadline = now.Add(cfg.KeepAlive)
		}
		l.heartbeat.Store(now.UnixNano())
		e.loops = append(e.loops, l)
	}
	return e, nil
}

// Drain starts a graceful stop: every next response carries "Connection:
// close", and a connection that stays idle for Config.DrainIdle (holding no
// request) is closed. The backend should stop accepting first.
func (e *Engine) Drain() { e.draining.Store(true) }

// Draining reports whether Drain was called.
func (e *Engine) Draining() bool { return e.draining.Load() }

// Limits returns the parser limits the engine enforces, Config.Limits
// with the defaults filled in.
func (e *Engine) Limits() httpparse.Limits { return e.cfg.Limits }

// Requests reports the number of requests answered so far.
func (e *Engine) Requests() uint64 {
	var n uint64
	for _, l := range e.loops {
		n += l.requests.Load()
	}
	return n
}

// Heartbeats returns, per loop, the time of its last tick as Unix
// nanoseconds: a loop whose heartbeat stops moving is stuck in a handler.
func (e *Engine) Heartbeats() []int64 {
	out := make([]int64, len(e.loops))
	for i, l := range e.loops {
		out[i] = l.heartbeat.Load()
	}
	return out
}

// BlockedLoop describes a loop stuck in an inline handler.
type BlockedLoop struct {
	Loop  int
	Route string
	Since time.Duration
}

// Blocked reports the loops whose last tick is older than threshold while
// an inline handler runs on them: a sync-class handler that blocks its
// loop. A watchdog goroutine calls it (package worker); the loops pay only
// two atomic stores per request for it.
func (e *Engine) Blocked(now time.Time, threshold time.Duration) []BlockedLoop {
	var out []BlockedLoop
	for i, l := range e.loops {
		rt := l.running.Load()
		if rt == nil {
			continue
		}
		if since := now.Sub(time.Unix(0, l.heartbeat.Load())); since > threshold {
			out = append(out, BlockedLoop{Loop: i, Route: routeName(rt), Since: since})
		}
	}
	return out
}

// loopState is the engine's state for one event loop; only that loop's
// goroutine touches it (except the atomics).
type loopState struct {
	e            *Engine
	idx          int
	conns        []*conn
	out          []byte // responses produced during one callback, written once
	date         []byte
	dateSec      int64
	now          time.Time
	inflight     int
	waiting      []*conn // connections held back for off-loop capacity
	draining     bool
	heartbeat    atomic.Int64
	running      atomic.Pointer[Route] // route of the inline handler running now (or that ran last in this callback)
	runningRoute *Route                // the loop's copy of running, so it is stored only on change
	idleDeadline time.Time             // now + KeepAlive, set at each tick; zero without keep-alive
	spare        []*Ctx                // reset Ctxs kept for this loop's next requests (getCtx)
	requests     atomic.Uint64         // requests finished on this loop (Engine.Requests sums them)
	bytesIn      atomic.Uint64
	bytesOut     atomic.Uint64
	inflightN    atomic.Int64 // inflight, readable off the loop
	inflightPub  int64        // the value last stored in inflightN: stored only on change
	connsN       atomic.Int64
	lastScan     time.Time
	logBudget    int // error-log lines left this second
}

// phase is where a connection is in its request cycle.
type phase uint8

const (
	phaseIdle    phase = iota // between requests (keep-alive)
	phaseHead                 // part of a request head received
	phaseBody                 // head complete, body arriving
	phaseRunning              // handler running off the loop
	phaseClosing              // closing after the last response
)

// conn is the engine's per-connection state. It is small on purpose: an
// idle keep-alive connection holds no buffers and no Ctx.
type conn struct {
	lc       loop.Conn
	l        *loopState
	idx      int
	ctx      *Ctx // the request in progress, with its parser; nil while idle
	phase    phase
	paused   bool // we paused reading for back-pressure or capacity
	waiting  bool // in l.waiting
	deadline time.Time
	// idleSeen is when a draining loop's scan first saw the connection
	// idle since it last went idle (zero: not seen yet; setIdle clears
	// it). Not when it went idle: the loop's l.now is only as fresh as its
	// last tick, and after a loop that could not run for a while it is
	// older than a response the loop just sent (see drainIdle).
	idleSeen time.Time
	served   uint32
	// rawHead is the current request's head in the input buffer; it is only
	// valid during OnRead.
	rawHead []byte
	// proxy is set while a PROXY protocol header may come (proxyheader.go).
	proxy proxyState
	// bodyDeadline is body_timeout for a body streamed through a pipe,
	// armed only while the loop waits for the client's bytes (not while
	// the handler is slow to read, nor while 100 Continue is still owed):
	// deadline then bounds the wait for the response (request_timeout).
	bodyDeadline time.Time
	// written counts the bytes handed to lc.Write; sendSeen is written as
	// the last send_timeout check saw it, sendTaken what the kernel had
	// taken then, and sendSince when that last changed while output
	// waited (zero: none waits). See sendStalled.
	written, sendSeen, sendTaken uint64
	sendSince                    time.Time
}

func (e *Engine) getCtx() *Ctx {
	if v := e.ctxPool.Get(); v != nil {
		return v.(*Ctx)
	}
	c := &Ctx{status: 200, streamCL: -1, contentLen: -1, e: e}
	c.parser.Limits = e.cfg.Limits
	c.wake = make(chan struct{}, 1)
	return c
}

func (e *Engine) putCtx(c *Ctx) {
	c.reset()
	e.ctxPool.Put(c)
}

// maxSpareCtx is how many reset Ctxs a loop keeps for itself.
const maxSpareCtx = 16

// getCtx is Engine.getCtx for the loop goroutine: it takes one of the
// loop's own spares first, which costs no sync.Pool pinning per request.
func (l *loopState) getCtx() *Ctx {
	if n := len(l.spare); n > 0 {
		x := l.spare[n-1]
		l.spare[n-1] = nil
		l.spare = l.spare[:n-1]
		return x
	}
	return l.e.getCtx()
}

// putCtx is Engine.putCtx for the loop goroutine.
func (l *loopState) putCtx(x *Ctx) {
	x.reset()
	if len(l.spare) < maxSpareCtx {
		l.spare = append(l.spare, x)
		return
	}
	l.e.ctxPool.Put(x)
}

// OnOpen implements loop.Handler.
func (e *Engine) OnOpen(lc loop.Conn) {
	l := e.loops[lc.Loop()]
	c := &conn{lc: lc, l: l, idx: len(l.conns)}
	c.proxy = e.proxyOpen(lc)
	c.setIdle()
	l.conns = append(l.conns, c)
	l.connsN.Store(int64(len(l.conns)))
	lc.SetContext(c)
}

// OnClose implements loop.Handler.
func (e *Engine) OnClose(lc loop.Conn, err error) {
	c, ok := lc.Context().(*conn)
	if !ok || c == nil {
		return
	}
	lc.SetContext(nil)
	l := c.l
	l.remove(c)
	if x := c.ctx; x != nil {
		c.ctx = nil
		x.mu.Lock()
		running := x.state == ctxRunning
		// An off-loop request counts in flight until OnWake, a timeout or
		// a hijack uncounts it (each also clears c.ctx): one whose handler
		// returned but whose Wake was not handled yet still counts.
		counted := x.offloop
		var cut *Ctx
		if x.sentStatus != 0 && e.cfg.Observer != nil {
			// The client left during a streamed response: that response
			// went out, in part, and is observed as such. From a copy,
			// since the handler may still own x.
			cut = c.snapshot(x)
		}
		if running {
			x.conn = nil // orphan: the goroutine releases it
			x.gone.Store(true)
			x.endContext(context.Canceled)
			// Under the lock: once it is released the goroutine may
			// recycle x, and a signal would reach another request.
			x.signal() // a stream writer waiting for the loop gives up
			if ch := x.hijackCh; ch != nil {
				x.hijackCh = nil
				ch <- hijackResult{err: ErrClientGone} // buffered: never blocks
			}
		}
		pipe := x.pipe
		x.mu.Unlock()
		// From here an orphaned goroutine may release (reset) x at any
		// time: touch only what was copied above.
		if pipe != nil {
			pipe.finish(ErrClientGone) // a pipe is never reused
		}
		if cut != nil {
			e.observe(cut)
			e.putCtx(cut)
		}
		if !running {
			e.putCtx(x)
		}
		if counted {
			l.inflight--
			l.publishInflight() // no flush follows a close
			l.admitWaiting()
		}
	}
}

// remove forgets a connection that closed or was detached.
func (l *loopState) remove(c *conn) {
	last := len(l.conns) - 1
	if c.idx <= last && l.conns[c.idx] == c {
		l.conns[c.idx] = l.conns[last]
		l.conns[c.idx].idx = c.idx
		l.conns[last] = nil
		l.conns = l.conns[:last]
		l.connsN.Store(int64(len(l.conns)))
	}
	if c.waiting {
		c.waiting = false
		for i, w := range l.waiting {
			if w == c {
				l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
				break
			}
		}
	}
}

// OnTick implements loop.Handler: the Date header, timeouts and draining.
func (e *Engine) OnTick(idx int, now time.Time) {
	l := e.loops[idx]
	l.now = now
	if ka := e.cfg.KeepAlive; ka > 0 {
		l.idleDeadline = now.Add(ka) // once per tick, not per request (setIdle)
	}
	l.heartbeat.Store(now.UnixNano())
	if s := now.Unix(); s != l.dateSec {
		l.dateSec = s
		l.date = appendDate(l.date[:0], now)
		l.logBudget = 10
		if old := e.dateSec.Load(); old != s && e.dateSec.CompareAndSwap(old, s) {
			d := appendDate(nil, now)
			e.dateLine.Store(&d)
		}
	}
	if !l.draining && e.draining.Load() {
		l.draining = true
		l.lastScan = time.Time{}
	}
	if now.Sub(l.lastScan) < 100*time.Millisecond {
		return
	}
	l.lastScan = now
	// Iterate backwards: closing a connection may swap-remove it.
	for i := len(l.conns) - 1; i >= 0; i-- {
		if i >= len(l.conns) {
			continue
		}
		c := l.conns[i]
		if !c.bodyDeadline.IsZero() && !now.Before(c.bodyDeadline) {
			c.pipeTimeout()
		}
		if st := e.cfg.SendTimeout; st > 0 && c.sendStalled(now, st) {
			c.sendTimeout()
			continue
		}
		if l.draining && c.drainIdle(now) {
			c.phase = phaseClosing
			c.lc.Close()
			continue
		}
		if c.deadline.IsZero() || now.Before(c.deadline) {
			continue
		}
		c.timeout()
	}
}

// DefaultDrainIdle is how long a keep-alive connection must stay idle
// after a response before a draining engine closes it. A keep-alive client
// that just got a response is usually about to send the next request:
// closing then would race that request (the client reads EOF where it
// expected an answer, and only some clients retry). Left open, its next
// request is answered with Connection: close and the client leaves
// politely. One idle this long is parked in a pool; closing it can only
// meet a request sent at that very moment and still on its way, the
// keep-alive race every client handles by retrying on a new connection
// (RFC 9112 §9.3.1), as on an ordinary keep-alive timeout.
const DefaultDrainIdle = time.Second

// drainIdle reports whether a draining loop may close c now (the scan of
// OnTick calls it every 100 ms or so with the loop's current time). Only a
// connection that is idle, holding no unread request (paused connections
// keep unconsumed input in the backend: a request held for capacity, or
// pipelined behind pending output), and seen idle by the scans for long
// enough: DrainIdle after a response; header_timeout, as for any request
// head, for a connection that has not sent its first request yet, since
// its client cannot tell a close from a failure (it retries a request
// only on a connection that served one before) and nginx too waits for
// that request. Then only if no input has arrived that the loop has not
// read yet: a loop that could not run for a while (CPU starved, or an
// inline handler holding it) ticks before it reads what came meanwhile,
// and closing then would throw away a request that was already here.
func (c *conn) drainIdle(now time.Time) bool {
	if c.phase != phaseIdle || c.paused || c.waiting {
		return false
	}
	if c.idleSeen.IsZero() {
		c.idleSeen = now // the wait starts now, by a fresh clock
		return false
	}
	wait := c.l.e.cfg.DrainIdle
	if c.served == 0 {
		if wait = c.l.e.cfg.HeaderTimeout; wait <= 0 {
			return false // graceful_timeout ends the wait
		}
	}
	return now.Sub(c.idleSeen) >= wait && !c.lc.InputPending()
}

// timeout handles an expired deadline.
func (c *conn) timeout() {
	l := c.l
	c.deadline = time.Time{}
	switch c.phase {
	case phaseIdle:
		c.phase = phaseClosing
		c.lc.Close()
	case phaseHead, phaseBody:
		if l.logging() {
			l.logf(slog.LevelInfo, "request timeout", "remote", c.lc.RemoteAddr(), "phase", c.phaseName())
		}
		x := c.ctx
		if x == nil || x.conn == nil {
			// The head is incomplete and the input it was parsed from is
			// gone: the observer gets the copy of its request line, if any.
			x = c.unparsed(false)
		}
		c.failAndClose(x, 408)
	case phaseRunning:
		x := c.ctx
		x.mu.Lock()
		if x.sentStatus != 0 || x.state == ctxDone {
			// request_timeout bounds the wait for the response to start:
			// its head went to the loop (a stream, which now runs as long
			// as its client reads, bounded by send_timeout), or it is
			// complete and OnWake will send it.
			x.mu.Unlock()
			return
		}
		x.timedOut = true
		// A stream that had not pushed its head yet is answered 503 like
		// any other request (its next push finds timedOut and drops the
		// output).
		// The 503 and the observer need the request, which the handler
		// may go on using (and then release): take a copy under the lock.
		y := c.snapshot(x)
		running := x.state == ctxRunning
		if running {
			x.conn = nil // the goroutine releases it when the handler returns
			x.gone.Store(true)
			x.signal() // under the lock, as in OnClose
			if ch := x.hijackCh; ch != nil {
				x.hijackCh = nil
				ch <- hijackResult{err: ErrClientGone}
			}
		}
		x.endContext(context.DeadlineExceeded)
		route, pipe := routeName(x.route), x.pipe
		x.mu.Unlock()
		// From here the goroutine may release x at any time: touch only
		// what was copied above.
		if pipe != nil {
			pipe.finish(ErrClientGone)
		}
		c.ctx = nil
		if !running {
			l.e.putCtx(x)
		}
		l.inflight--
		l.e.log.Warn("request_timeout exceeded", "route", route, "remote", c.lc.RemoteAddr(),
			"timeout", l.e.cfg.RequestTimeout)
		l.admitWaiting()
		c.failAndClose(y, 503)
	}
}

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

// errBodyTimeout fails a streamed body's read when the client stops
// sending it for body_timeout.
var errBodyTimeout = &httpparse.Error{Status: 408, Reason: "request body timeout"}

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

// armBody (re)starts body_timeout for a streamed body.
func (c *conn) armBody() {
	if bt := c.l.e.cfg.BodyTimeout; bt > 0 && !c.ctx.contOwed {
		c.bodyDeadline = c.l.now.Add(bt)
	}
}

func (c *conn) phaseName() string {
	switch c.phase {
	case phaseHead:
		return "headers"
	case phaseBody:
		return "body"
	}
	return "idle"
}

func routeName(r *Route) string {
	if r == nil {
		return ""
	}
	if r.Name != "" {
		return r.Name
	}
	return r.Path
}

// setIdle enters keep-alive idle between requests.
func (c *conn) setIdle() {
	c.phase = phaseIdle
	c.idleSeen = time.Time{}
	c.deadline = c.l.idleDeadline // zero without keep-alive
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
	c.phase = phaseClosing
	c.deadline = time.Time{}
	c.lc.Close()
}

// logging reports whether logf would write a line now. Callers on refusal
// paths check it first: the line's values (an address, a status, a
// reason) allocate when boxed, so that a flood of bad requests past the
// budget allocates nothing.
func (l *loopState) logging() bool { return l.logBudget > 0 }

// logf logs at most a few lines per second per loop, so that a flood of bad
// requests cannot flood the error log.
func (l *loopState) logf(level slog.Level, msg string, args ...any) {
	if l.logBudget <= 0 {
		return
	}
	l.logBudget--
	l.e.log.Log(nil, level, msg, args...) //nolint:staticcheck // nil context is allowed by slog
}

// OnRead implements loop.Handler: parse and serve as many requests as the
// input holds, then write every response they produced at once.
func (e *Engine) OnRead(lc loop.Conn, in []byte) int {
	c, ok := lc.Context().(*conn)
	if !ok || c == nil {
		return len(in)
	}
	if c.proxy != proxyNone {
		return c.proxyRead(in)
	}
	n := c.process(in)
	c.flush()
	c.l.bytesIn.Add(uint64(n))
	return n
}

// flush writes the responses accumulated during this callback.
func (c *conn) flush() {
	l := c.l
	if n := uint64(len(l.out)); n > 0 {
		c.lc.Write(l.out)
		c.written += n
		l.bytesOut.Add(n)
		l.out = l.out[:0]
	}
	if l.runningRoute != nil {
		l.running.Store(nil)
		l.runningRoute = nil
	}
	l.publishInflight()
}

// publishInflight makes inflight readable off the loop, storing only on
// change (an atomic store is a locked instruction).
func (l *loopState) publishInflight() {
	if n := int64(l.inflight); n != l.inflightPub {
		l.inflightN.Store(n)
		l.inflightPub = n
	}
}

// overLimit reports whether the connection has more output pending than the
// engine lets it have before it stops taking requests from it.
func (c *conn) overLimit() bool {
	return len(c.l.out)+c.lc.OutboundBuffered() > c.l.e.cfg.OutputBufferLimit
}

// process consumes requests from in and returns the bytes consumed.
func (c *conn) process(in []byte) int {
	l := c.l
	e := l.e
	off := 0
	for off < len(in) {
		switch c.phase {
		case phaseClosing:
			return len(in) // after Connection: close nothing more is read
		case phaseRunning:
			x := c.ctx
			if x.bodyFailed {
				// The body's framing broke: where the next request starts
				// is unknown, so nothing more is parsed; the connection
				// closes after the handler's answer.
				c.pauseRead()
				return len(in)
			}
			if x.pipe == nil || x.bodyDone {
				// One request in flight; the rest waits in the backend.
				// Past heldInputLimit stop reading: a client pipelining
				// behind a slow off-loop request would otherwise make the
				// backend buffer its input without bound. OnWake resumes
				// reading when the request completes.
				if len(in)-off > heldInputLimit {
					c.lc.PauseRead()
				}
				return off
			}
			n, stop := c.feedPipe(in[off:])
			off += n
			if stop {
				return off
			}
			continue
		case phaseBody:
			if c.ctx.streamHeld {
				if c.startStream() == dispatchHeld {
					return off
				}
				continue
			}
			if c.ctx.body == nil {
				n, done := c.readBody(in[off:])
				off += n
				if c.phase == phaseRunning {
					continue // the body turned out too large: now streamed
				}
				if !done {
					return off
				}
			}
			if c.dispatch() == dispatchHeld {
				return off
			}
			continue
		}
		if c.overLimit() {
			// Write what this read produced; pause only if the kernel did
			// not take it, since only queued output brings an OnDrained.
			c.flush()
			if c.lc.OutboundBuffered() > e.cfg.OutputBufferLimit {
				c.paused = true
				c.lc.PauseRead()
				return off
			}
		}
		if c.ctx == nil {
			c.ctx = l.getCtx()
		}
		x := c.ctx
		wasPartial := c.phase == phaseHead
		n, err := x.parser.ParseHead(in[off:], &x.req)
		if err != nil {
			c.reject(err)
			return len(in)
		}
		if n == 0 {
			if c.phase != phaseHead {
				c.phase = phaseHead
				if e.cfg.HeaderTimeout > 0 {
					c.deadline = l.now.Add(e.cfg.HeaderTimeout)
				}
				if e.cfg.Observer != nil {
					// A head refused before it is whole (408) is timed
					// from its first bytes; a parsed one from its end.
					x.started = time.Now()
				}
			}
			if e.cfg.Observer != nil && len(x.lineCopy) == 0 && lineParsed(&x.req) {
				// Once per request: a header timeout answers after this
				// input is gone, and the log should still show the line.
				x.lineCopy = appendRequestLine(x.lineCopy, &x.req)
			}
			return off
		}
		if wasPartial {
			// The head came in pieces: parse it again in one go so that
			// every slice points into the current input.
			x.parser.Reset()
			x.req.Reset()
			if n2, err := x.parser.ParseHead(in[off:off+n], &x.req); err != nil || n2 != n {
				c.reject(errParserDisagrees)
				return len(in)
			}
		}
		x.parser.Reset()
		start := off
		c.rawHead = in[off : off+n]
		c.phase = phaseBody
		c.deadline = time.Time{}
		x.conn = c
		x.remote = c.lc.RemoteAddr()
		x.local = c.lc.LocalAddr()
		if p := e.cfg.Proxies; p != nil && !x.applyForwarded(p) {
			if l.logging() {
				l.logf(slog.LevelInfo, "bad request", "remote", x.remote, "status", 400, "reason", "conflicting scheme headers")
			}
			e.rejected[400].Add(1)
			c.answer(400, "")
			return len(in)
		}
		if e.cfg.Observer != nil {
			x.started = time.Now() // request timing for the access log
		}
		if !c.route() {
			// answered already (404, 405, 501 ...)
			if c.phase == phaseClosing {
				return len(in)
			}
			off += n
			continue
		}
		req := &x.req
		bodyStart := off + n
		switch {
		case req.Chunked:
			x.chunk.Limits = e.cfg.Limits
			c.ownHead(c.rawHead)
			off = bodyStart
			if x.route.Inline {
				// An inline handler gets its body whole on the loop, so
				// the engine asks for it before the handler runs.
				c.sendContinue()
			}
			m, done := c.readBody(in[off:])
			off += m
			if c.phase == phaseRunning {
				continue
			}
			if !done {
				if c.phase == phaseBody && req.Expect100 && !x.route.Inline {
					if c.deferBody() == dispatchHeld {
						return off
					}
					continue
				}
				return off
			}
		case req.ContentLength > int64(e.cfg.BodyBufferSize) && !x.route.Inline:
			c.ownHead(c.rawHead)
			off = bodyStart
			if c.startStream() == dispatchHeld {
				return off
			}
			continue
		case req.Expect100 && !x.route.Inline && int64(bodyStart)+req.ContentLength > int64(len(in)):
			// The client waits for 100 Continue before it sends the body:
			// the handler decides whether it is sent (deferBody).
			c.ownHead(c.rawHead)
			off = bodyStart
			if c.deferBody() == dispatchHeld {
				return off
			}
			continue
		case req.ContentLength > 0:
			end := int64(bodyStart) + req.ContentLength
			if end <= int64(len(in)) {
				x.body = in[bodyStart:end]
				off = int(end)
				break
			}
			c.ownHead(c.rawHead)
			off = bodyStart
			c.sendContinue()
			m, done := c.readBody(in[off:])
			off += m
			if !done {
				return off
			}
		default:
			off = bodyStart
		}
		if c.dispatch() == dispatchHeld {
			// hold kept the Ctx if the request was already copied out of
			// the input (ownHead before dispatch, or ownRequest inside it
			// when the executor refused the task): it is consumed and
			// waits there. Otherwise hand the bytes back to be parsed again
			// on wake; returning start for a kept request would run it
			// twice.
			if c.ctx != nil {
				return off
			}
			return start
		}
	}
	return off
}

var rootPath = []byte("/")

// heldInputLimit is how much input behind a request running off the loop
// the engine lets the backend hold before it stops reading from the
// connection. Below it, modest pipelining costs no pause/resume syscalls.
const heldInputLimit = 64 << 10

var errParserDisagrees = &httpparse.Error{Status: 400, Reason: "request head changed between reads"}

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
	if x == nil || x.conn == nil {
		x = c.unparsed(true) // the head did not parse (x.conn is set once it does)
	}
	c.failAndClose(x, status)
}

// ownHead copies the head into the Ctx and re-parses it there, so that the
// request outlives the input buffer while its body arrives.
func (c *conn) ownHead(head []byte) {
	x := c.ctx
	x.head = append(x.head[:0], head...)
	x.req.Reset()
	if err := reparse(&x.parser, x.head, &x.req); err != nil {
		// cannot happen: the same bytes parsed a moment ago
		panic(fmt.Sprintf("engine: head re-parse failed: %v", err))
	}
	c.phase = phaseBody
	if bt := c.l.e.cfg.BodyTimeout; bt > 0 {
		c.deadline = c.l.now.Add(bt)
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
	return c.startStream()
}

// sendContinue answers Expect: 100-continue before the engine collects the
// body itself: only for inline routes, whose handler must get the body
// whole on the loop (deferBody does the rest).
func (c *conn) sendContinue() {
	x := c.ctx
	if x.req.Expect100 && !x.expect100 {
		x.expect100 = true
		c.l.out = append(c.l.out, continue100...)
		c.flush()
	}
}

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
		} else if len(x.bodyBf) > c.l.e.cfg.BodyBufferSize && !x.route.Inline {
			c.startStream() // too large to buffer: stream the rest
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

// route picks the request's route; it answers the request itself and
// returns false when there is nothing to dispatch.
func (c *conn) route() bool {
	x := c.ctx
	req := &x.req
	if !req.Chunked && req.ContentLength <= 0 && req.Expect100 {
		req.Expect100 = false // nothing to continue for
	}
	switch req.Form {
	case httpparse.AsteriskForm: // OPTIONS *
		c.answer(200, "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n")
		return false
	case httpparse.AuthorityForm: // CONNECT: asyncd is not a proxy, no tunnel
		x.closeAfter = true
		c.answer(501, "")
		return false
	}
	path, ok := c.normalPath()
	if !ok {
		return false
	}
	rt, allow := c.l.e.cfg.Router.Match(path, req.Method)
	if rt == nil {
		if allow != "" {
			c.answer(405, allow)
		} else {
			c.answer(404, "")
		}
		return false
	}
	x.route = rt
	return true
}

// normalPath returns the path routes, methods and handlers judge
// (uripath), or answers 400 and returns false when it has no normal form.
// An already normal path, the common case, is used in place.
func (c *conn) normalPath() ([]byte, bool) {
	x := c.ctx
	path := x.req.Path
	if len(path) == 0 {
		path = rootPath // absolute-form without a path (RFC 9112 §3.2.2)
	} else if uripath.IsNormal(path) {
		return path, true
	}
	var err error
	x.pathBuf, err = uripath.Append(x.pathBuf[:0], path)
	if err != nil {
		l := c.l
		if l.logging() {
			l.logf(slog.LevelInfo, "bad request", "remote", c.lc.RemoteAddr(), "status", 400, "reason", err.Error())
		}
		l.e.rejected[400].Add(1)
		c.answer(400, "")
		return nil, false
	}
	x.pathNorm = true
	return x.pathBuf, true
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
	closing = c.writeResponse(x, closing)
	c.finish(x, closing)
}

type dispatchResult uint8

const (
	dispatchDone dispatchResult = iota
	dispatchAsync
	dispatchHeld
)

// dispatch runs the handler for the request in c.ctx, whose body is
// complete.
func (c *conn) dispatch() dispatchResult {
	l := c.l
	e := l.e
	x := c.ctx
	if (e.cfg.Dispatch == OffLoop || x.route.Blocking) && !x.route.Inline {
		if l.inflight >= e.cfg.MaxInflight {
			return c.hold()
		}
		c.ownRequest()
		x.offloop = true
		x.state = ctxRunning
		c.phase = phaseRunning
		c.armRequestTimeout(x)
		l.inflight++
		if !e.cfg.Executor.Submit(l.idx, x) {
			l.inflight--
			x.state = ctxIdle
			x.offloop = false
			x.deadline = time.Time{} // reset clears it only for an off-loop request
			c.phase = phaseBody
			return c.hold()
		}
		return dispatchAsync
	}
	x.state = ctxRunning
	if l.runningRoute != x.route {
		// Stored when the route changes, and cleared once the callback's
		// batch is written (flush), not around every request: pipelined
		// requests to one route cost one atomic store, not two each.
		l.running.Store(x.route)
		l.runningRoute = x.route
	}
	c.runInline(x)
	closing := c.writeResponse(x, c.closing(x))
	c.finish(x, closing)
	return dispatchDone
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

// ownRequest makes the request independent of the input buffer before it
// leaves the loop.
func (c *conn) ownRequest() {
	x := c.ctx
	if len(x.head) > 0 {
		return
	}
	body := x.body
	c.ownHead(c.rawHead)
	if body != nil {
		x.bodyBf = append(x.bodyBf[:0], body...)
		x.body = x.bodyBf
	}
}

// closing reports whether the connection closes after x's response.
func (c *conn) closing(x *Ctx) bool {
	// The engine's flag, not the loop's copy: from the moment Drain returns
	// every response says close, not only from the loop's next tick.
	return !x.req.KeepAlive || x.closeAfter || c.l.e.draining.Load()
}

// runInline runs the handler on the loop, turning a panic into a 500.
func (c *conn) runInline(x *Ctx) {
	defer func() {
		if r := recover(); r != nil {
			c.l.e.handlerPanic(x, r)
		}
	}()
	x.route.Handler.Serve(x)
}

func (e *Engine) handlerPanic(x *Ctx, r any) {
	e.log.Error("handler panic", "route", routeName(x.route), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	x.panicked = true
	if x.streaming || x.hijacked {
		return
	}
	x.setError(500)
}

// writeResponse serializes x's response into the loop's output batch and
// reports whether the connection closes after it: the end of a stream can
// decide that (a panic, or a body shorter than its declared length).
func (c *conn) writeResponse(x *Ctx, closing bool) bool {
	l := c.l
	if x.hijacked {
		return closing
	}
	if x.badHeader != "" && !x.streaming {
		l.e.log.Error("handler set an invalid response header; answered 500", "route", routeName(x.route), "header", x.badHeader)
		x.setError(500)
	}
	if x.streaming {
		l.out = x.appendStreamTail(l.out)
		return closing || x.closeAfter
	}
	l.out = x.appendResponse(l.out, l.date, closing)
	return closing
}

func isHead(r *httpparse.Request) bool {
	return len(r.Method) == 4 && string(r.Method) == "HEAD"
}

// finish ends the request cycle on the loop: observe, release, and either
// close or go back to idle.
func (c *conn) finish(x *Ctx, closing bool) {
	l := c.l
	e := l.e
	l.requests.Add(1) // per loop: a shared counter's cache line would bounce between loops
	c.served++
	e.observe(x) // the engine's own answers (404, 405 ...) too
	hijacked := x.hijacked
	c.ctx = nil
	c.bodyDeadline = time.Time{}
	l.putCtx(x)
	if hijacked {
		c.phase = phaseClosing
		return
	}
	if closing {
		c.flush()
		c.phase = phaseClosing
		c.deadline = time.Time{}
		c.lc.Close()
		return
	}
	c.setIdle()
}

// observe tells the observer about x's response, timed from x.started
// (zero for a request refused on the read that began it: it took nothing
// measurable).
func (e *Engine) observe(x *Ctx) {
	o := e.cfg.Observer
	if o == nil {
		return
	}
	var took time.Duration
	if !x.started.IsZero() {
		took = time.Since(x.started)
	}
	o.Observe(x, took)
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

// OnDrained implements loop.Handler: output fell back under the limit.
func (e *Engine) OnDrained(lc loop.Conn) {
	c, ok := lc.Context().(*conn)
	if !ok || c == nil {
		return
	}
	if c.ctx != nil && c.ctx.streaming {
		c.ctx.signal()
	}
	if c.paused && !c.waiting {
		c.paused = false
		lc.ResumeRead()
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

// startStream dispatches the request off the loop before its body is
// complete; the loop then feeds the body through a pipe (feedPipe).
func (c *conn) startStream() dispatchResult {
	l := c.l
	e := l.e
	x := c.ctx
	if l.inflight >= e.cfg.MaxInflight {
		x.streamHeld = true
		if !c.paused {
			c.paused = true
			c.lc.PauseRead()
		}
		if !c.waiting {
			c.waiting = true
			l.waiting = append(l.waiting, c)
		}
		return dispatchHeld
	}
	x.streamHeld = false
	p := newBodyPipe(x.req.Expect100 && !x.expect100)
	x.contOwed = x.req.Expect100 && !x.expect100
	x.expect100 = true
	if len(x.bodyBf) > 0 {
		p.buf = x.bodyBf // what was buffered so far goes first
		p.received = int64(len(x.bodyBf))
		x.streamFed = int64(len(x.bodyBf))
		x.bodyBf = nil
		p.full = true
	}
	x.pipe = p
	lc := c.lc
	x.pipeWake = lc.Wake
	x.offloop = true
	x.state = ctxRunning
	c.phase = phaseRunning
	c.armRequestTimeout(x)
	l.inflight++
	c.armBody()
	if !e.cfg.Executor.Submit(l.idx, x) {
		go x.Run() // the executor is full but the body must move: run anyway
	}
	return dispatchAsync
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
	left := x.req.ContentLength - x.streamFed
	take := int(min(int64(len(in)), left, int64(space)))
	p.feed(in[:take])
	x.streamFed += int64(take)
	if x.streamFed == x.req.ContentLength {
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

// pauseRead stops reading from the connection.
func (c *conn) pauseRead() {
	if !c.paused {
		c.paused = true
		c.lc.PauseRead()
	}
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

// goExecutor runs a task on a new goroutine (the engine's default).
type goExecutor struct{}

func (goExecutor) Submit(_ int, t Task) bool {
	go t.Run()
	return true
}
