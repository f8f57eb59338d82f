// Package static is the "static" handler plugin: a fixed response (status,
// body, content type, headers), optionally after a delay, for health pages,
// benchmarks and demonstrations of the worker classes.
//
// It owns only its handler and option decoding.
package static

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/plugins"
)

// Options are the route options of the static plugin.
type Options struct {
	Status      int               `option:"status"`
	Body        string            `option:"body"`
	ContentType string            `option:"content_type"`
	Headers     map[string]string `option:"headers"`
	// Delay is slept before answering. On the sync worker class this holds
	// the event loop: it is meant for tests and demonstrations.
	Delay time.Duration `option:"delay"`
}

func init() { plugins.Register("static", New) }

// New builds a static handler from a route's options.
func New(r plugins.Route) (engine.Handler, error) {
	o := Options{Status: 200, ContentType: "text/plain; charset=utf-8"}
	if err := plugins.Decode(r.Options, &o); err != nil {
		return nil, err
	}
	if o.Status < 100 || o.Status > 999 {
		return nil, fmt.Errorf("options.status: must be 100..999, got %d", o.Status)
	}
	if o.Delay < 0 {
		return nil, fmt.Errorf("options.delay: must be >= 0, got %s", o.Delay)
	}
	h := &handler{status: o.Status, body: []byte(o.Body), delay: o.Delay, ctype: o.ContentType}
	names := make([]string, 0, len(o.Headers))
	for k := range o.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if http.CanonicalHeaderKey(k) == "Content-Type" {
			h.ctype = o.Headers[k]
			continue
		}
		if !validField(k, o.Headers[k]) {
			return nil, fmt.Errorf("options.headers: invalid header %q", k)
		}
		h.hdrs = append(h.hdrs, [2][]byte{[]byte(k), []byte(o.Headers[k])})
	}
	return h, nil
}

type handler struct {
	status int
	body   []byte
	ctype  string
	hdrs   [][2][]byte
	delay  time.Duration
}

// Inline implements engine.InlineHandler: without a delay the handler
// never blocks, so it answers on the loop under every worker class, with no
// goroutine hand-off and outside the off-loop in-flight bound (a fixed page
// stays fast while slow routes fill the async workers).
func (h *handler) Inline() bool { return h.delay == 0 }

// Serve implements engine.Handler.
func (h *handler) Serve(c *engine.Ctx) {
	if h.delay > 0 {
		t := time.NewTimer(h.delay)
		select {
		case <-t.C:
		case <-c.Context().Done():
			t.Stop()
		}
	}
	c.SetStatus(h.status)
	if h.ctype != "" {
		c.SetContentType(h.ctype)
	}
	for _, kv := range h.hdrs {
		c.AddHeaderBytes(kv[0], kv[1])
	}
	c.Write(h.body) //nolint:errcheck // buffered; cannot fail
}

func validField(name, value string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b <= ' ' || b >= 0x7f || b == ':' {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		b := value[i]
		if b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}
