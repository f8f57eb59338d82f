// Package serving is asyncd's serving process: it turns a validated config
// into running event loops (routes built from plugins, the worker class's
// executor, the engine, a registered loop backend chosen by probing:
// loop.Choose), reports readiness, drains on request, and watches its
// loops' heartbeats.
//
// Worker classes map Gunicorn's names onto event loops: sync runs handlers
// inline on the loop; async (gevent, eventlet, tornado, uvicorn) runs each
// request on its own goroutine, taken from an elastic per-loop pool, at most
// worker_connections per loop; gthread runs them on a fixed pool of
// `threads` goroutines per loop with a bounded queue.
//
// It owns the serving process's lifecycle. It must not parse HTTP (engine,
// httpparse), touch sockets beyond handing them to a backend (bind, loop),
// or manage other processes (supervisor).
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/internal/bind"
	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/procstate"
	"github.com/asyncd/asyncd/internal/residency"
	"github.com/asyncd/asyncd/loop"
	_ "github.com/asyncd/asyncd/loop/standard" // the backends asyncd ships
	"github.com/asyncd/asyncd/plugins"
)

// Class is a worker class, normalized from the config's name.
type Class string

const (
	Sync    Class = "sync"
	Async   Class = "async"
	GThread Class = "gthread"
)

// ClassOf maps a Gunicorn worker_class name (and threads) to a Class. The
// names are config's (config.WorkerClass.Normalized), so every class the
// config accepts runs; "" is sync, and sync with threads > 1 is gthread, as
// in Gunicorn.
func ClassOf(name string, threads int) (Class, error) {
	if strings.TrimSpace(name) == "" {
		name = string(config.WorkerSync)
	}
	switch config.WorkerClass(name).Normalized() {
	case config.WorkerSync:
		if threads > 1 {
			return GThread, nil
		}
		return Sync, nil
	case config.WorkerAsync:
		return Async, nil
	case config.WorkerGthread:
		return GThread, nil
	}
	return "", fmt.Errorf("worker_class: unknown class %q (sync, async, gthread, or Gunicorn's gevent, eventlet, tornado, uvicorn)", name)
}

// Options configure a serving process.
type Options struct {
	Config *config.Config
	// Sockets to serve; nil binds the config's addresses.
	Sockets *bind.Set
	Logger  *slog.Logger
	// Observer sees every request (access log, metrics); may be nil.
	Observer engine.Observer
	// Ready is called once the loops accept connections.
	Ready func(info ReadyInfo)
	// Recycle is called (once) when max_requests or max_worker_memory says
	// the process should be replaced; without it the process drains and
	// exits by itself.
	Recycle func(reason string)
	// Stuck is called when a loop's heartbeat is older than the config's
	// timeout, with a goroutine dump already logged.
	Stuck func(loop int, since time.Duration)
}

// ReadyInfo describes a serving process that is ready.
type ReadyInfo struct {
	Backend string
	Loops   int
	Class   Class
	Addrs   []string
}

// Process is a serving process's running state.
type Process struct {
	cfg     *config.Config
	eng     *engine.Engine
	srv     loop.Server
	sockets *bind.Set
	log     *slog.Logger
	backend loop.Backend
	class   Class
	pool    *poolExecutor
	async   *elasticExecutor
	loops   int
	started atomic.Bool
	unready atomic.Bool
	reopen  []func()
	// plugins are the routes' plugins, whose lifecycle Run drives.
	plugins plugins.Instances
	// stopBy is when a drain gives up on requests in flight (Run's
	// goroutine: set by drain, read by cleanup); zero before a drain.
	stopBy time.Time
}

// Stats implements procstate.Source.
func (p *Process) Stats() procstate.Stats {
	st := p.eng.Stats()
	return procstate.Stats{Requests: st.Requests, InFlight: st.InFlight, ConnsPerLoop: st.ConnsPerLoop,
		BytesIn: st.BytesIn, BytesOut: st.BytesOut, Rejected: st.Rejected}
}

// Ready implements procstate.Source: serving, and not on its way out.
func (p *Process) Ready() bool {
	return p.started.Load() && !p.unready.Load() && !p.eng.Draining()
}

// SetUnready turns readiness off (SIGTERM with shutdown_delay: load
// balancers stop sending before connections close).
func (p *Process) SetUnready() { p.unready.Store(true) }

// OnReopen registers a function called by ReopenLogs (access log files).
func (p *Process) OnReopen(f func()) { p.reopen = append(p.reopen, f) }

// ReopenLogs reopens the process's log files (SIGUSR1).
func (p *Process) ReopenLogs() {
	for _, f := range p.reopen {
		f()
	}
}

