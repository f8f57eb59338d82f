// Package health is the "health" handler plugin: a liveness or readiness
// endpoint for load balancers and orchestrators (Kubernetes probes).
//
// check: live answers 200 while the process runs (if it can answer at all,
// it is alive). check: ready (the default) answers whether the instance
// should get traffic (plugins.Process.InstanceReady): 503 before the serving
// process has started and from SIGTERM on, while the whole instance drains,
// so a load balancer takes it out of rotation before it stops; 200 from a
// generation that drains because a newer one took over (a reload), whose
// keep-alive connections a load balancer may still be checking on. A
// plugin's readiness check (plugins.ReadyChecker) that fails makes it 503
// too, with the check's name after the body: "unavailable\nfailing
// check: users (routes[1] /users)\n".
//
// The handler is an engine.InlineHandler: it always runs on the event loop
// and is never held back by the off-loop in-flight bound, so it answers
// even when every async worker is busy. It owns only its handler and
// options; it must not change process state.
package health

import (
	"fmt"
	"strings"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/plugins"
)

// Options are the route options of the health plugin.
type Options struct {
	// Check is "ready" (default) or "live".
	Check string `option:"check"`
	// Body is sent with 200 (default "ok\n").
	Body string `option:"body"`
	// UnavailableBody is sent with 503 (default "unavailable\n").
	UnavailableBody string `option:"unavailable_body"`
	// ContentType of both bodies (default text/plain; charset=utf-8).
	ContentType string `option:"content_type"`
}

func init() { plugins.Register("health", New) }

// New builds a health handler from a route's options.
func New(r plugins.Route) (engine.Handler, error) {
	o := Options{Check: "ready", Body: "ok\n", UnavailableBody: "unavailable\n", ContentType: "text/plain; charset=utf-8"}
	if err := plugins.Decode(r.Options, &o); err != nil {
		return nil, err
	}
	h := &Handler{body: []byte(o.Body), unavailable: []byte(o.UnavailableBody), ctype: o.ContentType,
		process: r.Context().Process}
	switch strings.ToLower(o.Check) {
	case "ready", "readiness":
		h.ready = true
	case "live", "liveness":
	default:
		return nil, fmt.Errorf("options.check: must be ready or live, got %q", o.Check)
	}
	for _, ch := range o.ContentType {
		if ch < ' ' || ch == 0x7f {
			return nil, fmt.Errorf("options.content_type: control character in %q", o.ContentType)
		}
	}
	return h, nil
}

// Handler answers health checks.
type Handler struct {
	ready       bool
	body        []byte
	unavailable []byte
	ctype       string
	process     plugins.Process
}

// Inline implements engine.InlineHandler: health checks run on the loop
// and bypass the off-loop capacity bound.
func (h *Handler) Inline() bool { return true }

// Serve implements engine.Handler. It does not allocate.
func (h *Handler) Serve(c *engine.Ctx) {
	c.SetContentType(h.ctype)
	c.SetHeader("Cache-Control", "no-store")
	if h.ready && !h.process.InstanceReady() {
		c.SetStatus(503)
		if name := h.process.FailingCheck(); name != "" {
			// Rare, and worth a few bytes: which dependency is down.
			c.SetBodyString(string(h.unavailable) + "failing check: " + name + "\n")
			return
		}
		c.SetBody(h.unavailable)
		return
	}
	c.SetBody(h.body)
}
