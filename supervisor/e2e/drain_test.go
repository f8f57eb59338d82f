package e2e

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// What clients and load balancers see while an instance stops or reloads
// (issue 20, Must fix 5 and 6).

// refused waits until a new connection to addr is refused (ECONNREFUSED),
// and fails the test if one is still taken after 10 s: taken into an
// accept queue no process reads any more, it would wait until the drain
// ends and then be reset.
func refused(t *testing.T, network, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
		} else if errors.Is(err, syscall.ECONNREFUSED) {
			return
		} else {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still takes connections 10s into the drain, after shutdown_delay", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRefuseDuringDrain: after SIGTERM, asyncd serves new connections for
// shutdown_delay; then, while a slow request still drains, new connections
// on TCP and unix sockets are refused at once instead of hanging, and the
// slow request still completes. At low traffic (one connection at a time),
// on each backend.
func TestRefuseDuringDrain(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		cfg := strings.NewReplacer("delay: 1s", "delay: 8s", "graceful_timeout: 5s", "graceful_timeout: 20s",
			`bind: ["127.0.0.1:0"]`, `bind: ["127.0.0.1:0", "unix:@DIR@/asyncd.sock"]`).Replace(onBackend(baseConfig, backend)) +
			"shutdown_delay: 1s\n"
		s := startServer(t, cfg, options{})
		addr := s.addr()
		sock := filepath.Join(s.dir, "asyncd.sock")
		slow := dial(t, "tcp", addr).send("/slow", 20*time.Second)
		time.Sleep(200 * time.Millisecond)
		s.signal(syscall.SIGTERM)
		s.waitLog(`SIGTERM: not ready; serving on for shutdown_delay`, 1)
		if r := get(t, "tcp", addr, "/"); r.status != 200 {
			t.Errorf("during shutdown_delay: status %d, want 200", r.status)
		}
		s.waitLog(`shutdown_delay over: draining`, 1)
		for _, l := range []struct{ network, addr string }{{"tcp", addr}, {"unix", sock}} {
			refused(t, l.network, l.addr)
			if slow.answered() {
				t.Fatalf("%s connections were refused only once the drain was over", l.network)
			}
		}
		s.waitLog(`listening sockets closed: new connections are refused`, 1)
		if r, err := slow.wait(); err != nil || r.status != 200 || r.body != "slow" {
			t.Errorf("the request in flight: %+v %v, want 200 slow", r, err)
		}
		if code := s.wait(15 * time.Second); code != 0 {
			t.Errorf("exit code %d", code)
		}
		// the listeners are shut down only once no loop accepts on them
		if strings.Contains(s.log(), "accept failed") {
			t.Errorf("a loop still accepted on a closed listener:\n%s", s.log())
		}
	})
}

// TestReadinessAcrossReload: a load balancer checking readiness over
// keep-alive connections never sees 503 because of a reload (the old
// generation answers for the instance while it hands over); after SIGTERM
// it sees 503 during shutdown_delay, on a connection it already held.
func TestReadinessAcrossReload(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(baseConfig, "routes:\n", "routes:\n  - path: /healthz\n    handler: health\n", 1) +
		"shutdown_delay: 5s\n"
	s := startServer(t, cfg, options{})
	addr := s.addr()
	check := func(c *conn, when string, want int) {
		t.Helper()
		r, err := c.do("/healthz", 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if r.status != want {
			t.Errorf("%s: /healthz %d, want %d", when, r.status, want)
		}
	}
	old := make([]*conn, 5)
	for i := range old {
		old[i] = dial(t, "tcp", addr)
		check(old[i], "before the reload", 200)
	}
	s.signal(syscall.SIGHUP)
	s.waitLog(`replaced by a new generation: draining`, 1)
	// each connection the old generation holds gets one more answer
	// (with Connection: close) before it goes
	for _, c := range old {
		check(c, "on a connection the replaced generation holds", 200)
	}
	lb := dial(t, "tcp", addr)
	check(lb, "on the new generation", 200)
	s.signal(syscall.SIGTERM)
	s.waitLog(`SIGTERM: not ready; serving on for shutdown_delay`, 1)
	check(lb, "during shutdown_delay, on a kept-alive connection", 503)
	check(dial(t, "tcp", addr), "during shutdown_delay, on a new connection", 503)
	s.signal(syscall.SIGTERM) // skip the rest of the delay
	s.wait(15 * time.Second)
}
