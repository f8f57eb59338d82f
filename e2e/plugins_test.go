package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestHealthWhileBusyAndDraining: readiness answers while every async
// worker slot is taken, and turns 503 as soon as the process drains
// (SIGTERM with shutdown_delay), while liveness stays 200.
func TestHealthWhileBusyAndDraining(t *testing.T) {
	addr, maddr := freePort(t), freePort(t)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
workers: 1
worker_class: async
worker_connections: 1
shutdown_delay: 120s
graceful_timeout: 2s
metrics_bind: "%s"
routes:
  - {path: /readyz, handler: health}
  - {path: /healthz, handler: health, options: {check: live}}
  - {path: /slow, handler: static, options: {delay: 120s, body: late}}
`, addr, maddr))
	murl := "http://" + maddr + "/metrics"
	if r := httpGet(t, "http://"+addr+"/readyz"); r.status != 200 || r.body != "ok\n" {
		t.Fatalf("readyz before: %d %q", r.status, r.body)
	}
	// Take the loop's only off-loop slot.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n") //nolint:errcheck
	eventually(t, "the slow request in flight", func() bool {
		return scrape(t, murl)[`asyncd_http_requests_in_flight`] == 1
	})
	if r := httpGet(t, "http://"+addr+"/readyz"); r.status != 200 {
		t.Fatalf("readyz while the workers are busy: %d", r.status)
	}

	p.signal(syscall.SIGTERM)
	eventually(t, "readyz 503 during shutdown_delay", func() bool {
		return httpGet(t, "http://"+addr+"/readyz").status == 503
	})
	if r := httpGet(t, "http://"+addr+"/readyz"); r.body != "unavailable\n" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("readyz draining: %q %q", r.body, r.header.Get("Cache-Control"))
	}
	if r := httpGet(t, "http://"+addr+"/healthz"); r.status != 200 {
		t.Errorf("healthz draining: %d, want 200", r.status)
	}
	if got := scrape(t, murl)[`asyncd_ready`]; got != 0 {
		t.Errorf("asyncd_ready draining = %v, want 0", got)
	}
	// A second SIGTERM ends shutdown_delay; graceful_timeout then ends
	// the slow request.
	p.signal(syscall.SIGTERM)
	p.exited()
}

// TestPluginsInBinary loads health, metrics, proxy and files in the real
// binary: the proxy replaces a spoofed X-Forwarded-For from an untrusted
// peer, and the files plugin refuses every traversal.
func TestPluginsInBinary(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "path=%s xff=%s host=%s", r.URL.Path, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"))
	}))
	defer upstream.Close()
	base := t.TempDir()
	www := filepath.Join(base, "www")
	os.Mkdir(www, 0o755)                                                            //nolint:errcheck
	os.WriteFile(filepath.Join(www, "index.html"), []byte("<h1>index</h1>"), 0o644) //nolint:errcheck
	os.WriteFile(filepath.Join(www, "a.txt"), []byte("file a"), 0o644)              //nolint:errcheck
	os.WriteFile(filepath.Join(base, "secret.txt"), []byte("TOPSECRET"), 0o644)     //nolint:errcheck
	os.Symlink("../secret.txt", filepath.Join(www, "link.txt"))                     //nolint:errcheck
	addr := freePort(t)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
forwarded_allow_ips: ["10.1.2.3"]
accesslog: "@DIR@/access.log"
access_log_format: '%%(h)s %%(s)s %%(r)s'
routes:
  - {path: /healthz, handler: health, options: {check: live}}
  - {path: /readyz, handler: health}
  - {path: /metrics, handler: metrics}
  - {path: /api/, handler: proxy, options: {upstream: "%s", strip_prefix: true}}
  - {path: /static/, handler: files, options: {root: "%s"}}
`, addr, upstream.URL, www))
	url := "http://" + addr
	if r := httpGet(t, url+"/healthz"); r.status != 200 || r.body != "ok\n" {
		t.Errorf("healthz: %d %q", r.status, r.body)
	}
	if r := httpGet(t, url+"/readyz"); r.status != 200 {
		t.Errorf("readyz: %d", r.status)
	}
	scrape(t, url+"/metrics")

	// 127.0.0.1 is not in forwarded_allow_ips: its X-Forwarded-For is a
	// spoof, and both the upstream and the access log see 127.0.0.1.
	r := httpGet(t, url+"/api/users", "X-Forwarded-For", "6.6.6.6")
	if want := "path=/users xff=127.0.0.1 host=" + addr; r.status != 200 || r.body != want {
		t.Errorf("proxy: %d %q, want %q", r.status, r.body, want)
	}
	// Lines of different loops may come out of order: look for it.
	log := lines(t, filepath.Join(p.dir, "access.log"), 4)
	if !slices.Contains(log, "127.0.0.1 200 GET /api/users HTTP/1.1") {
		t.Errorf("access log has no line for the proxied request from 127.0.0.1:\n%s", strings.Join(log, "\n"))
	}

	if r := httpGet(t, url+"/static/"); r.status != 200 || r.body != "<h1>index</h1>" {
		t.Errorf("static index: %d %q", r.status, r.body)
	}
	if r := httpGet(t, url+"/static/a.txt"); r.status != 200 || r.body != "file a" {
		t.Errorf("static file: %d %q", r.status, r.body)
	}
	for _, target := range []string{
		"/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt", "/static/%2e%2e%2fsecret.txt",
		"/static/..%5csecret.txt", "/static/.%2e/secret.txt", "/static/a.txt/../../secret.txt",
		"/static/%2E%2E/secret.txt", "/static/..%00/secret.txt", "/static/link.txt", "/static//../secret.txt",
	} {
		r := exchange(t, "", addr, "GET "+target+" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		if (r.status != 400 && r.status != 404) || strings.Contains(r.body, "TOPSECRET") {
			t.Errorf("GET %s: %d %q, want 400 or 404", target, r.status, r.body)
		}
	}
}
