package serving_test

import (
	"testing"

	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/loop/uring"
)

// TestProbeFailEnvIsNotASetting: the documented override is accepted by
// the config loader (an ASYNCD_ variable that names no setting is an
// error), so the binary starts with it set.
func TestProbeFailEnvIsNotASetting(t *testing.T) {
	fs := config.NewFlagSet("asyncd")
	if _, _, err := config.Load(fs, nil, []string{uring.ProbeFailEnv + "=simulated", "PATH=/bin"}); err != nil {
		t.Fatalf("config with %s set: %v", uring.ProbeFailEnv, err)
	}
}
