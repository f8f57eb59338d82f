package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// drainServer runs an engine whose /gate handler (off the loop) writes
// "a", flushes when asked to, then waits for gate before it writes "b" and
// returns; started gets a value when it begins.
func drainServer(t *testing.T, b loop.Backend, drainIdle time.Duration, maxInflight int) (
	s *enginetest.Server, started chan struct{}, gate chan struct{}) {
	started, gate = make(chan struct{}, 16), make(chan struct{})
	router := enginetest.Router(t,
		&engine.Route{Path: "/gate", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			c.WriteString("a") //nolint:errcheck
			if string(c.Query()) == "flush" {
				c.Flush() //nolint:errcheck
			}
			started <- struct{}{}
			<-gate
			c.WriteString("b") //nolint:errcheck
		})},
		&engine.Route{Path: "/", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			c.WriteString("ok") //nolint:errcheck
		})},
	)
	s = enginetest.Start(t, b, engine.Config{Router: router, Loops: 1, Dispatch: engine.OffLoop,
		Executor: goExec{}, MaxInflight: maxInflight, KeepAlive: time.Minute, DrainIdle: drainIdle})
	t.Cleanup(func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
	return s, started, gate
}

// client is a keep-alive connection that reads responses in order.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func newClient(t *testing.T, s *enginetest.Server) *client {
	c := s.Dial(t)
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(path string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
}

// read reads one whole response; the error says what failed.
func (c *client) read() (*http.Response, string, error) {
	r, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, "", fmt.Errorf("status line: %w", err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, "", fmt.Errorf("body: %w", err)
	}
	return r, string(body), nil
}

func (c *client) mustRead(what string) (*http.Response, string) {
	c.t.Helper()
	r, body, err := c.read()
	if err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
	return r, body
}

// TestDrainNextRequestGetsClose: a keep-alive connection that sends its
// next request after Drain gets it answered with Connection: close, not
// closed under it (the EOF a client that does not retry counts as a failed
// request).
func TestDrainNextRequestGetsClose(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, _, _ := drainServer(t, b, time.Hour, 0)
		c := newClient(t, s)
		c.send("/")
		if r, _ := c.mustRead("before Drain"); r.Close {
			t.Fatalf("Connection: close before Drain")
		}
		s.Engine.Drain()
		// A few drain scans first (ticks are 20ms), as when a client's next
		// request comes a moment later: a drain that closes idle
		// connections at once has closed this one by now.
		time.Sleep(100 * time.Millisecond)
		c.send("/")
		r, body := c.mustRead("the request after Drain")
		if r.StatusCode != 200 || body != "ok" || !r.Close {
			t.Errorf("after Drain: %d %q close=%v, want 200 ok with Connection: close", r.StatusCode, body, r.Close)
		}
		if !enginetest.WaitClosed(c.c, 5*time.Second) {
			t.Errorf("the connection answered with Connection: close stayed open")
		}
	})
}

// TestDrainClosesIdleConnections: a keep-alive connection idle for
// DrainIdle after a response is closed.
func TestDrainClosesIdleConnections(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, _, _ := drainServer(t, b, 50*time.Millisecond, 0)
		used := newClient(t, s)
		used.send("/")
		used.mustRead("before Drain")
		s.Engine.Drain()
		if !enginetest.WaitClosed(used.c, 5*time.Second) {
			t.Errorf("idle keep-alive connection not closed by the drain")
		}
		used.c.Close() // end the server's lingering close
		if !enginetest.Eventually(5*time.Second, func() bool { return s.Engine.Stats().ConnsPerLoop[0] == 0 }) {
			t.Errorf("connections left after the drain: %v", s.Engine.Stats().ConnsPerLoop)
		}
	})
}

