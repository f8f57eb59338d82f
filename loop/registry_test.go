package loop_test

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/loop"
	_ "github.com/asyncd/asyncd/loop/standard"
	"github.com/asyncd/asyncd/loop/uring"
)

// chooseLogged runs Choose with a logger that records its lines.
func chooseLogged(t *testing.T, name string) (string, []string, error) {
	t.Helper()
	var buf bytes.Buffer
	b, err := loop.Choose(name, slog.New(slog.NewTextHandler(&buf, nil)))
	var lines []string
	if s := strings.TrimSpace(buf.String()); s != "" {
		lines = strings.Split(s, "\n")
	}
	if (b == nil) == (err == nil) {
		t.Fatalf("Choose(%q) = %v, %v: want a backend or an error", name, b, err)
	}
	if b == nil {
		return "", lines, err
	}
	return b.Name(), lines, nil
}

// TestChooseAutoOrderIsOneLine: auto follows autoOrder, so putting epoll
// first (the one line to change if a later run measures epoll cheaper)
// makes auto run epoll, silently, whether io_uring could run or not.
func TestChooseAutoOrderIsOneLine(t *testing.T) {
	defer loop.SetAutoOrder("epoll", "io_uring")()
	for _, probeFail := range []string{"", "simulated seccomp profile"} {
		t.Setenv(uring.ProbeFailEnv, probeFail)
		for _, name := range []string{"auto", ""} {
			got, lines, err := chooseLogged(t, name)
			if err != nil || got != "epoll" {
				t.Fatalf("Choose(%q), probe failing %q = %q, %v; want epoll", name, probeFail, got, err)
			}
			if len(lines) != 0 {
				t.Errorf("Choose(%q) logged %q; want nothing", name, lines)
			}
		}
	}
}

// TestChooseAutoPicksIOUring: auto prefers io_uring, the backend the
// published run measured cheaper per request; this machine's kernel (6.18)
// runs it, so auto chooses it, silently.
func TestChooseAutoPicksIOUring(t *testing.T) {
	t.Setenv(uring.ProbeFailEnv, "") // whatever the environment says
	for _, name := range []string{"auto", ""} {
		got, lines, err := chooseLogged(t, name)
		if err != nil || got != "io_uring" {
			t.Fatalf("Choose(%q) = %q, %v; want io_uring on this kernel", name, got, err)
		}
		if len(lines) != 0 {
			t.Errorf("Choose(%q) logged %q; want nothing", name, lines)
		}
	}
	for _, name := range []string{"epoll", "io_uring"} {
		if got, _, err := chooseLogged(t, name); err != nil || got != name {
			t.Errorf("Choose(%q) = %q, %v", name, got, err)
		}
	}
}

// TestChooseFallback: with the io_uring probe failing, auto set to prefer
// io_uring falls back to epoll with exactly one log line naming the
// reason; asking for io_uring is refused with the reason; epoll is
// unaffected.
func TestChooseFallback(t *testing.T) {
	defer loop.SetAutoOrder("io_uring", "epoll")()
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

	// Nothing in the auto order can run: an error with every reason.
	defer loop.SetAutoOrder("io_uring")()
	if _, _, err := chooseLogged(t, "auto"); err == nil || !strings.Contains(err.Error(), reason) ||
		!errors.Is(err, uring.ErrUnavailable) {
		t.Errorf("auto with no backend able to run: %v; want an error with the reason", err)
	}
}

// pluginBackend stands for a backend a plugin author registers.
type pluginBackend struct {
	loop.Backend // never called
	name         string
	env          []string
}

func (b pluginBackend) Name() string   { return b.name }
func (b pluginBackend) Probe() error   { return nil }
func (b pluginBackend) Env() []string  { return b.env }
func (b pluginBackend) String() string { return b.name }

// TestRegister: a backend registered by name from outside is listed, found
// and chosen by that name, and its environment is passed on; registering
// twice, a reserved name or nil panics.
func TestRegister(t *testing.T) {
	if got := loop.Names(); !slices.Equal(got, []string{"epoll", "io_uring"}) {
		t.Fatalf("Names with loop/standard = %q, want epoll and io_uring", got)
	}
	loop.Register(pluginBackend{name: "testloop", env: []string{"TESTLOOP_KNOB"}})
	if !slices.Contains(loop.Names(), "testloop") {
		t.Errorf("Names = %q, want testloop listed", loop.Names())
	}
	if b, ok := loop.Lookup("testloop"); !ok || b.Name() != "testloop" {
		t.Errorf("Lookup(testloop) = %v, %v", b, ok)
	}
	if got, _, err := chooseLogged(t, "testloop"); err != nil || got != "testloop" {
		t.Errorf("Choose(testloop) = %q, %v", got, err)
	}
	if got, _, err := chooseLogged(t, "auto"); err != nil || got != "io_uring" {
		t.Errorf("auto with a plugin backend registered = %q, %v; want io_uring (plugins are chosen by name)", got, err)
	}
	for kv, want := range map[string]bool{
		"TESTLOOP_KNOB=1": true, uring.ProbeFailEnv + "=x": true,
		"TESTLOOP_KNOBS=1": false, "ASYNCD_WORKERS=2": false, "PATH=/bin": false,
	} {
		if got := loop.ReadsEnv(kv); got != want {
			t.Errorf("ReadsEnv(%q) = %v, want %v", kv, got, want)
		}
	}

	for _, tc := range []struct {
		name string
		b    loop.Backend
	}{
		{"twice", pluginBackend{name: "epoll"}},
		{"auto", pluginBackend{name: "auto"}},
		{"empty name", pluginBackend{name: ""}},
		{"nil", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%v) did not panic", tc.b)
				}
			}()
			loop.Register(tc.b)
		})
	}
}
