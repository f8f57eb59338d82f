package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// probeFailEnv forces asyncd's io_uring probe to fail with the reason it is
// set to (uring.ProbeFailEnv; spelled out: these tests see only the binary).
const probeFailEnv = "ASYNCD_INTERNAL_IOURING_PROBE_FAIL"

const probeFailReason = "simulated seccomp profile"

// TestBackendAuto: `backend: auto` serves on io_uring, the backend measured
// cheaper per request (autoOrder in loop/registry.go), silently where it
// runs, and on epoll with one line giving the reason per generation where
// its probe fails, reloads included; asking for io_uring where it cannot
// run is refused with the reason.
func TestBackendAuto(t *testing.T) {
	t.Parallel()
	auto := strings.Replace(baseConfig, "\nbackend: epoll\n", "\nbackend: auto\n", 1)
	t.Run("io_uring here", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, auto, options{})
		s.checkBackend(1, "io_uring") // auto prefers io_uring, measured cheaper
		if n := s.count(`(?m)^.*io_uring unavailable.*$`); n != 0 {
			t.Errorf("%d fallback lines with io_uring available", n)
		}
	})
	t.Run("probe fails", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, auto, options{env: []string{probeFailEnv + "=" + probeFailReason}})
		s.checkBackend(1, "epoll")
		if r := get(t, "tcp", s.addr(), "/"); r.status != 200 || r.body != "v1" {
			t.Errorf("on epoll: %d %q", r.status, r.body)
		}
		s.signal(syscall.SIGHUP)
		s.waitLog(`msg="serving process ready" generation=2`, 1)
		s.checkBackend(2, "epoll")
		// Each generation falls back once and says why.
		if n := s.count(`(?m)^.*io_uring unavailable, using epoll.*` + probeFailReason + `.*$`); n != 2 {
			t.Errorf("%d lines saying io_uring is unavailable, with the reason; want one per generation (2)", n)
		}
		// Asking for io_uring now is a reload that fails with the reason.
		s.writeConfig(onBackend(baseConfig, "io_uring"))
		s.signal(syscall.SIGHUP)
		line := s.waitLog(`msg="SIGHUP: reload failed; the running generation keeps serving" error=(.*)`, 1)
		if !strings.Contains(line[1], "backend io_uring") || !strings.Contains(line[1], probeFailReason) {
			t.Errorf("reload refusal %s does not name backend io_uring and the reason", line[1])
		}
		if r := get(t, "tcp", s.addr(), "/"); r.status != 200 {
			t.Errorf("after the refused reload: status %d", r.status)
		}
		if g := s.generations(); g != 2 {
			t.Errorf("%d generations, want 2", g)
		}
	})
}

// TestBackendIOUringRefused: `backend: io_uring` with the probe failing
// does not fall back: asyncd exits non-zero at once, before starting a
// serving process, and its last line gives the reason.
func TestBackendIOUringRefused(t *testing.T) {
	t.Parallel()
	cfg := onBackend(baseConfig, "io_uring")
	s := startServer(t, cfg, options{noWait: true, env: []string{probeFailEnv + "=" + probeFailReason}})
	if code := s.wait(30 * time.Second); code == 0 {
		t.Errorf("exit code 0 with backend io_uring unavailable")
	}
	s.waitLog(`msg="asyncd stopped" error="\S*asyncd.yaml:\d+: backend io_uring: io_uring unavailable: .*`+probeFailReason, 1)
	if n := s.count(`msg="serving process started"`); n != 0 {
		t.Errorf("%d serving processes started on an unavailable backend", n)
	}
	if n := s.count(`using epoll`); n != 0 {
		t.Errorf("backend io_uring fell back to epoll")
	}
}
