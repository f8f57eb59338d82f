package config

import (
	"fmt"
	"strings"

	"github.com/asyncd/asyncd/loop"
)

// checkBackend accepts auto and every backend registered with
// loop.Register: asyncd's own (loop/standard) and a plugin's, so that a
// custom binary can select the backend it adds. The setting's Choices
// document the backends asyncd ships.
func checkBackend(v any) error {
	b := v.(Backend)
	if b == BackendAuto {
		return nil
	}
	if _, ok := loop.Lookup(string(b)); ok {
		return nil
	}
	return fmt.Errorf("must be one of %s, got %q", strings.Join(backendChoices(), ", "), string(b))
}

// backendChoices lists what the backend setting accepts.
func backendChoices() []string { return append([]string{loop.Auto}, loop.Names()...) }
