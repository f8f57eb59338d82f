package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetricsBindQueuedAcrossReload: a scrape that connects to
// metrics_bind while the serving process cannot run (stopped here; CPU
// starved or exiting in real life) is answered by the next generation.
// The supervisor owns the socket and every generation serves on it, so the
// connection waits in the one accept queue they share. When each process
// bound its own socket (SO_REUSEPORT, or a unix socket file replaced by
// the next one), the connection sat in the old process's queue and was
// reset when it closed that socket: the EOF TestMetricsScrape saw after a
// SIGHUP. The answer comes from the new generation once it serves (with
// its generation number), not before. On TCP and on a unix socket, which
// stays in place until the stop removes it.
func TestMetricsBindQueuedAcrossReload(t *testing.T) {
	for _, tc := range []struct{ name, bind string }{
		{"tcp", freePort(t)},
		{"unix", "unix:@DIR@/metrics.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := run(t, fmt.Sprintf(`
bind: ["%s"]
workers: 1
metrics_bind: "%s"
routes:
  - {path: /, handler: static, options: {body: "ok"}}
`, freePort(t), tc.bind))
			network, addr := "tcp", tc.bind
			if path, ok := strings.CutPrefix(tc.bind, "unix:"); ok {
				network, addr = "unix", strings.ReplaceAll(path, "@DIR@", p.dir)
			}
			old := p.servingPID(1)
			if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(old, syscall.SIGCONT) }) //nolint:errcheck
			eventually(t, "every thread of the old serving process stopped", func() bool { return stopped(old) })
			c, err := net.DialTimeout(network, addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			p.signal(syscall.SIGHUP)
			p.waitLog("asyncd ready", 2)
			c.SetReadDeadline(time.Now().Add(15 * time.Second)) //nolint:errcheck
			r, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("a scrape queued while the old generation could not run: %v", err)
			}
			body, err := io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				t.Fatalf("scrape body: %v", err)
			}
			if m := parseSamples(t, string(body)); r.StatusCode != 200 || m["asyncd_generation"] != 2 {
				t.Errorf("scrape: %d, asyncd_generation %v; want 200 from generation 2\n%s", r.StatusCode, m["asyncd_generation"], body)
			}
			if network != "unix" {
				return
			}
			syscall.Kill(old, syscall.SIGCONT) //nolint:errcheck
			p.signal(syscall.SIGTERM)
			p.exited()
			if _, err := os.Stat(addr); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the metrics_bind unix socket is left after the stop: %v", err)
			}
		})
	}
}

// TestMetricsBindMoves: a reload that changes metrics_bind serves the new
// address; the old one is closed once the old generation is gone.
func TestMetricsBindMoves(t *testing.T) {
	first, second := freePort(t), freePort(t)
	cfg := `
bind: ["%s"]
workers: 1
metrics_bind: "%s"
routes:
  - {path: /, handler: static, options: {body: "ok"}}
`
	addr := freePort(t)
	p := run(t, fmt.Sprintf(cfg, addr, first))
	scrape(t, "http://"+first+"/metrics")
	if err := os.WriteFile(filepath.Join(p.dir, "asyncd.yaml"), []byte(fmt.Sprintf(cfg, addr, second)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.waitLog("serving process exited", 1)
	if m := scrape(t, "http://"+second+"/metrics"); m["asyncd_generation"] != 2 {
		t.Errorf("the new metrics_bind: asyncd_generation %v, want 2", m["asyncd_generation"])
	}
	if c, err := net.DialTimeout("tcp", first, 5*time.Second); err == nil {
		c.Close()
		t.Errorf("the old metrics_bind %s still takes connections after the reload", first)
	}
}

// stopped reports whether every thread of process pid is stopped (state
// T): kill(SIGSTOP) returns before a thread running on another CPU stops.
func stopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		i := strings.LastIndexByte(string(b), ')')
		if err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// TestMetricsBindAcrossUpgrade: the supervisor owns metrics_bind as it
// owns bind's sockets, and a binary upgrade hands it over: the same unix
// socket (same file, never replaced) serves scrapes before, during and
// after, and the new supervisor removes it when it stops.
func TestMetricsBindAcrossUpgrade(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.Chmod(dir, 0o755) //nolint:errcheck
	bin := filepath.Join(dir, "asyncd")
	copyBinary(t, bin)
	s := startServer(t, baseConfig+"metrics_bind: unix:@DIR@/metrics.sock\n",
		options{argv: []string{bin, "-c", "asyncd.yaml"}})
	sock := filepath.Join(s.dir, "metrics.sock")
	before, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if code := scrapeUnix(t, sock); code != 200 {
		t.Fatalf("scrape before the upgrade: %d", code)
	}
	copyBinary(t, bin)
	s.signal(syscall.SIGUSR2)
	newPid := s.upgraded(1)
	if code := s.wait(20 * time.Second); code != 0 {
		t.Errorf("old supervisor exit code %d, want 0", code)
	}
	if code := scrapeUnix(t, sock); code != 200 {
		t.Errorf("scrape after the upgrade: %d", code)
	}
	if after, err := os.Stat(sock); err != nil || !os.SameFile(before, after) {
		t.Errorf("the metrics_bind socket was replaced by the upgrade (%v): the new supervisor did not inherit it", err)
	}
	if n := s.count(`serving processes bind metrics_bind themselves`); n != 0 {
		t.Errorf("the new supervisor did not get the metrics socket from the old one")
	}
	syscall.Kill(newPid, syscall.SIGTERM) //nolint:errcheck
	waitPid(t, newPid, 15*time.Second)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("metrics_bind socket left behind after the stop: %v", err)
	}
}

// scrapeUnix GETs /metrics on the unix socket at path and returns the
// status.
func scrapeUnix(t *testing.T, path string) int {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	r, err := client.Get("http://metrics/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", path, err)
	}
	io.Copy(io.Discard, r.Body) //nolint:errcheck
	r.Body.Close()
	return r.StatusCode
}
