package health_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/internal/procstate"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/health"
)

type source struct{ ready atomic.Bool }

func (s *source) Stats() procstate.Stats { return procstate.Stats{} }
func (s *source) Ready() bool            { return s.ready.Load() }

// src is published once for the whole test binary: procstate is
// process-wide. Tests that need "never published" run before it.
var (
	src         = &source{}
	publishOnce sync.Once
)

func publish() { publishOnce.Do(func() { procstate.Publish(src) }) }

func build(t *testing.T, opts map[string]any) engine.Handler {
	t.Helper()
	h, err := plugins.Build(plugins.Route{Index: 0, Path: "/healthz", Handler: "health", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func forBackends(t *testing.T, fn func(t *testing.T, b loop.Backend)) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) { fn(t, b) })
	}
}

func get(t *testing.T, s *enginetest.Server, path string) (int, string, string) {
	t.Helper()
	resps, _ := s.Exchange(t, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n", 1)
	if len(resps) != 1 {
		t.Fatalf("GET %s: no response", path)
	}
	r := resps[0]
	return r.StatusCode, string(r.Body), r.Header.Get("Cache-Control")
}

// TestReadinessFollowsProcstate runs first: before anything is published,
// readiness must say 503.
func TestReadinessFollowsProcstate(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		routes := enginetest.Router(t,
			&engine.Route{Path: "/ready", Handler: build(t, nil)},
			&engine.Route{Path: "/live", Handler: build(t, map[string]any{"check": "live", "body": "alive\n"})},
			&engine.Route{Path: "/custom", Handler: build(t, map[string]any{"unavailable_body": "draining\n",
				"content_type": "application/json"})},
		)
		s := enginetest.Start(t, b, engine.Config{Router: routes, Loops: 1})
		if procstate.Current() == nil {
			if code, body, _ := get(t, s, "/ready"); code != 503 || body != "unavailable\n" {
				t.Errorf("before publish: /ready = %d %q, want 503", code, body)
			}
		}
		publish()
		src.ready.Store(false)
		if code, body, cc := get(t, s, "/ready"); code != 503 || body != "unavailable\n" || cc != "no-store" {
			t.Errorf("not ready: /ready = %d %q (Cache-Control %q), want 503", code, body, cc)
		}
		if code, body, _ := get(t, s, "/live"); code != 200 || body != "alive\n" {
			t.Errorf("not ready: /live = %d %q, want 200 alive", code, body)
		}
		resps, _ := s.Exchange(t, "GET /custom HTTP/1.1\r\nHost: h\r\n\r\n", 1)
		if r := resps[0]; r.StatusCode != 503 || string(r.Body) != "draining\n" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("custom: %d %q %q", r.StatusCode, r.Body, r.Header.Get("Content-Type"))
		}
		src.ready.Store(true)
		if code, body, _ := get(t, s, "/ready"); code != 200 || body != "ok\n" {
			t.Errorf("ready: /ready = %d %q, want 200 ok", code, body)
		}
		c := s.Dial(t)
		io.WriteString(c, "HEAD /ready HTTP/1.1\r\nHost: h\r\n\r\nGET /live HTTP/1.1\r\nHost: h\r\n\r\n") //nolint:errcheck
		c.SetReadDeadline(time.Now().Add(5 * time.Second))                                                //nolint:errcheck
		br := bufio.NewReader(c)
		head, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
		if err != nil || head.StatusCode != 200 || head.ContentLength != 3 {
			t.Fatalf("HEAD /ready: %v %v", head, err)
		}
		// The next response starts right after the HEAD head: no body was sent.
		next, err := http.ReadResponse(br, nil)
		if err != nil || next.StatusCode != 200 {
			t.Fatalf("GET after HEAD: %v %v", next, err)
		}
	})
}

// stuckExec accepts tasks and never runs them: every off-loop worker is
// busy forever.
type stuckExec struct{ n atomic.Int64 }

