package uring_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/loop/looptest"
	"github.com/asyncd/asyncd/loop/uring"
)

// TestConformance runs the backend suite every loop.Backend must pass. It
// fails, not skips, where io_uring is unusable: the suite is how this
// backend is known to work.
func TestConformance(t *testing.T) {
	looptest.Run(t, uring.Backend{})
}

func TestName(t *testing.T) {
	if got := (uring.Backend{}).Name(); got != "io_uring" {
		t.Errorf("Name() = %q, want io_uring", got)
	}
}

// TestProbe checks that the probe passes on this machine (kernel 6.x with
// io_uring enabled), and that ProbeFailEnv forces a failure that names its
// reason and lets a caller fall back.
func TestProbe(t *testing.T) {
	tests := []struct {
		name   string
		reason string // value of ProbeFailEnv; "" means unset
		ok     bool
	}{
		{"real kernel", "", true},
		{"forced", "simulated seccomp denial", false},
		{"forced, other reason", "disabled by the operator", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(uring.ProbeFailEnv, tc.reason)
			err := uring.Backend{}.Probe()
			if tc.ok {
				if err != nil {
					t.Fatalf("Probe: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Probe with %s=%q succeeded", uring.ProbeFailEnv, tc.reason)
			}
			if !errors.Is(err, uring.ErrUnavailable) {
				t.Errorf("Probe error %q does not wrap ErrUnavailable", err)
			}
			for _, want := range []string{tc.reason, uring.ProbeFailEnv} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Probe error %q does not mention %q", err, want)
				}
			}
		})
	}
}
