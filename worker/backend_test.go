package worker_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/config"
	"github.com/asyncd/asyncd/loop/uring"
	"github.com/asyncd/asyncd/worker"
)

// chooseLogged runs ChooseBackend with a logger that records its lines.
func chooseLogged(t *testing.T, name string) (string, []string, error) {
	t.Helper()
	var buf lockedBuffer
	b, err := worker.ChooseBackend(name, slog.New(slog.NewTextHandler(&buf, nil)))
	var lines []string
	if s := strings.TrimSpace(buf.String()); s != "" {
		lines = strings.Split(s, "\n")
	}
	if (b == nil) == (err == nil) {
		t.Fatalf("ChooseBackend(%q) = %v, %v: want a backend or an error", name, b, err)
	}
	if b == nil {
		return "", lines, err
	}
	return b.Name(), lines, nil
}

// TestChooseBackendAutoPicksEpoll: auto runs the backend measured cheaper
// per request, epoll, silently, whether io_uring could run or not.
func TestChooseBackendAutoPicksEpoll(t *testing.T) {
	for _, probeFail := range []string{"", "simulated seccomp profile"} {
		t.Setenv(uring.ProbeFailEnv, probeFail)
		for _, name := range []string{"auto", ""} {
			got, lines, err := chooseLogged(t, name)
			if err != nil || got != "epoll" {
				t.Fatalf("ChooseBackend(%q), probe failing %q = %q, %v; want epoll", name, probeFail, got, err)
			}
			if len(lines) != 0 {
				t.Errorf("ChooseBackend(%q) logged %q; want nothing", name, lines)
			}
		}
	}
}

// TestChooseBackendAutoPicksIOUring: with auto set to prefer io_uring, this
// machine's kernel (6.18) runs it, so auto chooses it, silently.
func TestChooseBackendAutoPicksIOUring(t *testing.T) {
	defer worker.SetAutoBackend("io_uring")()
	t.Setenv(uring.ProbeFailEnv, "") // whatever the environment says
	for _, name := range []string{"auto", ""} {
		got, lines, err := chooseLogged(t, name)
		if err != nil || got != "io_uring" {
			t.Fatalf("ChooseBackend(%q) = %q, %v; want io_uring on this kernel", name, got, err)
		}
		if len(lines) != 0 {
			t.Errorf("ChooseBackend(%q) logged %q; want nothing", name, lines)
		}
	}
	for _, name := range []string{"epoll", "io_uring"} {
		if got, _, err := chooseLogged(t, name); err != nil || got != name {
			t.Errorf("ChooseBackend(%q) = %q, %v", name, got, err)
		}
	}
}

// TestChooseBackendFallback: with the io_uring probe failing, auto set to
// prefer io_uring falls back to epoll with exactly one log line naming the
// reason; asking for io_uring is refused with the reason; epoll is
// unaffected.
func TestChooseBackendFallback(t *testing.T) {
	defer worker.SetAutoBackend("io_uring")()
	const reason = "simulated seccomp profile"
	t.Setenv(uring.ProbeFailEnv, reason)

	got, lines, err := chooseLogged(t, "auto")
	if err != nil || got != "epoll" {
		t.Fatalf("auto with a failing probe = %q, %v; want epoll", got, err)
	}
	if len(lines) != 1 {
		t.Fatalf("auto logged %d lines, want exactly 1:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if l := lines[0]; !strings.Contains(l, "io_uring unavailable, using epoll") || !strings.Contains(l, reason) {
		t.Errorf("fallback line %q does not say epoll is used and why (%q)", l, reason)
	}

	got, lines, err = chooseLogged(t, "io_uring")
	if err == nil {
		t.Fatalf("backend io_uring with a failing probe chose %q", got)
	}
	if !strings.Contains(err.Error(), reason) || !strings.Contains(err.Error(), "io_uring") ||
		!errors.Is(err, uring.ErrUnavailable) {
		t.Errorf("refusal %q does not name io_uring and the reason %q (or does not wrap ErrUnavailable)", err, reason)
	}
	if len(lines) != 0 {
		t.Errorf("a refusal logs nothing itself (the caller reports the error); got %q", lines)
	}

	if got, lines, err := chooseLogged(t, "epoll"); err != nil || got != "epoll" || len(lines) != 0 {
		t.Errorf("epoll with io_uring's probe failing = %q, %v, %q", got, err, lines)
	}
	if _, _, err := chooseLogged(t, "kqueue"); err == nil || !strings.Contains(err.Error(), "kqueue") {
		t.Errorf("unknown backend: %v", err)
	}
}

// TestProbeFailEnvIsNotASetting: the documented override is accepted by
// the config loader (an ASYNCD_ variable that names no setting is an
// error), so the binary starts with it set.
func TestProbeFailEnvIsNotASetting(t *testing.T) {
	fs := config.NewFlagSet("asyncd")
	if _, _, err := config.Load(fs, nil, []string{uring.ProbeFailEnv + "=simulated", "PATH=/bin"}); err != nil {
		t.Fatalf("config with %s set: %v", uring.ProbeFailEnv, err)
	}
}