func (e *stuckExec) Submit(int, engine.Task) bool { e.n.Add(1); return true }

// TestAnswersWhenWorkersAreBusy saturates the off-loop capacity (one
// request stuck in an executor that never runs it, a second one held back)
// and checks that the health route still answers, while an ordinary route
// on the same server does not.
func TestAnswersWhenWorkersAreBusy(t *testing.T) {
	publish()
	src.ready.Store(true)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		exec := &stuckExec{}
		work := engine.HandlerFunc(func(c *engine.Ctx) { c.WriteString("worked") }) //nolint:errcheck
		routes := enginetest.Router(t,
			&engine.Route{Path: "/work", Handler: work},
			&engine.Route{Path: "/healthz", Handler: build(t, nil)},
		)
		s := enginetest.Start(t, b, engine.Config{Router: routes, Loops: 1, Dispatch: engine.OffLoop,
			Executor: exec, MaxInflight: 1})

		first := s.Dial(t)
		io.WriteString(first, "GET /work HTTP/1.1\r\nHost: h\r\n\r\n") //nolint:errcheck
		if !enginetest.Eventually(5*time.Second, func() bool { return exec.n.Load() == 1 }) {
			t.Fatal("the first request never reached the executor")
		}
		held := s.Dial(t)
		io.WriteString(held, "GET /work HTTP/1.1\r\nHost: h\r\n\r\n") //nolint:errcheck

		// The health check answers although capacity is exhausted ...
		for i := 0; i < 3; i++ {
			if code, body, _ := get(t, s, "/healthz"); code != 200 || body != "ok\n" {
				t.Fatalf("health check %d while saturated: %d %q", i, code, body)
			}
		}
		// ... while the ordinary route is really stuck: no answer.
		for _, c := range []net.Conn{first, held} {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) //nolint:errcheck
			if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
				t.Fatalf("a saturated /work answered %q: the test did not saturate the workers", line)
			} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("reading /work: %v", err)
			}
		}
		if n := exec.n.Load(); n != 1 {
			t.Fatalf("executor got %d tasks, want 1 (the second /work is held back, health never goes there)", n)
		}
	})
}

func TestOptions(t *testing.T) {
	tests := []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"check": "sometimes"}, `options.check: must be ready or live, got "sometimes"`},
		{map[string]any{"chek": "live"}, `unknown option "chek"`},
		{map[string]any{"body": 12}, `options.body`},
		{map[string]any{"content_type": "text/plain\r\nX: y"}, `options.content_type`},
	}
	for _, tt := range tests {
		_, err := plugins.Build(plugins.Route{Index: 3, Path: "/h", Handler: "health", Options: tt.opts})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "routes[3] (/h)") {
			t.Errorf("options %v: %v, want an error naming the route and %q", tt.opts, err, tt.want)
		}
	}
	for _, check := range []string{"live", "Ready", "liveness", "readiness"} {
		if _, err := plugins.Build(plugins.Route{Path: "/h", Handler: "health", Options: map[string]any{"check": check}}); err != nil {
			t.Errorf("check %q: %v", check, err)
		}
	}
	h := build(t, nil)
	if ih, ok := h.(engine.InlineHandler); !ok || !ih.Inline() {
		t.Error("the health handler must be an InlineHandler")
	}
}

func TestServeAllocs(t *testing.T) {
	publish()
	src.ready.Store(true)
	b := enginetest.Backends(t)[0]
	h := build(t, nil)
	got := make(chan float64, 1)
	probe := engine.HandlerFunc(func(c *engine.Ctx) {
		got <- testing.AllocsPerRun(200, func() { h.Serve(c) })
	})
	s := enginetest.Start(t, b, engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: probe}), Loops: 1})
	s.Exchange(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1)
	if allocs := <-got; allocs != 0 {
		t.Errorf("Serve allocates %v times per call", allocs)
	}
}