// New prepares a serving process: routes, engine and backend; it binds the
// config's addresses when o.Sockets is nil. Nothing accepts until Run.
func New(o Options) (*Process, error) {
	cfg := o.Config
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	class, err := ClassOf(string(cfg.WorkerClass), cfg.Threads)
	if err != nil {
		return nil, err
	}
	router, ins, err := buildRoutes(cfg, log)
	if err != nil {
		return nil, err
	}
	backend, err := loop.Choose(string(cfg.Backend), log)
	if err != nil {
		return nil, err
	}
	loops := cfg.Loops()
	p := &Process{cfg: cfg, log: log, backend: backend, class: class, loops: loops, plugins: ins}
	ec := engine.Config{
		Router:            router,
		Loops:             loops,
		KeepAlive:         cfg.Keepalive,
		HeaderTimeout:     cfg.HeaderTimeout,
		BodyTimeout:       cfg.BodyTimeout,
		RequestTimeout:    cfg.RequestTimeout,
		SendTimeout:       cfg.SendTimeout,
		BlockWarning:      cfg.BlockWarning,
		OutputBufferLimit: int(cfg.OutputBufferLimit),
		BodyBufferSize:    int(cfg.BodyBufferSize),
		ServerHeader:      cfg.ServerHeader,
		Logger:            log,
		Observer:          o.Observer,
		Limits: httpparse.Limits{
			MaxRequestLine: cfg.RequestLineLimit(),
			MaxHeaderCount: cfg.HeaderCountLimit(),
			MaxFieldSize:   cfg.FieldSizeLimit(),
			MaxBodySize:    cfg.LimitRequestBody,
			// limit_chunk_extension: the validated range (1..1 MiB) never
			// hits httpparse's "0 means default".
			MaxChunkExtension: cfg.LimitChunkExtension,
		},
		MaxInflight: cfg.WorkerConnections,
	}
	proxies, err := engine.ParseProxies(cfg.ForwardedAllowIPs, cfg.SecureSchemeHeaders)
	if err != nil {
		return nil, fmt.Errorf("forwarded_allow_ips: %w", err)
	}
	ec.Proxies = &proxies
	if ec.ProxyProtocol, err = engine.ParseProxyProtocol(string(cfg.ProxyProtocol), cfg.ProxyAllowIPs); err != nil {
		return nil, err
	}
	switch class {
	case Sync, Async:
		// async runs every request off the loop, sync only its blocking
		// routes: both on the elastic pool, bounded like the engine.
		if class == Async {
			ec.Dispatch = engine.OffLoop
		}
		p.async = newElasticExecutor(loops, cfg.WorkerConnections)
		ec.Executor = p.async
	case GThread:
		ec.Dispatch = engine.OffLoop
		p.pool = newPoolExecutor(loops, cfg.Threads, cfg.WorkerConnections)
		ec.Executor = p.pool
		ec.MaxInflight = cfg.Threads + cfg.WorkerConnections
	}
	if p.eng, err = engine.New(ec); err != nil {
		return nil, err
	}
	p.sockets = o.Sockets
	if p.sockets == nil {
		p.sockets, err = bind.Open(cfg.Bind, bind.Options{Loops: loops, ReusePort: cfg.ReusePort,
			Backlog: cfg.Backlog, SocketMode: cfg.SocketMode})
		if err != nil {
			p.close()
			return nil, err
		}
	}
	p.srv, err = backend.New(loop.Config{
		Loops:     loops,
		Listeners: p.sockets.Listeners(loops),
		Handler:   p.eng,
		Logger:    log,
	})
	if err != nil {
		p.close()
		return nil, fmt.Errorf("backend %s: %w", backend.Name(), err)
	}
	return p, nil
}

// BuildRoutes builds the router of cfg through the plugin registry, so
// that --check-config finds every error the serving process would.
func BuildRoutes(cfg *config.Config) (*engine.Router, error) {
	r, _, err := buildRoutes(cfg, nil)
	return r, err
}

// buildRoutes builds the router and the plugins, whose Context loggers
// are log scoped to their route.
func buildRoutes(cfg *config.Config, log *slog.Logger) (*engine.Router, plugins.Instances, error) {
	var routes []*engine.Route
	var ins plugins.Instances
	for i, r := range cfg.Routes {
		if err := engine.CheckRoutePath(r.Path); err != nil {
			return nil, nil, fmt.Errorf("routes[%d].%s: %w", i, r.PathKey(), err)
		}
		pr := plugins.Route{Index: i, Path: r.Path, Handler: r.Handler, Options: r.Options}
		in, err := plugins.NewInstance(pr, log)
		if err != nil {
			return nil, nil, err
		}
		ins = append(ins, in)
		routes = append(routes, &engine.Route{
			Path: r.Path, Methods: r.Methods, Handler: in.Handler, Blocking: r.Blocking, Mount: r.Mount, StreamBody: r.StreamBody,
			Name: fmt.Sprintf("%s %s", pr, r.Handler),
		})
	}
	router, err := engine.NewRouter(routes)
	if err != nil {
		return nil, nil, err
	}
	return router, ins, nil
}

// Engine returns the process's engine (for plugins that need its state).
func (p *Process) Engine() *engine.Engine { return p.eng }

func (p *Process) close() {
	if p.pool != nil {
		p.pool.Close()
	}
	if p.async != nil {
		p.async.Close()
	}
}

