package e2e

import (
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestCrashRestart: a serving process that dies is replaced at once, on
// the same socket.
func TestCrashRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t, baseConfig, options{})
	addr := s.addr()
	syscall.Kill(s.ready(1).pid, syscall.SIGKILL) //nolint:errcheck
	s.waitLog(`msg="serving process died; restarting it"`, 1)
	s.waitLog(`msg="serving process ready" generation=2 .*reason="restart after crash"`, 1)
	if r := get(t, "tcp", addr, "/"); r.status != 200 {
		t.Errorf("after a crash: status %d", r.status)
	}
}

// TestCrashLoop: a serving process that keeps dying is restarted with
// back-off, and the crash loop ends in a clear error and exit status 1.
func TestCrashLoop(t *testing.T) {
	t.Parallel()
	s := startServer(t, baseConfig, options{})
	var gaps []time.Duration
	last := time.Now()
	for i := 1; i <= 5; i++ {
		syscall.Kill(s.ready(i).pid, syscall.SIGKILL) //nolint:errcheck
		if i == 5 {
			break
		}
		s.waitLog(`msg="serving process ready"`, i+1)
		gaps = append(gaps, time.Since(last))
		last = time.Now()
	}
	if code := s.wait(20 * time.Second); code != 1 {
		t.Errorf("exit code %d after a crash loop, want 1", code)
	}
	s.waitLog(`serving process keeps crashing \(5 times in a row\)`, 1)
	// back-off: the restarts after the second crash wait (200ms, 400ms, 800ms)
	if n := s.count(`msg="serving process started" .*reason="restart after crash"`); n != 4 {
		t.Errorf("%d restarts, want 4", n)
	}
	t.Logf("kill-to-ready gaps: %v", gaps)
	if gaps[3] < 800*time.Millisecond {
		t.Errorf("4th restart after %s: no back-off", gaps[3])
	}
}

