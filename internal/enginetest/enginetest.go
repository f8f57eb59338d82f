// Package enginetest starts an engine on a real loop backend over loopback
// sockets, for the end-to-end tests of the engine, the worker classes, the
// plugins and the reliability suite. Every backend that can run on the
// machine is returned by Backends, so a suite written once runs on each.
//
// It owns test scaffolding only; production code must not import it.
package enginetest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/testbin"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/epoll"
	"github.com/asyncd/asyncd/loop/socket"
	"github.com/asyncd/asyncd/loop/uring"
)

// Backends returns every backend the suites run on. A backend whose probe
// fails on this machine makes the calling test fail, not skip: CI runs on a
// kernel with io_uring, and a silently missing backend would be a false pass.
// Set ASYNCDTEST_BACKENDS=epoll to run on a machine without io_uring
// (testbin.WantBackend).
func Backends(t testing.TB) []loop.Backend {
	all := []loop.Backend{epoll.Backend{}, uring.Backend{}}
	var out []loop.Backend
	for _, b := range all {
		if !testbin.WantBackend(b.Name()) {
			continue
		}
		if err := b.Probe(); err != nil {
			t.Fatalf("backend %s cannot run here: %v (set %s to choose backends)", b.Name(), err, testbin.BackendsVar)
		}
		out = append(out, b)
	}
	return out
}

// Server is a running engine on a backend.
type Server struct {
	Addr   string
	Engine *engine.Engine
	Loop   loop.Server
	done   chan error
}

// Start runs an engine with cfg (Router and Loops must be set) on backend
// b, listening on a fresh loopback port; it stops when the test ends.
func Start(t testing.TB, b loop.Backend, cfg engine.Config) *Server {
	t.Helper()
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := socket.Listen("tcp4", "127.0.0.1:0", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	ap, err := socket.FileAddrPort(f)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := b.New(loop.Config{Loops: cfg.Loops, Listeners: []loop.Listener{{File: f, Addr: ap.String(), Loop: -1}},
		Handler: e, TickInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ap.String(), Engine: e, Loop: srv, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Stop()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Stop")
		}
		f.Close()
	})
	return s
}

// Dial connects to the server.
func (s *Server) Dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Exchange writes raw to a new connection, then reads responses until the
// server closes or want responses arrived (want <= 0 reads until close),
// with a deadline. It returns the responses (bodies read) and whether the
// server closed the connection.
func (s *Server) Exchange(t testing.TB, raw string, want int) (resps []*Response, closed bool) {
	t.Helper()
	c := s.Dial(t)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return ReadResponses(t, c, want, 5*time.Second)
}

// Response is a read response with its body.
type Response struct {
	*http.Response
	Body []byte
}

// ReadResponses reads up to want responses (all until close when want <= 0)
// from c. closed reports that the server closed the connection (EOF or
// reset) after the last response.
func ReadResponses(t testing.TB, c net.Conn, want int, timeout time.Duration) (resps []*Response, closed bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout)) //nolint:errcheck
	br := bufio.NewReader(c)
	for want <= 0 || len(resps) < want {
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			if isClosed(err) {
				return resps, true
			}
			t.Fatalf("reading response %d: %v", len(resps)+1, err)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil && !isClosed(err) {
			t.Fatalf("reading body of response %d: %v", len(resps)+1, err)
		}
		r.Body.Close()
		if r.StatusCode == 100 {
			continue
		}
		resps = append(resps, &Response{Response: r, Body: body})
	}
	// Does the server close now? Only probe when asked for a fixed count
	// and the last response said close.
	if len(resps) > 0 && resps[len(resps)-1].Close {
		c.SetReadDeadline(time.Now().Add(timeout)) //nolint:errcheck
		var one [1]byte
		_, err := br.Read(one[:])
		return resps, isClosed(err)
	}
	return resps, false
}

func isClosed(err error) bool {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return true
	}
	var ne *net.OpError
	if ok := asOpError(err, &ne); ok && strings.Contains(ne.Err.Error(), "reset") {
		return true
	}
	return strings.Contains(err.Error(), "connection reset")
}

func asOpError(err error, target **net.OpError) bool {
	for err != nil {
		if e, ok := err.(*net.OpError); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// WaitClosed reads from c until the server closes it or timeout passes; it
// reports whether the server closed.
func WaitClosed(c net.Conn, timeout time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(timeout)) //nolint:errcheck
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err != nil {
			return isClosed(err)
		}
	}
}

// Eventually polls cond every 10ms until it holds or timeout passes.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// Router builds a router from routes or fails the test.
func Router(t testing.TB, routes ...*engine.Route) *engine.Router {
	t.Helper()
	r, err := engine.NewRouter(routes)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
