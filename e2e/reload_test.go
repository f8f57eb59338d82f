package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadZeroDowntime is issue 6's measurement in small: keep-alive
// clients that never retry, a SIGHUP every 500ms, and not one failed or
// non-2xx request, on each backend. bench/reload.sh runs the full-size
// version with wrk.
func TestReloadZeroDowntime(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, onBackend(baseConfig, backend), options{})
		s.checkBackend(1, backend)
		addr := s.addr()
		l := startLoad("tcp", addr, "/", 50)
		const hups = 10
		for i := 0; i < hups; i++ {
			time.Sleep(500 * time.Millisecond)
			s.signal(syscall.SIGHUP)
		}
		// every SIGHUP handled; then let the last replacement serve and its
		// predecessor drain under load
		s.waitLog(`msg="SIGHUP: reloading"`, hups)
		time.Sleep(1500 * time.Millisecond)
		summary := l.stop()
		t.Logf("%d SIGHUPs, %d generations: %s", hups, s.generations(), summary)
		if l.errs.Load() != 0 || l.non2xx.Load() != 0 {
			t.Errorf("requests failed during reloads: %s", summary)
		}
		if l.ok.Load() == 0 {
			t.Fatalf("no request succeeded: %s", summary)
		}
		g := s.generations()
		if g < 3 {
			t.Errorf("only %d generations served after %d SIGHUPs", g, hups)
		}
		s.checkBackend(g, backend) // the replacements too
		if l.closes.Load() == 0 {
			t.Errorf("no response carried Connection: close: the old generations did not drain politely")
		}
		s.signal(syscall.SIGTERM)
		if code := s.wait(20 * time.Second); code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0", code)
		}
	})
}

// TestReloadAppliesConfig: SIGHUP re-reads the file; the new generation
// serves the new config on the same socket.
func TestReloadAppliesConfig(t *testing.T) {
	t.Parallel()
	s := startServer(t, baseConfig, options{})
	addr := s.addr()
	if r := get(t, "tcp", addr, "/"); r.body != "v1" {
		t.Fatalf("body %q, want v1", r.body)
	}
	s.writeConfig(strings.Replace(baseConfig, `body: "v1"`, `body: "v2"`, 1))
	s.signal(syscall.SIGHUP)
	s.waitLog(`msg="serving process ready" generation=2 .*reason=reload`, 1)
	// Until generation 1 has acted on its SIGHUP it still accepts from the
	// shared socket (the handover overlap, as in nginx and Gunicorn), so a
	// connection made now may still be served v1; only its exit proves that
	// every new connection reaches the new config.
	if r := get(t, "tcp", addr, "/"); r.status != 200 || (r.body != "v1" && r.body != "v2") {
		t.Errorf("during the handover: %d %q, want 200 v1 or v2", r.status, r.body)
	}
	// the old generation drained and exited
	s.waitLog(`msg="serving process exited" generation=1 .*status="exit status 0"`, 1)
	if r := get(t, "tcp", addr, "/"); r.body != "v2" {
		t.Errorf("body after reload %q, want v2", r.body)
	}
}

// TestReloadBrokenConfig: a config that does not load leaves the running
// generation serving, and the error log names the file and the key.
func TestReloadBrokenConfig(t *testing.T) {
	t.Parallel()
	s := startServer(t, baseConfig, options{})
	addr := s.addr()
	first := s.ready(1).pid
	for i, broken := range []struct{ config, key string }{
		{strings.Replace(baseConfig, "workers: 2", "workers: -2", 1), "workers"},
		{strings.Replace(baseConfig, "graceful_timeout: 5s", "graceful_timeout: soon", 1), "graceful_timeout"},
		{strings.Replace(baseConfig, "handler: static\n    options: {body: \"v1\"}", "handler: nosuchplugin", 1), "nosuchplugin"},
	} {
		s.writeConfig(broken.config)
		s.signal(syscall.SIGHUP)
		line := s.waitLog(`msg="SIGHUP: reload failed; the running generation keeps serving" error=(.*)`, i+1)
		if !strings.Contains(line[1], "asyncd.yaml") || !strings.Contains(line[1], broken.key) {
			t.Errorf("reload error %s does not name the file and %q", line[1], broken.key)
		}
		if r := get(t, "tcp", addr, "/"); r.status != 200 || r.body != "v1" {
			t.Errorf("after a broken reload: %d %q, want 200 v1", r.status, r.body)
		}
	}
	if g := s.generations(); g != 1 {
		t.Errorf("%d generations after broken reloads, want 1", g)
	}
	if !alive(first) {
		t.Errorf("the serving process %d is gone", first)
	}
	// fixed again: the reload goes through
	s.writeConfig(strings.Replace(baseConfig, `body: "v1"`, `body: "v3"`, 1))
	s.signal(syscall.SIGHUP)
	s.waitLog(`msg="serving process ready" generation=2`, 1)
	// generation 1 accepts until it has acted on its SIGHUP: see
	// TestReloadAppliesConfig
	s.waitLog(`msg="serving process exited" generation=1 .*status="exit status 0"`, 1)
	if r := get(t, "tcp", addr, "/"); r.body != "v3" {
		t.Errorf("body %q, want v3", r.body)
	}
}

