package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/asyncd/asyncd/engine"
)

// A plugin's lifecycle follows Caddy's modules. The factory builds and
// validates (it runs in the supervisor, in --check-config and in each
// serving process); the handler it returns (for HTTP plugins, the
// http.Handler) may implement any of these, which run in serving
// processes only:
//
//   - Provisioner: once, before the process reports ready, so that a new
//     generation warms up (opens and pings its pool) before it takes
//     traffic. An error fails the generation's start: on a reload the old
//     generation keeps serving.
//   - ReadyChecker: every ReadyInterval while the process serves; a failing
//     check turns the health plugin's readiness answer to 503, naming it.
//   - CleanerUpper: once, when the process stops, after its last request
//     in flight finished (or graceful_timeout ran out): close pools there.
//
// A handler mounted on several routes (one RegisterHTTP value named by two
// routes) is provisioned, checked and cleaned up once.

// Provisioner is a handler that prepares itself in the serving process.
type Provisioner interface {
	// Provision runs before the process reports ready. ctx ends after the
	// config's timeout (Gunicorn's worker timeout, 30s by default) or when
	// the process is told to stop.
	Provision(ctx context.Context) error
}

// ReadyChecker is a handler whose dependencies decide readiness.
type ReadyChecker interface {
	// CheckReady reports whether the handler can serve now (a database
	// ping). It runs on a goroutine of its own, never on an event loop,
	// and ctx ends after ReadyTimeout.
	CheckReady(ctx context.Context) error
}

// CleanerUpper is a handler that releases what Provision acquired.
type CleanerUpper interface {
	// Cleanup runs once when the serving process stops, after the last
	// request in flight finished (or graceful_timeout ran out), also when
	// Provision of this or a later route failed. It should not block long:
	// the process waits at most CleanupTimeout for all cleanups together.
	Cleanup() error
}

// Intervals of the lifecycle, which docs/design.md ("Plugin lifecycle") states.
const (
	// ReadyInterval is how often the serving process runs the checks.
	ReadyInterval = time.Second
	// ReadyTimeout bounds one check.
	ReadyTimeout = 2 * time.Second
	// CleanupTimeout bounds the cleanups of a stopping process together.
	CleanupTimeout = 5 * time.Second
)

// httpPlugin is the engine handler of a net/http plugin, with the
// http.Handler whose lifecycle methods run.
type httpPlugin struct {
	engine.Handler
	h http.Handler
}

// HTTPFactory builds a route's net/http handler from its context and its
// options, decoded from the route's `options:` mapping into O (a struct
// whose fields carry `option:"name"` tags, as Decode reads them; fields not
// in the mapping keep their zero value).
type HTTPFactory[O any] func(ctx *Context, opts O) (http.Handler, error)

// RegisterHTTPFactory registers a net/http plugin that takes route options:
// the factory runs once per route naming it, with the route's options, so
// that a DSN or an upstream URL lives in the config rather than in the
// environment. The http.Handler it returns may implement Provisioner,
// ReadyChecker and CleanerUpper.
func RegisterHTTPFactory[O any](name string, f HTTPFactory[O]) {
	if f == nil {
		panic("plugins: RegisterHTTPFactory " + name + ": nil factory")
	}
	Register(name, func(r Route) (engine.Handler, error) {
		var o O
		if err := Decode(r.Options, &o); err != nil {
			return nil, err
		}
		h, err := f(r.Context(), o)
		if err != nil {
			return nil, err
		}
		if h == nil {
			return nil, errors.New("plugin returned no handler")
		}
		return &httpPlugin{Handler: engine.HTTPHandler(h), h: h}, nil
	})
}

// Instance is one route's plugin, built: its engine handler and what its
// lifecycle methods are called on.
type Instance struct {
	Route   Route
	Handler engine.Handler
	life    any // the handler, or the http.Handler an HTTP plugin wraps
}

// NewInstance builds route r's handler with a Context whose logger is log
// (slog.Default when nil) scoped to the route. Errors name the route.
func NewInstance(r Route, log *slog.Logger) (*Instance, error) {
	r.ctx = contextFor(r, log)
	f, ok := Lookup(r.Handler)
	if !ok {
		return nil, fmt.Errorf("%s: handler: unknown plugin %q (available: %s)", r, r.Handler, strings.Join(Names(), ", "))
	}
	h, err := f(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	if h == nil {
		return nil, fmt.Errorf("%s: plugin %s returned no handler", r, r.Handler)
	}
	in := &Instance{Route: r, Handler: h, life: h}
	if hp, ok := h.(*httpPlugin); ok {
		in.Handler, in.life = hp.Handler, hp.h
	}
	return in, nil
}

// Name names the instance in logs and in the health plugin's answer:
// "users (routes[0] /users)".
func (in *Instance) Name() string {
	return fmt.Sprintf("%s (routes[%d] %s)", in.Route.Handler, in.Route.Index, in.Route.Path)
}

// Instances are a serving process's plugins, in route order.
type Instances []*Instance

// distinct returns each lifecycle value once, with the first instance
// that has it: one handler on two routes is one plugin. Only pointers are
// compared (other values may not be comparable).
func (s Instances) distinct() []*Instance {
	seen := map[any]bool{}
	var out []*Instance
	for _, in := range s {
		if v := reflect.ValueOf(in.life); v.Kind() == reflect.Pointer {
			if seen[in.life] {
				continue
			}
			seen[in.life] = true
		}
		out = append(out, in)
	}
	return out
}

// Provision runs each Provisioner in route order. On the first error it
// cleans up the ones provisioned already and the one that failed, and
// returns the error, naming the route.
func (s Instances) Provision(ctx context.Context, log *slog.Logger) error {
	ds := s.distinct()
	for i, in := range ds {
		p, ok := in.life.(Provisioner)
		if !ok {
			continue
		}
		if err := p.Provision(ctx); err != nil {
			// As Caddy does: a Provision that failed half-way may hold
			// something (a pool opened, then the ping failed).
			Instances(ds[:i+1]).Cleanup(log)
			return fmt.Errorf("%s: provision %s: %w", in.Route, in.Route.Handler, err)
		}
	}
	return nil
}

// CheckReady runs each ReadyChecker in route order, each within
// ReadyTimeout, and returns the name of the first that fails (with its
// error), or "" and nil.
func (s Instances) CheckReady(ctx context.Context) (string, error) {
	for _, in := range s.distinct() {
		c, ok := in.life.(ReadyChecker)
		if !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
		err := c.CheckReady(cctx)
		cancel()
		if err != nil {
			return in.Name(), err
		}
	}
	return "", nil
}

// HasReadyCheck reports whether any instance implements ReadyChecker.
func (s Instances) HasReadyCheck() bool {
	for _, in := range s {
		if _, ok := in.life.(ReadyChecker); ok {
			return true
		}
	}
	return false
}

// Cleanup runs each CleanerUpper, in reverse route order (the last
// provisioned first), and logs the errors; it returns once all returned or
// CleanupTimeout passed.
func (s Instances) Cleanup(log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	ds := s.distinct()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := len(ds) - 1; i >= 0; i-- {
			in := ds[i]
			c, ok := in.life.(CleanerUpper)
			if !ok {
				continue
			}
			if err := c.Cleanup(); err != nil {
				log.Error("plugin cleanup failed", "route", in.Route.String(), "handler", in.Route.Handler, "err", err.Error())
			}
		}
	}()
	t := time.NewTimer(CleanupTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.Warn("plugin cleanup did not finish; exiting without it", "waited", CleanupTimeout)
	}
}
