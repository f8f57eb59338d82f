package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	for _, backend := range []string{"epoll", "io_uring"} {
		t.Run(backend, func(t *testing.T) {
			addr := freePort(t)
			p := run(t, fmt.Sprintf(`
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
			if !strings.Contains(p.log(), "backend="+backend) {
				t.Errorf("ready line does not name backend %s:\n%s", backend, p.log())
			}
			p.signal(syscall.SIGTERM)
			p.exited()
		})
	}
}

func TestCheckConfigMisspelledKey(t *testing.T) {
	bin := asyncdBinary(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	os.WriteFile(p, []byte("bind: [\"127.0.0.1:0\"]\nworker_clas: sync\n"), 0o644)
	out, err := execOutput(bin, "--check-config", "-c", p)
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1; output:\n%s", err, out)
	}
	if !strings.Contains(out, "worker_clas") || !strings.Contains(out, "bad.yaml") {
		t.Fatalf("message does not name the key and the file:\n%s", out)
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("bind: [\"127.0.0.1:0\"]\nworker_class: gevent\nroutes:\n  - {path: /, handler: static}\n"), 0o644)
	if out, err := execOutput(bin, "--check-config", "-c", good); err != nil {
		t.Fatalf("good config: %v\n%s", err, out)
	}
	badOpt := filepath.Join(dir, "badopt.yaml")
	os.WriteFile(badOpt, []byte("routes:\n  - {path: /, handler: static, options: {dealy: 1s}}\n"), 0o644)
	out, err = execOutput(bin, "--check-config", "-c", badOpt)
	if err == nil || !strings.Contains(out, "dealy") || !strings.Contains(out, "routes[0]") || !strings.Contains(out, "badopt.yaml") {
		t.Fatalf("bad option: %v\n%s", err, out)
	}
}
