package deploy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/testbin"
)

// customPluginDir is the team's own asyncd build, relative to the
// repository root (examples/custom-plugin/README.md).
const customPluginDir = "examples/custom-plugin"

// customBuildCommand is the build command examples/custom-plugin/README.md
// documents; the test runs exactly this, in that directory.
var customBuildCommand = []string{"go", "build", "-o", "asyncd-custom", "."}

var customBuild struct {
	once sync.Once
	bin  string
	err  error
}

// goEnvAsOnAFreshClone is the test's environment (the go command needs
// its GOPATH, GOCACHE, GOPROXY...) with nothing that could hide a broken
// module: no -mod or -modfile in GOFLAGS (GOFLAGS=-mod=mod would fill in a
// missing go.sum) and no go.work (GOWORK=off).
func goEnvAsOnAFreshClone() []string {
	var env []string
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			var keep []string
			for _, f := range strings.Fields(v) {
				if !strings.HasPrefix(f, "-mod=") && !strings.HasPrefix(f, "-modfile") {
					keep = append(keep, f)
				}
			}
			kv = "GOFLAGS=" + strings.Join(keep, " ")
		}
		if strings.HasPrefix(kv, "GOWORK=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOWORK=off")
}

// customBinary builds examples/custom-plugin with the README's command,
// once per test binary, and returns the binary (moved out of the source
// tree). A missing or stale go.sum fails here, as it would for a user.
//
// The command writes ./asyncd-custom into the example directory, which
// other test processes on this working tree may be doing at the same
// time: an exclusive lock on a file in the temp directory serializes the
// build, and the binary is moved away before the lock is released.
func customBinary(t *testing.T) string {
	t.Helper()
	testbin.SkipShort(t)
	customBuild.once.Do(func() {
		customBuild.bin, customBuild.err = buildCustom()
	})
	if customBuild.err != nil {
		t.Fatal(customBuild.err)
	}
	return customBuild.bin
}

func buildCustom() (string, error) {
	dir := filepath.Join(repoRoot, customPluginDir)
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "asyncd-custom-plugin-build.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock the example build: %v", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck

	built := filepath.Join(dir, customBuildCommand[3])
	defer os.Remove(built)
	cmd := exec.Command(goBin, customBuildCommand[1:]...)
	cmd.Dir = dir
	cmd.Env = goEnvAsOnAFreshClone()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cd %s && %s: %v\n%s\n(after changing asyncd's go.mod, run `go mod tidy` in %s)",
			customPluginDir, strings.Join(customBuildCommand, " "), err, out, customPluginDir)
	}
	b, err := os.ReadFile(built)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(exampleBins, "custom-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(tmp, "asyncd-custom")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		return "", err
	}
	return bin, nil
}

// TestCustomPluginExampleTidy checks that the example's go.mod and go.sum
// are what `go mod tidy` makes of them, so the committed go.sum neither
// lacks nor carries entries.
func TestCustomPluginExampleTidy(t *testing.T) {
	cmd := exec.Command(goBin, "mod", "tidy", "-diff")
	cmd.Dir = filepath.Join(repoRoot, customPluginDir)
	cmd.Env = goEnvAsOnAFreshClone()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cd %s && go mod tidy -diff: %v\n%s\nrun `go mod tidy` there and commit go.mod and go.sum", customPluginDir, err, out)
	}
}

// TestCustomPluginExample builds the team's own binary exactly as its
// README says, starts it with the example's config (on a free port), and
// asks the team's native plugin, the team's net/http plugin and a
// built-in plugin: a binary without the team's plugins would refuse the
// config or answer 404, and one without the built-ins likewise.
func TestCustomPluginExample(t *testing.T) {
	dir := filepath.Join(repoRoot, customPluginDir)
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{strings.Join(customBuildCommand, " "), "./asyncd-custom -c asyncd.yaml"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("%s/README.md no longer documents %q: update the README or this test", customPluginDir, want)
		}
	}
	bin := customBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	// README: ./asyncd-custom -c asyncd.yaml; -b moves it off the
	// example's fixed port 8000, which this shared machine may be using.
	p := testbin.Start(t, bin, testbin.Options{Args: []string{"-c", "asyncd.yaml", "-b", addr}, Dir: dir,
		CombinedOutput: true, SysProcAttr: &syscall.SysProcAttr{Setpgid: true}})

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, _, err := get("/"); err == nil {
			break
		}
		select {
		case <-p.Done():
			t.Fatalf("asyncd-custom -c asyncd.yaml exited at start: %v", p.Err())
		case <-ctx.Done():
			t.Fatalf("asyncd-custom did not answer on %s within 30s", addr)
		case <-time.After(50 * time.Millisecond):
		}
	}

	for _, tt := range []struct {
		what, path, want string
	}{
		{"the team's native plugin greet (greeting: Hi)", "/hello?Ada", "Hi, Ada"},
		{"the team's net/http plugin api", "/api/users/42", `{"id":"42"}`},
		{"the built-in static plugin", "/", "custom asyncd\n"},
	} {
		status, body, err := get(tt.path)
		if err != nil || status != 200 || body != tt.want {
			t.Errorf("GET %s (%s): status %d, body %q, err %v; want 200 %q", tt.path, tt.what, status, body, err, tt.want)
		}
	}

	p.Signal(syscall.SIGTERM)
	select {
	case <-p.Done():
		if err := p.Err(); err != nil {
			t.Errorf("asyncd-custom after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("asyncd-custom did not exit within 60s of SIGTERM")
	}
}