// TestDrainKeepsHeldRequests: a request held back for off-loop capacity
// sits in an idle-looking connection; the drain must answer it, not close
// the connection under it.
func TestDrainKeepsHeldRequests(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, started, gate := drainServer(t, b, time.Millisecond, 1)
		busy := newClient(t, s)
		busy.send("/gate")
		<-started // the only slot is taken
		held := newClient(t, s)
		held.send("/")
		// The held connection must be the server's before the drain: one
		// still in the accept queue is taken after it and its request races
		// the drain's idle close (the race every HTTP/1.1 server has, RFC
		// 9112 §9.6). Its request is not read yet: the loop is at the bound.
		if !enginetest.Eventually(5*time.Second, func() bool { return s.Engine.Stats().ConnsPerLoop[0] == 2 }) {
			t.Fatalf("the held connection was never accepted: %v", s.Engine.Stats().ConnsPerLoop)
		}
		time.Sleep(50 * time.Millisecond) // and its bytes have landed in its socket
		s.Engine.Drain()
		// Let the drain scan the held connection a few times (ticks are
		// 20ms): a wrong drain closes it now; a right one passes anyway.
		time.Sleep(200 * time.Millisecond)
		close(gate)
		if r, body := busy.mustRead("the request in flight"); body != "ab" || !r.Close {
			t.Errorf("request in flight: %q close=%v, want \"ab\" with Connection: close", body, r.Close)
		}
		if r, body := held.mustRead("the held request"); body != "ok" || !r.Close {
			t.Errorf("held request: %q close=%v, want \"ok\" with Connection: close", body, r.Close)
		}
	})
}

// TestDrainAfterStreamedHead: a streamed response whose head went out
// before Drain (without Connection: close) leaves its connection open when
// it ends; the client's next request is then answered with close.
func TestDrainAfterStreamedHead(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, started, gate := drainServer(t, b, time.Hour, 0)
		c := newClient(t, s)
		c.send("/gate?flush")
		<-started
		r, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("streamed head: %v", err)
		}
		if r.Close {
			t.Fatalf("Connection: close before Drain")
		}
		s.Engine.Drain()
		close(gate)
		if body, err := io.ReadAll(r.Body); err != nil || string(body) != "ab" {
			t.Fatalf("streamed body: %q, %v", body, err)
		}
		c.send("/")
		r2, body, err := c.read()
		if err != nil {
			t.Fatalf("the request after a stream that began before the drain: %v (closed after the stream without telling the client)", err)
		}
		if body != "ok" || !r2.Close {
			t.Errorf("after the stream: %q close=%v, want \"ok\" with Connection: close", body, r2.Close)
		}
	})
}

// refusingExec refuses the Submits it is told to, as a full gthread queue
// or an elastic pool at capacity does, and runs the rest on goroutines.
type refusingExec struct{ refuse atomic.Int64 }

func (e *refusingExec) Submit(_ int, t engine.Task) bool {
	if e.refuse.Add(-1) >= 0 {
		return false
	}
	go t.Run()
	return true
}

// TestRefusedSubmitRunsOnce: a request the executor refuses waits for
// capacity and then runs exactly once (it was once handed back to the
// parser while also kept, so it ran twice, or the loop panicked).
func TestRefusedSubmitRunsOnce(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		var runs atomic.Int64
		gates := make(chan chan struct{}, 1) // each /gate request's own gate
		started := make(chan struct{}, 1)
		router := enginetest.Router(t,
			&engine.Route{Path: "/gate", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
				g := <-gates
				started <- struct{}{}
				<-g
				c.WriteString("gate") //nolint:errcheck
			})},
			&engine.Route{Path: "/count", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
				fmt.Fprintf(c, "%d:%s", runs.Add(1), c.Body())
			})},
		)
		exec := &refusingExec{}
		s := enginetest.Start(t, b, engine.Config{Router: router, Loops: 1, Dispatch: engine.OffLoop,
			Executor: exec, MaxInflight: 8, KeepAlive: time.Minute})
		busy := newClient(t, s)
		for _, req := range []string{
			"GET /count HTTP/1.1\r\nHost: a\r\n\r\n",
			"POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		} {
			gate := make(chan struct{})
			gates <- gate
			busy.send("/gate")
			<-started            // a request in flight, whose end frees capacity
			exec.refuse.Store(1) // the next Submit is refused
			c := s.Dial(t)
			io.WriteString(c, req)
			if !enginetest.Eventually(5*time.Second, func() bool { return exec.refuse.Load() == 0 }) {
				t.Fatal("the request was never submitted (and refused)")
			}
			close(gate) // the request waiting for capacity is admitted
			busy.mustRead("the gate")
			resps, _ := enginetest.ReadResponses(t, c, 1, 5*time.Second)
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, err := c.Read(make([]byte, 512)); n > 0 || err == nil {
				t.Fatalf("%q: more than one response (%d more bytes, %v)", req, n, err)
			}
			if body := string(resps[0].Body); !strings.HasSuffix(body, ":") && !strings.HasSuffix(body, ":abc") {
				t.Errorf("%q: body %q", req, body)
			}
		}
		if n := runs.Load(); n != 2 {
			t.Errorf("the handler ran %d times for 2 requests", n)
		}
	})
}
