package static_test

import (
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/static"
)

func build(t *testing.T, path string, opts map[string]any) engine.Handler {
	t.Helper()
	h, err := plugins.Build(plugins.Route{Index: 0, Path: path, Handler: "static", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestOptionErrorsNameTheOption(t *testing.T) {
	cases := []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"status": 42}, "options.status"},
		{map[string]any{"delay": "-1s"}, "options.delay"},
		{map[string]any{"headers": map[string]any{"X-Bad": "a\r\nb"}}, "options.headers"},
		{map[string]any{"bogus": 1}, "bogus"},
	}
	for _, c := range cases {
		_, err := plugins.Build(plugins.Route{Index: 3, Path: "/x", Handler: "static", Options: c.opts})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("options %v: error %v, want it to name %q", c.opts, err, c.want)
		}
	}
}

// TestInlineUnlessDelayed: a fixed response never blocks, so it runs on the
// loop under every class; with a delay it must not.
func TestInlineUnlessDelayed(t *testing.T) {
	if ih, ok := build(t, "/a", nil).(engine.InlineHandler); !ok || !ih.Inline() {
		t.Error("static without delay is not inline")
	}
	if ih, ok := build(t, "/b", map[string]any{"delay": "10ms"}).(engine.InlineHandler); ok && ih.Inline() {
		t.Error("static with a delay is inline: it would hold the loop")
	}
}

// busyExec runs tasks on goroutines and counts them: the fixed route must
// never be handed to it.
type busyExec struct{ n atomic.Int64 }

func (e *busyExec) Submit(_ int, t engine.Task) bool { e.n.Add(1); go t.Run(); return true }

// TestFixedRouteAnswersWhileDelayedRoutesFillTheBound: with every off-loop
// slot taken by delayed requests, the fixed route still answers at once.
func TestFixedRouteAnswersWhileDelayedRoutesFillTheBound(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) {
			exec := &busyExec{}
			routes := enginetest.Router(t,
				&engine.Route{Path: "/fixed", Handler: build(t, "/fixed", map[string]any{"body": "fixed"})},
				&engine.Route{Path: "/slow", Handler: build(t, "/slow", map[string]any{"delay": "3s"})},
			)
			s := enginetest.Start(t, b, engine.Config{Router: routes, Loops: 1, Executor: exec, Dispatch: engine.OffLoop,
				MaxInflight: 2, KeepAlive: 10 * time.Second})
			for range 4 { // two in flight, two held back by the bound
				c := s.Dial(t)
				io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
			}
			if !enginetest.Eventually(5*time.Second, func() bool { return exec.n.Load() == 2 }) {
				t.Fatalf("%d delayed requests started, want 2 (the bound)", exec.n.Load())
			}
			c := s.Dial(t)
			io.WriteString(c, "GET /fixed HTTP/1.1\r\nHost: a\r\n\r\n")
			resps, _ := enginetest.ReadResponses(t, c, 1, 2*time.Second)
			if len(resps) != 1 || resps[0].StatusCode != 200 || string(resps[0].Body) != "fixed" {
				t.Fatalf("fixed route while the bound is full: %d responses", len(resps))
			}
			if n := exec.n.Load(); n != 2 {
				t.Errorf("executor ran %d tasks, want only the 2 delayed ones", n)
			}
		})
	}
}
