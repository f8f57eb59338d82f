package e2e

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGracefulStop: SIGTERM lets a request in flight finish, closes idle
// keep-alive connections, removes the pidfile and exits 0; on each backend.
func TestGracefulStop(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testGracefulStop)
}

func testGracefulStop(t *testing.T, backend string) {
	s := startServer(t, onBackend(baseConfig, backend)+"pidfile: @DIR@/asyncd.pid\n", options{})
	s.checkBackend(1, backend)
	addr := s.addr()
	pidfile := s.dir + "/asyncd.pid"
	b, err := os.ReadFile(pidfile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(s.cmd.Process.Pid) {
		t.Fatalf("pidfile: %q, %v; want %d", b, err, s.cmd.Process.Pid)
	}
	idle := dial(t, "tcp", addr)
	if _, err := idle.do("/", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	busy := dial(t, "tcp", addr).send("/slow", 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	s.signal(syscall.SIGTERM)
	r, err := busy.wait()
	if err != nil {
		t.Fatalf("request in flight at SIGTERM: %v", err)
	}
	if r.status != 200 || r.body != "slow" || !strings.EqualFold(r.header["connection"], "close") {
		t.Errorf("request in flight: %d %q Connection=%q; want 200 slow close", r.status, r.body, r.header["connection"])
	}
	if !idle.closed(6 * time.Second) {
		t.Error("idle connection not closed")
	}
	if code := s.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile left behind: %v", err)
	}
}

// TestGracefulTimeout: a request that outlives graceful_timeout does not
// hold the stop up: its connection is closed and asyncd exits 0.
func TestGracefulTimeout(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(strings.Replace(baseConfig, "graceful_timeout: 5s", "graceful_timeout: 1s", 1),
		"delay: 1s", "delay: 30s", 1)
	s := startServer(t, cfg, options{})
	c := dial(t, "tcp", s.addr())
	done := make(chan error, 1)
	go func() {
		_, err := c.do("/slow", 40*time.Second)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	s.signal(syscall.SIGTERM)
	if code := s.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("a 30s request was answered although graceful_timeout is 1s")
		}
	case <-time.After(5 * time.Second):
		t.Error("the connection of the request cut by graceful_timeout is still open")
	}
	s.waitLog(`graceful_timeout reached; closing remaining connections`, 1)
}

// TestShutdownDelay: after SIGTERM, asyncd keeps serving new connections
// for shutdown_delay (STOPPING=1 already sent), then drains and exits 0; a
// second SIGTERM cuts the delay short.
func TestShutdownDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		delay   string
		second  bool
		atLeast time.Duration
	}{
		{"delay", "1500ms", false, 1500 * time.Millisecond},
		{"second SIGTERM", "60s", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := newNotifySocket(t)
			s := startServer(t, baseConfig+"shutdown_delay: "+tc.delay+"\n", options{env: []string{"NOTIFY_SOCKET=" + n.path}})
			addr := s.addr()
			n.next(t, "READY=1")
			sent := time.Now()
			s.signal(syscall.SIGTERM)
			n.next(t, "STOPPING=1")
			time.Sleep(300 * time.Millisecond)
			if r := get(t, "tcp", addr, "/"); r.status != 200 {
				t.Errorf("during shutdown_delay: status %d", r.status)
			}
			s.waitLog(`SIGTERM: not ready; serving on for shutdown_delay`, 1)
			if tc.second {
				s.signal(syscall.SIGTERM)
			}
			if code := s.wait(15 * time.Second); code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			if took := time.Since(sent); took < tc.atLeast {
				t.Errorf("stopped %s after SIGTERM, before shutdown_delay (%s) was over", took, tc.delay)
			}
		})
	}
}

// TestFastStop: SIGINT and SIGQUIT stop at once, cutting requests in
// flight, and exit 0.
func TestFastStop(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			cfg := strings.Replace(baseConfig, "delay: 1s", "delay: 30s", 1)
			s := startServer(t, cfg, options{})
			c := dial(t, "tcp", s.addr())
			done := make(chan error, 1)
			go func() {
				_, err := c.do("/slow", 40*time.Second)
				done <- err
			}()
			time.Sleep(200 * time.Millisecond)
			child := s.ready(1).pid
			s.signal(sig)
			if code := s.wait(10 * time.Second); code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			if err := <-done; err == nil {
				t.Error("the request in flight was answered: not a fast stop")
			}
			if alive(child) {
				t.Errorf("serving process %d still running", child)
			}
			s.waitLog(`fast stop`, 1)
		})
	}
}

// TestSupervisorKilled: a supervisor killed with SIGKILL takes its
// serving process along (Pdeathsig): the process drains and exits instead
// of serving on, orphaned.
func TestSupervisorKilled(t *testing.T) {
	t.Parallel()
	s := startServer(t, baseConfig, options{})
	child := s.ready(1).pid
	// The serving process is started from the supervisor's locked thread,
	// not necessarily its main one: a HUP later makes another.
	s.signal(syscall.SIGHUP)
	s.waitLog(`msg="serving process ready" generation=2`, 1)
	child = s.ready(2).pid
	s.signal(syscall.SIGKILL)
	s.wait(5 * time.Second)
	// Reparented to this test process (a subreaper): wait for it.
	waitPid(t, child, 10*time.Second)
	if !strings.Contains(s.log(), "SIGTERM: draining") {
		t.Errorf("the serving process did not drain after the supervisor died")
	}
}
