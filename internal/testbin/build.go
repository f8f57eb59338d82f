package testbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// mainPackage is the command the binary is built from. It is named by
// import path, so the build works from any package directory of the
// module.
const mainPackage = "github.com/asyncd/asyncd/cmd/asyncd"

// Build says how to build the binary; each distinct Build is built once
// per test process.
type Build struct {
	Race    bool   // with the race detector (-race)
	Version string // stamped as cli.Version with -ldflags -X, as make build does; "" leaves the toolchain's
}

// builds are the binaries this test process built. Every field is guarded
// by mu; each entry's fields by its once.
var builds struct {
	mu   sync.Mutex
	main bool   // Main is running the tests
	dir  string // holds every binary built; Main removes it
	done map[Build]*built
}

type built struct {
	once sync.Once
	path string
	err  error
}

// Main runs the tests and then removes the binaries built for them. A
// package that uses Binary calls it from its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }
func Main(m *testing.M) int {
	builds.mu.Lock()
	builds.main = true
	builds.mu.Unlock()
	code := m.Run()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	return code
}

// Binary returns the asyncd binary built as b, building it on the first
// call in this test process. In -short mode it skips the test instead.
func Binary(t testing.TB, b Build) string {
	t.Helper()
	SkipShort(t)
	path, err := binary(b)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// SkipShort skips the test in -short mode, saying why: it builds or runs
// a binary, which the inner loop leaves to make test.
func SkipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: this test builds and runs a binary; make test (go test without -short) runs it")
	}
}

func binary(b Build) (string, error) {
	builds.mu.Lock()
	if !builds.main {
		builds.mu.Unlock()
		return "", errors.New("testbin: the package's TestMain must call testbin.Main, which removes the binaries it builds")
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "asyncd-testbin-")
		if err != nil {
			builds.mu.Unlock()
			return "", err
		}
		// Readable by another user: tests start asyncd as an unprivileged
		// user, and its serving processes re-execute the binary.
		if err := os.Chmod(dir, 0o755); err != nil {
			builds.mu.Unlock()
			return "", err
		}
		builds.dir = dir
		builds.done = map[Build]*built{}
	}
	e := builds.done[b]
	if e == nil {
		e = &built{}
		builds.done[b] = e
	}
	dir := builds.dir
	builds.mu.Unlock()
	e.once.Do(func() { e.path, e.err = goBuild(dir, b) })
	return e.path, e.err
}

// goBuild builds b into a directory of its own under dir, as "asyncd":
// the file name is the process name tests see (ps, /proc/PID/comm, the
// upgrade log).
func goBuild(dir string, b Build) (string, error) {
	sub, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(sub, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(sub, "asyncd")
	args := []string{"build", "-o", out}
	if b.Race {
		args = append(args, "-race")
	}
	if b.Version != "" {
		args = append(args, "-ldflags", "-X github.com/asyncd/asyncd/cli.Version="+b.Version)
	}
	args = append(args, mainPackage)
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build asyncd: %w", err)
	}
	if msg, err := exec.Command(gobin, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return out, nil
}
