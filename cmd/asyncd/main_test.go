package main_test

import (
	"bufio"
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
)

// buildBinary builds the real asyncd binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "asyncd")
	cmd := exec.Command("go", "build", "-race", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedLog collects the output a goroutine reads while the test looks at
// it.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAsyncd starts the binary with a config and waits for its ready line.
func startAsyncd(t *testing.T, bin, config string, args ...string) (*exec.Cmd, *lockedLog) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "asyncd.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"-c", cfgPath}, args...)...)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := &lockedLog{}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "asyncd ready") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("asyncd did not report ready:\n%s", log.String())
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, log
}

func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	for _, backend := range []string{"epoll", "io_uring"} {
		t.Run(backend, func(t *testing.T) {
			addr := freePort(t)
			cmd, log := startAsyncd(t, bin, fmt.Sprintf(`
bind: ["%s"]
workers: 2
backend: %s
routes:
  - {path: /hello, handler: static, methods: [GET], options: {body: "Hello, World!", content_type: text/plain}}
  - {path: /echo/, handler: echo}
`, addr, backend))
			// /hello is an exact route (no trailing "/"), so /missing and
			// /hello/x match nothing and are 404s.
			resp, err := http.Get("http://" + addr + "/hello")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "Hello, World!" || resp.Header.Get("Content-Type") != "text/plain" {
				t.Fatalf("GET /hello: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
			}
			resp, err = http.Post("http://"+addr+"/echo/x?y=1", "text/plain", strings.NewReader("hi"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"body":"hi"`) || !strings.Contains(string(body), `"query":"y=1"`) {
				t.Fatalf("POST /echo/: %d %s", resp.StatusCode, body)
			}
			resp, err = http.Get("http://" + addr + "/missing")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 {
				t.Fatalf("GET /missing: %d", resp.StatusCode)
			}
			if !strings.Contains(log.String(), "backend="+backend) {
				t.Errorf("ready line does not name backend %s:\n%s", backend, log.String())
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after SIGTERM: %v\n%s", err, log.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("asyncd did not exit after SIGTERM:\n%s", log.String())
			}
		})
	}
}

func TestCheckConfigMisspelledKey(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	os.WriteFile(p, []byte("bind: [\"127.0.0.1:0\"]\nworker_clas: sync\n"), 0o644)
	out, err := exec.Command(bin, "--check-config", "-c", p).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "worker_clas") || !strings.Contains(string(out), "bad.yaml") {
		t.Fatalf("message does not name the key and the file:\n%s", out)
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("bind: [\"127.0.0.1:0\"]\nworker_class: gevent\nroutes:\n  - {path: /, handler: static}\n"), 0o644)
	if out, err := exec.Command(bin, "--check-config", "-c", good).CombinedOutput(); err != nil {
		t.Fatalf("good config: %v\n%s", err, out)
	}
	badOpt := filepath.Join(dir, "badopt.yaml")
	os.WriteFile(badOpt, []byte("routes:\n  - {path: /, handler: static, options: {dealy: 1s}}\n"), 0o644)
	out, err = exec.Command(bin, "--check-config", "-c", badOpt).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "dealy") || !strings.Contains(string(out), "routes[0]") || !strings.Contains(string(out), "badopt.yaml") {
		t.Fatalf("bad option: %v\n%s", err, out)
	}
}
