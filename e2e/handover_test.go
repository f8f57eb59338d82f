package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// handoverConfig: one loop, a route that holds a request for a minute
// (on the loop unless BLOCKING is true), and a graceful_timeout as long, so
// that an old generation that holds a request lives for a minute.
const handoverConfig = `
bind: ["127.0.0.1:0"]
workers: 1
backend: epoll
graceful_timeout: 60s
loglevel: info
routes:
  - path: /slow
    handler: static
    blocking: BLOCKING
    options: {body: "slow", delay: 60s}
  - path: /
    handler: static
    options: {body: "v1"}
`

// probeBound is how long a probe may wait for its answer. It is a
// correctness bound, not a speed target: the old generation lives for a
// minute, so an answer within it did not wait for the old generation to
// exit (which is how the bug of issue 17 looked).
const probeBound = 5 * time.Second

// TestAcceptDuringHandover is issue 17. The supervisor hands the same
// listening socket to every generation; while the old generation cannot
// accept (draining with a request held, its loop stuck in a handler, the
// process stopped), every new connection must still be answered, by the
// new generation, before the old one exits. At low traffic, one connection
// at a time and nothing else, since under load the next connection's
// wake-up hides a lost one. On each backend.
func TestAcceptDuringHandover(t *testing.T) {
	t.Parallel()
	type gen1 struct {
		s    *server
		addr string
		pid  int
	}
	for _, tc := range []struct {
		name     string
		blocking bool
		extra    string // settings added to handoverConfig
		// replace makes generation 1 unable to accept and has it replaced.
		replace func(t *testing.T, g gen1)
		// draining: generation 1 logs its drain (it can, unless stopped).
		draining bool
	}{
		{
			// The reproduction: the slow request runs on the loop
			// (sync, not blocking), so the draining generation's loop is
			// held until the request ends.
			name: "drain, request held on the loop",
			replace: func(t *testing.T, g gen1) {
				holdSlow(t, g.addr)
				g.s.signal(syscall.SIGHUP)
			},
			draining: true,
		},
		{
			name:     "drain, request held off the loop",
			blocking: true,
			replace: func(t *testing.T, g gen1) {
				holdSlow(t, g.addr)
				g.s.signal(syscall.SIGHUP)
			},
			draining: true,
		},
		{
			// timeout: the held loop is reported stuck and the process is
			// replaced (gracefully) without any signal from outside.
			name:  "stuck loop replaced",
			extra: "timeout: 1s\n",
			replace: func(t *testing.T, g gen1) {
				holdSlow(t, g.addr)
				g.s.waitLog(`msg="serving process reports a stuck event loop; replacing it"`, 1)
			},
			draining: true,
		},
		{
			name: "stopped process (SIGSTOP)",
			replace: func(t *testing.T, g gen1) {
				if err := syscall.Kill(g.pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				// The supervisor kills it at the end (fast stop), stopped
				// or not.
				g.s.signal(syscall.SIGHUP)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, backend string) {
				cfg := strings.Replace(handoverConfig, "BLOCKING", fmt.Sprint(tc.blocking), 1) + tc.extra
				s := startServer(t, onBackend(cfg, backend), options{})
				s.checkBackend(1, backend)
				g := gen1{s: s, addr: s.addr(), pid: s.ready(1).pid}
				tc.replace(t, g)
				s.waitLog(`msg="serving process ready" generation=2`, 1)
				s.checkBackend(2, backend)
				if tc.draining {
					s.waitLog(`msg="replaced by a new generation: draining"`, 1)
				}
				for i := 1; i <= 4; i++ {
					start := time.Now()
					if err := probe(g.addr); err != nil {
						t.Errorf("probe %d (one connection, no other traffic) after %s: %v",
							i, time.Since(start).Round(time.Millisecond), err)
					}
					time.Sleep(300 * time.Millisecond)
				}
				if !alive(g.pid) {
					t.Fatalf("generation 1 (pid %d) exited before the probes ended: they prove nothing", g.pid)
				}
			})
		})
	}
}

// holdSlow starts a request to /slow on a connection generation 1 has
// accepted (a first request on it is answered), and leaves it running.
func holdSlow(t *testing.T, addr string) {
	t.Helper()
	c := dial(t, "tcp", addr)
	if r, err := c.do("/", 5*time.Second); err != nil || r.status != 200 {
		t.Fatalf("first request: %v %v", r, err)
	}
	if _, err := fmt.Fprint(c.c, "GET /slow HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatalf("send /slow: %v", err)
	}
}

// probe makes one request on a new connection and wants a 200 within
// probeBound.
func probe(addr string) error {
	c, err := net.DialTimeout("tcp", addr, probeBound)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeBound)) //nolint:errcheck
	if _, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: probe\r\n\r\n"); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	r, err := readResponse(bufio.NewReader(c))
	if err != nil {
		return fmt.Errorf("no answer within %s: %w", probeBound, err)
	}
	if r.status != 200 {
		return fmt.Errorf("status %d", r.status)
	}
	return nil
}