// TestReloadDrain: on SIGHUP the old generation finishes a request in
// flight (answering it with Connection: close) and closes an idle
// keep-alive connection, all within graceful_timeout, then exits; on each
// backend.
func TestReloadDrain(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testReloadDrain)
}

func testReloadDrain(t *testing.T, backend string) {
	s := startServer(t, onBackend(baseConfig, backend), options{})
	s.checkBackend(1, backend)
	addr := s.addr()
	idle := dial(t, "tcp", addr)
	if r, err := idle.do("/", 5*time.Second); err != nil || r.status != 200 {
		t.Fatalf("first request: %v %v", r, err)
	}
	// busy sends /slow (1s) back to back until an answer says close, so
	// that a request is in flight whenever the drain starts, however long
	// the new generation takes to start.
	busy := dial(t, "tcp", addr)
	type result struct {
		r        *response
		err      error
		n        int  // requests answered before
		draining bool // the old generation had logged its drain by then
	}
	inflight := make(chan result, 1)
	go func() {
		for n := 0; ; n++ {
			r, err := busy.do("/slow", 10*time.Second)
			if err != nil || r.status != 200 || strings.EqualFold(r.header["connection"], "close") {
				inflight <- result{r, err, n, s.count(`replaced by a new generation: draining`) > 0}
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // the request is running
	s.signal(syscall.SIGHUP)
	s.waitLog(`msg="serving process ready" generation=2`, 1)
	s.checkBackend(2, backend)
	res := <-inflight
	if res.err != nil {
		t.Fatalf("request in flight during reload (after %d answered): %v", res.n, res.err)
	}
	if res.r.status != 200 || res.r.body != "slow" {
		t.Errorf("request in flight: %d %q, want 200 slow", res.r.status, res.r.body)
	}
	if !res.draining {
		t.Errorf("Connection: close before the old generation drained (after %d answers)", res.n)
	}
	if !busy.closed(5 * time.Second) {
		t.Errorf("the connection answered with Connection: close stayed open")
	}
	if !idle.closed(6 * time.Second) {
		t.Errorf("idle keep-alive connection not closed by the draining generation")
	}
	s.waitLog(`msg="serving process exited" generation=1 .*status="exit status 0"`, 1)
	if r := get(t, "tcp", addr, "/"); r.status != 200 {
		t.Errorf("after the reload: %d", r.status)
	}
}

// wrapper writes a script that asyncd runs as its own binary (argv[0], so
// also for the serving processes it starts); serve is shell run first in a
// serving process. It returns the command that starts asyncd through it.
func wrapper(t *testing.T, dir, serve string) []string {
	t.Helper()
	w := filepath.Join(dir, "asyncd-wrapper")
	script := "#!/bin/sh\nif [ \"$ASYNCD_INTERNAL_SERVE\" = 1 ]; then " + serve + "; fi\nexec \"$E2E_ASYNCD\" \"$@\"\n"
	if err := os.WriteFile(w, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// bash's exec -a sets argv[0], which asyncd uses to start its children
	return []string{"/bin/bash", "-c", `exec -a "$0" "$E2E_ASYNCD" -c asyncd.yaml`, w}
}

// slowStartWrapper: serving processes take 600ms to start, a window for
// signals that arrive while a replacement is pending.
func slowStartWrapper(t *testing.T, dir string) []string {
	return wrapper(t, dir, "sleep 0.6")
}

// TestReloadNewProcessFails: a new serving process that dies before it is
// ready (here: whenever a marker file exists) leaves the current one
// serving; systemd gets READY=1 back; the next reload goes through.
func TestReloadNewProcessFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "fail")
	n := newNotifySocket(t)
	s := startServer(t, baseConfig, options{argv: wrapper(t, dir, `[ -e "`+marker+`" ] && exit 3`),
		env: []string{"NOTIFY_SOCKET=" + n.path}})
	addr := s.addr()
	n.next(t, "READY=1")
	first := s.ready(1).pid
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.signal(syscall.SIGHUP)
	n.next(t, "RELOADING=1")
	s.waitLog(`msg="new serving process exited before it was ready; the current one keeps serving" generation=2 status="exit status 3"`, 1)
	n.next(t, "READY=1")
	if r := get(t, "tcp", addr, "/"); r.status != 200 || !alive(first) {
		t.Errorf("after a failed replacement: status %d, first process alive %v", r.status, alive(first))
	}
	if s.count("died") != 0 || s.count(`generation=1 .*status=`) != 0 {
		t.Errorf("the serving generation was disturbed")
	}
	os.Remove(marker)
	s.signal(syscall.SIGHUP)
	s.waitLog(`msg="serving process ready" generation=3`, 1)
}

// TestReloadWhilePending: SIGHUPs that arrive while a new serving process
// is still starting neither stack processes nor kill the one starting (it
// may hold connections already): one more replacement follows once it is
// ready, with the latest config.
func TestReloadWhilePending(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, baseConfig, options{argv: slowStartWrapper(t, dir)})
	addr := s.addr()
	l := startLoad("tcp", addr, "/", 10)
	s.signal(syscall.SIGHUP)
	time.Sleep(150 * time.Millisecond)
	s.writeConfig(strings.Replace(baseConfig, `body: "v1"`, `body: "v2"`, 1))
	s.signal(syscall.SIGHUP)
	time.Sleep(150 * time.Millisecond)
	s.signal(syscall.SIGHUP)
	s.waitLog(`a new serving process is still starting; it will be replaced once ready`, 2)
	s.waitLog(`msg="serving process ready" generation=3`, 1)
	time.Sleep(300 * time.Millisecond)
	summary := l.stop()
	if l.errs.Load() != 0 || l.non2xx.Load() != 0 {
		t.Errorf("requests failed: %s", summary)
	}
	// generation 2 (v1) accepts until it has acted on its SIGHUP: see
	// TestReloadAppliesConfig
	s.waitLog(`msg="serving process exited" generation=2 .*status="exit status 0"`, 1)
	if r := get(t, "tcp", addr, "/"); r.body != "v2" {
		t.Errorf("body %q, want v2 (the latest config)", r.body)
	}
	if n := s.count(`msg="serving process started"`); n != 3 {
		t.Errorf("%d serving processes started for 3 SIGHUPs during one start, want 3 (first, one replacement, one more)", n)
	}
	if n := s.count(`did not exit in time|killing`); n != 0 {
		t.Errorf("%d serving processes killed", n)
	}
}

// TestStraySignals: signals that only mean something to the supervisor,
// sent to a serving process by mistake, neither stop nor kill it.
func TestStraySignals(t *testing.T) {
	t.Parallel()
	s := startServer(t, baseConfig, options{})
	child := s.ready(1).pid
	for _, sig := range []syscall.Signal{syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR2} {
		syscall.Kill(child, sig) //nolint:errcheck
	}
	time.Sleep(300 * time.Millisecond)
	if st := procStatus(t, child, "State"); !strings.HasPrefix(st, "S") && !strings.HasPrefix(st, "R") {
		t.Errorf("serving process state %q after stray signals", st)
	}
	if r := get(t, "tcp", s.addr(), "/"); r.status != 200 {
		t.Errorf("status %d", r.status)
	}
	if g := s.generations(); g != 1 || s.count("died") != 0 {
		t.Errorf("the serving process was replaced")
	}
}
