package config

import (
	"slices"
	"testing"

	_ "github.com/asyncd/asyncd/loop/standard" // the backends the settings document
)

// TestBackendChoicesRegistered: the backend setting documents exactly what
// it accepts in asyncd's own binary: auto and the backends loop/standard
// registers.
func TestBackendChoicesRegistered(t *testing.T) {
	s := lookup("backend")
	if got := backendChoices(); !slices.Equal(s.Choices, got) {
		t.Errorf("backend Choices %q, registered %q", s.Choices, got)
	}
	for _, ok := range s.Choices {
		if err := checkBackend(Backend(ok)); err != nil {
			t.Errorf("checkBackend(%q) = %v", ok, err)
		}
	}
	if err := checkBackend(Backend("kqueue")); err == nil {
		t.Error("checkBackend(kqueue) = nil")
	}
}