// Run serves until ctx is cancelled (graceful stop: stop accepting, drain
// within graceful_timeout, then close what is left) or fast is closed
// (close everything now). It returns nil after a clean stop.
func (p *Process) Run(ctx context.Context, fast <-chan struct{}, o Options) error {
	defer p.close()
	if err := p.provision(ctx, fast); err != nil {
		return err
	}
	defer p.cleanup()
	stopChecks := p.startReadyChecks()
	defer stopChecks()
	errc := make(chan error, 1)
	go func() { errc <- p.srv.Serve() }()
	info := ReadyInfo{Backend: p.backend.Name(), Loops: p.loops, Class: p.class, Addrs: p.sockets.Addrs()}
	procstate.Publish(p)
	p.started.Store(true)
	p.log.Info("asyncd ready", "backend", info.Backend, "loops", info.Loops, "worker_class", string(info.Class),
		"bind", strings.Join(info.Addrs, ","), "pid", os.Getpid())
	if o.Ready != nil {
		o.Ready(info)
	}
	residency.Shed() //nolint:errcheck // only memory figures depend on it (internal/residency)
	monitor := time.NewTicker(100 * time.Millisecond)
	defer monitor.Stop()
	maxReq := uint64(0)
	if p.cfg.MaxRequests > 0 {
		maxReq = uint64(p.cfg.MaxRequests)
		if j := p.cfg.MaxRequestsJitter; j > 0 {
			maxReq += uint64(rand.IntN(j + 1))
		}
	}
	stuck := make([]bool, p.loops) // loops reported for this stall
	blocked := newBlockLog(blockLogEvery)
	recycled := false
	recycle := func(reason string) {
		if recycled {
			return
		}
		recycled = true
		p.log.Info("recycling the serving process", "reason", reason)
		if o.Recycle != nil {
			o.Recycle(reason)
		}
	}
	for {
		select {
		case err := <-errc:
			if err != nil {
				return fmt.Errorf("event loop: %w", err)
			}
			return nil
		case <-fast:
			p.srv.Stop()
			return <-errc
		case <-ctx.Done():
			return p.drain(errc, fast)
		case now := <-monitor.C:
			if maxReq > 0 && p.eng.Requests() >= maxReq {
				recycle(fmt.Sprintf("max_requests %d reached", maxReq))
			}
			if lim := p.cfg.MaxWorkerMemory; lim > 0 {
				if rss := RSS(); rss > int64(lim) {
					recycle(fmt.Sprintf("max_worker_memory: RSS %d > %d", rss, lim))
				}
			}
			if bw := p.cfg.BlockWarning; bw > 0 {
				for _, b := range p.eng.Blocked(now, bw+100*time.Millisecond) {
					if n, ok := blocked.due(b.Route, now); ok {
						p.log.Warn("handler is blocking its event loop", "loop", b.Loop, "route", b.Route,
							"for", b.Since.Round(time.Millisecond), "suppressed", n,
							"hint", "mark the route blocking: true, or use worker_class async")
					}
				}
			}
			if to := p.cfg.Timeout; to > 0 {
				for i, hb := range p.eng.Heartbeats() {
					if hb == 0 || i >= len(stuck) {
						continue
					}
					since := now.Sub(time.Unix(0, hb))
					if since <= to {
						stuck[i] = false
						continue
					}
					if stuck[i] {
						continue // reported already: one dump, not one per tick
					}
					stuck[i] = true
					p.log.Error("event loop is not responding (timeout)", "loop", i, "since", since.Round(time.Millisecond),
						"goroutines", Goroutines())
					if o.Stuck != nil {
						o.Stuck(i, since)
					}
				}
			}
		}
	}
}

// drain stops accepting, lets requests in flight finish within
// graceful_timeout, then stops.
func (p *Process) drain(errc <-chan error, fast <-chan struct{}) error {
	p.stopBy = time.Now().Add(p.cfg.GracefulTimeout)
	p.srv.StopAccepting()
	// A loop may be in an accept that began before StopAccepting: the
	// connection it gets counts in Conns only once the loop has opened it,
	// which it does before its next tick. Until every loop has ticked
	// since, no connection open proves nothing, and Stop would close one
	// just accepted, before its first request.
	before := p.eng.Heartbeats()
	p.eng.Drain()
	deadline := time.NewTimer(p.cfg.GracefulTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// The ticks first: a connection opened before them is in Conns.
		settled := ticked(before, p.eng.Heartbeats())
		open := 0
		for _, n := range p.srv.Conns() {
			open += n
		}
		if open == 0 && settled {
			p.srv.Stop()
			return <-errc
		}
		select {
		case <-tick.C:
		case <-fast:
			p.srv.Stop()
			return <-errc
		case <-deadline.C:
			p.log.Warn("graceful_timeout reached; closing remaining connections", "open", open,
				"graceful_timeout", p.cfg.GracefulTimeout)
			p.srv.Stop()
			return <-errc
		case err := <-errc:
			if err != nil {
				return err
			}
			return errors.New("event loops ended during drain")
		}
	}
}

// ticked reports whether every loop's heartbeat moved on from before.
func ticked(before, now []int64) bool {
	for i := range before {
		if now[i] == before[i] {
			return false
		}
	}
	return true
}

// Addrs returns the addresses the process listens on (port 0 resolved).
func (p *Process) Addrs() []string { return p.sockets.Addrs() }