// TestStartFailure: serving processes that cannot start end asyncd with a
// clear error and exit status 1: at once when one cannot even be started
// (an unknown user), after five attempts with back-off when each dies
// before it is ready.
func TestStartFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, config, serve, want string
	}{
		{"unknown user", baseConfig + "user: no-such-user-e2e\n", "", `user \\"no-such-user-e2e\\"`},
		{"dies before ready", baseConfig, "exit 3", `serving process failed to start 5 times in a row; last: exit status 3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := options{noWait: true}
			if tc.serve != "" {
				o.argv = wrapper(t, t.TempDir(), tc.serve)
			}
			s := startServer(t, tc.config, o)
			if code := s.wait(20 * time.Second); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			s.waitLog(tc.want, 1)
		})
	}
}

// TestMaxRequests: after max_requests (plus up to max_requests_jitter)
// requests the serving process is replaced as on SIGHUP: no failed
// request, keep-alive clients told Connection: close; on each backend.
func TestMaxRequests(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testMaxRequests)
}

func testMaxRequests(t *testing.T, backend string) {
	s := startServer(t, onBackend(baseConfig, backend)+"max_requests: 300\nmax_requests_jitter: 100\n", options{})
	s.checkBackend(1, backend)
	l := startLoad("tcp", s.addr(), "/", 10)
	s.waitLog(`msg="serving process ready" generation=4 .*reason="recycle: max_requests`, 1)
	s.checkBackend(4, backend)
	summary := l.stop()
	t.Log(summary)
	if l.errs.Load() != 0 || l.non2xx.Load() != 0 {
		t.Errorf("requests failed across max_requests recycling: %s", summary)
	}
	for _, m := range regexpAll(s.log(), `max_requests (\d+) reached`) {
		n, _ := strconv.Atoi(m[1])
		if n < 300 || n > 400 {
			t.Errorf("recycled after %d requests, want 300..400 (max_requests 300, jitter 100)", n)
		}
	}
}

// TestMaxWorkerMemory: a serving process above max_worker_memory (RSS) is
// replaced without a failed request. 1MB (10^6 bytes) is below any Go process's RSS, so
// every generation recycles as soon as it serves: a stress test of
// back-to-back replacements.
func TestMaxWorkerMemory(t *testing.T) {
	t.Parallel()
	s := startServer(t, baseConfig+"max_worker_memory: 1MB\n", options{})
	l := startLoad("tcp", s.addr(), "/", 10)
	s.waitLog(`msg="serving process ready" generation=5 .*reason="recycle: max_worker_memory: RSS \d+ > 1000000"`, 1)
	summary := l.stop()
	t.Log(summary)
	if l.errs.Load() != 0 || l.non2xx.Load() != 0 {
		t.Errorf("requests failed across max_worker_memory recycling: %s", summary)
	}
}

// TestStuckLoop: timeout is Gunicorn's heartbeat: an event loop held
// longer than timeout (a handler blocking it) is reported with a goroutine
// dump in the error log, and the serving process is replaced; new
// connections are served meanwhile.
func TestStuckLoop(t *testing.T) {
	t.Parallel()
	const cfg = `
bind: ["127.0.0.1:0"]
workers: 1
backend: epoll
timeout: 1s
graceful_timeout: 1s
errorlog: "@DIR@/error.log"
routes:
  - path: /block
    handler: static
    options: {body: "late", delay: 4s}
  - path: /
    handler: static
    options: {body: "v1"}
`
	s := startServer(t, cfg, options{logFile: "@DIR@/error.log"})
	addr := s.addr()
	c := dial(t, "tcp", addr)
	go c.do("/block", 10*time.Second) //nolint:errcheck // its loop is the stuck one
	s.waitLog(`msg="event loop is not responding \(timeout\)" loop=0 .*goroutines="goroutine \d+`, 1)
	s.waitLog(`msg="serving process reports a stuck event loop; replacing it"`, 1)
	s.waitLog(`msg="serving process ready" generation=2 .*reason="stuck event loop: loop 0`, 1)
	if r := get(t, "tcp", addr, "/"); r.status != 200 {
		t.Errorf("while the old loop is stuck: status %d", r.status)
	}
	// one report per stall, not one per monitor tick
	time.Sleep(time.Second)
	if n := s.count(`event loop is not responding`); n != 1 {
		t.Errorf("%d reports of one stall, want 1", n)
	}
}

// TestHeartbeat: a serving process that stops answering altogether (here:
// SIGSTOP) is replaced after timeout; with timeout 0 there is no
// heartbeat and it is left alone.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		timeout  string
		replaced bool
	}{{"1s", true}, {"0", false}} {
		t.Run("timeout="+tc.timeout, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, baseConfig+"timeout: "+tc.timeout+"\n", options{})
			addr := s.addr()
			child := s.ready(1).pid
			syscall.Kill(child, syscall.SIGSTOP)       //nolint:errcheck
			defer syscall.Kill(child, syscall.SIGCONT) //nolint:errcheck
			if !tc.replaced {
				time.Sleep(2500 * time.Millisecond)
				syscall.Kill(child, syscall.SIGCONT) //nolint:errcheck
				if n := s.count(`missed its heartbeat`); n != 0 {
					t.Errorf("heartbeat checked with timeout 0")
				}
				if g := s.generations(); g != 1 {
					t.Errorf("%d generations, want 1", g)
				}
				if r := get(t, "tcp", addr, "/"); r.status != 200 {
					t.Errorf("status %d", r.status)
				}
				return
			}
			s.waitLog(`msg="serving process missed its heartbeat \(timeout\); replacing it" generation=1`, 1)
			s.waitLog(`msg="serving process ready" generation=2 .*reason="heartbeat timeout"`, 1)
			if r := get(t, "tcp", addr, "/"); r.status != 200 {
				t.Errorf("after the replacement: status %d", r.status)
			}
			// SIGABRT cannot reach a stopped process: SIGKILL follows.
			s.waitLog(`msg="serving process exited" generation=1`, 1)
			if alive(child) {
				t.Errorf("the silent process %d is still there", child)
			}
		})
	}
}

func regexpAll(s, pattern string) [][]string {
	return regexp.MustCompile(pattern).FindAllStringSubmatch(s, -1)
}
