package e2e

import (
	"bufio"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
		if err == nil || errors.Is(err, syscall.ECONNRESET) {
			// Taken, or reset by the close itself (a handshake that was
			// under way when the listener shut down): not yet refused.
			if c != nil {
				c.Close()
			}
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

// TestReadinessAcrossReload: load balancers checking readiness over
// keep-alive connections (five of them, one check every 20 ms, reconnecting
// when asyncd closes a connection) never see 503 because of a reload: the
// old generation answers its last checks, with Connection: close, for the
// instance. After SIGTERM they see 503 during shutdown_delay, on a
// connection they already held.
func TestReadinessAcrossReload(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(baseConfig, "routes:\n", "routes:\n  - path: /healthz\n    handler: health\n", 1) +
		"shutdown_delay: 5s\n"
	s := startServer(t, cfg, options{})
	addr := s.addr()
	var mu sync.Mutex
	statuses := map[string]int{} // "200" or "200 close" (the replaced generation's last answer)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *conn
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if c == nil {
					nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						continue
					}
					c = &conn{c: nc, br: bufio.NewReader(nc)}
				}
				r, err := c.do("/healthz", 5*time.Second)
				if err != nil { // the keep-alive race: reconnect, as a balancer does
					c.c.Close()
					c = nil
					continue
				}
				key := strconv.Itoa(r.status)
				if strings.EqualFold(r.header["connection"], "close") {
					key += " close"
					c.c.Close()
					c = nil
				}
				mu.Lock()
				statuses[key]++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	s.signal(syscall.SIGHUP)
	s.waitLog(`msg="serving process exited" generation=1`, 1)
	close(stop)
	wg.Wait()
	if statuses["503"]+statuses["503 close"] != 0 || statuses["200 close"] == 0 || statuses["200"] == 0 {
		t.Errorf("readiness checks through a reload: %v; want no 503, and 200s from the replaced generation (with close) and the new one", statuses)
	}
	lb := dial(t, "tcp", addr)
	if r, err := lb.do("/healthz", 5*time.Second); err != nil || r.status != 200 {
		t.Fatalf("before SIGTERM: %+v %v", r, err)
	}
	s.signal(syscall.SIGTERM)
	s.waitLog(`SIGTERM: not ready; serving on for shutdown_delay`, 1)
	for what, c := range map[string]*conn{"a kept-alive connection": lb, "a new connection": dial(t, "tcp", addr)} {
		if r, err := c.do("/healthz", 5*time.Second); err != nil || r.status != 503 {
			t.Errorf("during shutdown_delay, on %s: %+v %v, want 503", what, r, err)
		}
	}
	s.signal(syscall.SIGTERM) // skip the rest of the delay
	s.wait(15 * time.Second)
}
