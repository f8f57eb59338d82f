package loop

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// Auto is the name of the config's `backend` setting that lets Choose pick.
const Auto = "auto"

// autoOrder is what `backend: auto` tries, in order: the first registered
// backend whose Probe passes runs, and each one skipped is logged with its
// reason. io_uring first: the published run at 3e857ab measured it
// cheaper per request than epoll on plaintext, pipelined, churn and 1,000
// connections (docs/benchmarks.md, "io_uring against epoll"); where the
// kernel refuses it, auto falls back to epoll with the probe's reason.
var autoOrder = []string{"io_uring", "epoll"}

var (
	registryMu sync.RWMutex
	backends   = map[string]Backend{} // by Name, under registryMu
)

// Register makes a backend available under its Name to the config's
// `backend` setting. It is meant to be called from an init function (the
// database/sql-driver pattern: a binary that imports the backend's package
// can run it); registering a name twice, an empty name, "auto" or a nil
// backend panics, because it is a programming error found at start-up.
// asyncd's own backends, epoll and io_uring, register this way (package
// loop/standard imports them).
func Register(b Backend) {
	if b == nil {
		panic("loop: Register: nil backend")
	}
	name := b.Name()
	if name == "" || name == Auto {
		panic(fmt.Sprintf("loop: Register: backend name %q is reserved", name))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := backends[name]; dup {
		panic("loop: Register called twice for " + name)
	}
	backends[name] = b
}

// Lookup returns the backend registered under name.
func Lookup(name string) (Backend, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	b, ok := backends[name]
	return b, ok
}

// Names lists the registered backends, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(backends))
	for n := range backends {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Choose returns the backend for the config's `backend` setting. "auto"
// (or "") runs the first backend of the auto order whose Probe passes,
// logging each one skipped with the reason; naming a backend that cannot
// run here is an error with the probe's reason, and so is a name nothing
// registered.
func Choose(name string, log *slog.Logger) (Backend, error) {
	if name != Auto && name != "" {
		b, ok := Lookup(name)
		if !ok {
			return nil, fmt.Errorf("backend: unknown backend %q (%s, %s)", name, Auto, strings.Join(Names(), ", "))
		}
		if err := b.Probe(); err != nil {
			return nil, fmt.Errorf("backend %s: %w", name, err)
		}
		return b, nil
	}
	var skipped []string
	var reasons []error
	for _, n := range autoOrder {
		b, ok := Lookup(n)
		if !ok {
			continue
		}
		if err := b.Probe(); err != nil {
			skipped = append(skipped, n)
			reasons = append(reasons, err)
			continue
		}
		for i, s := range skipped {
			log.Info(fmt.Sprintf("%s unavailable, using %s", s, n), "reason", reasons[i].Error())
		}
		return b, nil
	}
	if len(reasons) == 0 {
		return nil, fmt.Errorf("backend %s: none of %s is registered", Auto, strings.Join(autoOrder, ", "))
	}
	return nil, fmt.Errorf("backend %s: no backend can run here: %w", Auto, errors.Join(reasons...))
}

// EnvReader is implemented by a backend that reads environment variables
// of its own in the serving process, such as io_uring's switch that makes
// its Probe fail (uring.ProbeFailEnv). The supervisor passes them on to the
// serving processes, which choose the backend, and to the new supervisor
// of a binary upgrade, although it strips every other ASYNCD_ variable.
type EnvReader interface {
	Env() []string
}

// ReadsEnv reports whether the environment entry kv ("NAME=value") sets a
// variable that a registered backend reads (EnvReader).
func ReadsEnv(kv string) bool {
	registryMu.RLock()
	defer registryMu.RUnlock()
	for _, b := range backends {
		r, ok := b.(EnvReader)
		if !ok {
			continue
		}
		for _, name := range r.Env() {
			if strings.HasPrefix(kv, name+"=") {
				return true
			}
		}
	}
	return false
}
