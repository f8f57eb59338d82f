package engine

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncd/asyncd/httpparse"
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

// Engine is a loop.Handler that speaks HTTP/1.1. Its methods are safe from
// any goroutine, but the loop.Handler ones, which each loop calls on its
// own goroutine.
type Engine struct {
	// Set by New and read-only after.
	cfg        Config
	log        *slog.Logger
	loops      []*loopState // one per loop; each touched by its loop (loopstate.go)
	serverLine []byte

	// Any goroutine.
	draining atomic.Bool
	ctxPool  sync.Pool // reset Ctxs, for loops out of spares and for snapshot
	// dateLine is the current "Date: ...\r\n" line for off-loop
	// goroutines, replaced (never changed) by the first loop whose tick
	// sees a new second (dateSec); loops keep their own copy.
	dateLine atomic.Pointer[[]byte]
	dateSec  atomic.Int64
	rejected [600]atomic.Uint64 // requests refused, by status
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
// loop. A watchdog goroutine calls it (package serving); the loops pay only
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

func (e *Engine) getCtx() *Ctx {
	if v := e.ctxPool.Get(); v != nil {
		return v.(*Ctx)
	}
	c := &Ctx{status: 200, streamCL: -1, contentLen: -1, e: e}
	c.parser.Limits = e.cfg.Limits
	c.off.wake = make(chan struct{}, 1)
	return c
}

func (e *Engine) putCtx(c *Ctx) {
	c.reset()
	e.ctxPool.Put(c)
}

// routeName names r in log lines: its Name, or its path.
func routeName(r *Route) string {
	if r == nil {
		return ""
	}
	if r.Name != "" {
		return r.Name
	}
	return r.Path
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

// goExecutor runs a task on a new goroutine (the engine's default).
type goExecutor struct{}

func (goExecutor) Submit(_ int, t Task) bool {
	go t.Run()
	return true
}
