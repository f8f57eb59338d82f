package engine_test

import (
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// TestDrainWaitsForFirstRequest: a connection accepted before the drain
// that has not sent its first request yet is not closed as idle, however
// long past DrainIdle its request comes: its client could not retry it (a
// client retries only on a connection that served a request before). The
// request is answered, with Connection: close.
func TestDrainWaitsForFirstRequest(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, _, _ := drainServer(t, b, 50*time.Millisecond, 0)
		fresh := newClient(t, s)
		if !enginetest.Eventually(5*time.Second, func() bool { return s.Engine.Stats().ConnsPerLoop[0] == 1 }) {
			t.Fatalf("the connection was never accepted: %v", s.Engine.Stats().ConnsPerLoop)
		}
		s.Engine.Drain()
		// Many drain scans (every 100 ms) and DrainIdle periods: a drain
		// that closes connections without a request yet has closed it.
		time.Sleep(500 * time.Millisecond)
		fresh.send("/")
		r, body, err := fresh.read()
		if err != nil {
			t.Fatalf("the first request, sent after the drain began: %v", err)
		}
		if r.StatusCode != 200 || body != "ok" || !r.Close {
			t.Errorf("first request: %d %q close=%v, want 200 ok with Connection: close", r.StatusCode, body, r.Close)
		}
	})
}

// TestDrainFirstRequestWithinHeaderTimeout: a draining engine waits for a
// new connection's first request as long as for any request head
// (header_timeout), then closes it, so that a client that connected and
// never sends holds a draining process no longer than that.
func TestDrainFirstRequestWithinHeaderTimeout(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		router := enginetest.Router(t, &engine.Route{Path: "/", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			c.WriteString("ok") //nolint:errcheck
		})})
		s := enginetest.Start(t, b, engine.Config{Router: router, Loops: 1, KeepAlive: time.Hour,
			HeaderTimeout: 300 * time.Millisecond, DrainIdle: 50 * time.Millisecond})
		silent := s.Dial(t)
		if !enginetest.Eventually(5*time.Second, func() bool { return s.Engine.Stats().ConnsPerLoop[0] == 1 }) {
			t.Fatalf("the connection was never accepted: %v", s.Engine.Stats().ConnsPerLoop)
		}
		s.Engine.Drain()
		if !enginetest.WaitClosed(silent, 5*time.Second) {
			t.Errorf("a connection that never sent a request kept the drain going past header_timeout")
		}
	})
}
