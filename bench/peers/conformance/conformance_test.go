package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/bench/peers/internal/probe"
	"github.com/asyncd/asyncd/bench/peers/internal/results"
)

// benchDir is bench/, two levels above this package.
func benchDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// buildOnce maps a cmd name to its *builtBin.
var buildOnce sync.Map

type builtBin struct {
	once sync.Once
	path string
	err  error
}

// build compiles bench/peers/cmd/name into binDir once per test binary.
func build(t *testing.T, name string, flags ...string) string {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(name, &builtBin{})
	b := v.(*builtBin)
	b.once.Do(func() {
		b.path = filepath.Join(binDir, name)
		args := append([]string{"build"}, flags...)
		args = append(args, "-o", b.path, "./cmd/"+name)
		cmd := exec.Command("go", args...)
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build ./cmd/%s: %v\n%s", name, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs argv in its own process group and stops the group at cleanup.
func start(t *testing.T, argv []string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	// ASYNCD_* variables are settings to asyncd; ASYNCD_BIN, which this
	// test reads, would be refused as an unknown one.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ASYNCD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("server output:\n%s", out.String())
		}
	})
	return cmd
}

// peer is one server under benchmark and the scenarios it serves.
type peer struct {
	name      string
	scenarios []string
	// argv returns the command serving on addr; skip is set when the
	// server cannot run here (reason given).
	argv func(t *testing.T, addr string) (argv []string, skip string)
}

// fast are the scenarios of bench/run.sh's FAST_SCENARIOS; the delay
// servers also answer the plaintext load run alongside delay. plain are
// its PLAIN_SCENARIOS, those of the C server and h2o.
var (
	fast  = []string{"plaintext", "pipeline", "json", "post", "churn", "conns1k"}
	plain = []string{"plaintext", "pipeline", "churn", "conns1k"}
)

func goPeer(cmd string, flags ...string) func(t *testing.T, addr string) ([]string, string) {
	return func(t *testing.T, addr string) ([]string, string) {
		return []string{build(t, cmd, flags...), "-addr", addr}, ""
	}
}

func peers() []peer {
	withDelay := append(append([]string{}, fast...), "delay", "delay-plaintext")
	return []peer{
		{"nethttp", withDelay, goPeer("nethttp")},
		{"fasthttp", withDelay, goPeer("fasthttp")},
		{"hertz", withDelay, goPeer("hertz")},
		{"nbio", withDelay, goPeer("nbio")},
		{"gnet-raw", fast, goPeer("gnet")},
		{"gain-raw", fast, func(t *testing.T, addr string) ([]string, string) {
			if b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled"); err == nil && strings.TrimSpace(string(b)) != "0" {
				return nil, "io_uring is disabled on this kernel"
			}
			return goPeer("gain", "-ldflags=-checklinkname=0")(t, addr)
		}},
		asyncdPeer("asyncd-epoll-sync", fast, "sync", "epoll"),
		asyncdPeer("asyncd-uring-sync", fast, "sync", "io_uring"),
		asyncdPeer("asyncd-epoll-async", []string{"delay", "delay-plaintext"}, "async", "epoll"),
		asyncdPeer("asyncd-uring-async", []string{"delay", "delay-plaintext"}, "async", "io_uring"),
		{"nginx", fast, func(t *testing.T, addr string) ([]string, string) {
			nginx, err := exec.LookPath("nginx")
			if err != nil {
				if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
					return nil, "nginx is not installed (bench/run.sh installs nginx-light)"
				}
				nginx = "/usr/sbin/nginx"
			}
			prefix := t.TempDir()
			tmpl, err := os.ReadFile(filepath.Join(benchDir(t), "nginx", "nginx.conf.tmpl"))
			if err != nil {
				t.Fatal(err)
			}
			conf := strings.NewReplacer("@PREFIX@", prefix, "@WORKERS@", "1", "@ADDR@", addr).Replace(string(tmpl))
			if err := os.WriteFile(filepath.Join(prefix, "nginx.conf"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{nginx, "-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"), "-e", filepath.Join(prefix, "error.log")}, ""
		}},
		{"c-epoll", plain, func(t *testing.T, addr string) ([]string, string) {
			if _, err := exec.LookPath("gcc"); err != nil {
				return nil, "gcc is not installed (bench/run.sh installs it)"
			}
			bin := filepath.Join(t.TempDir(), "cepoll")
			src := filepath.Join(benchDir(t), "peers", "cepoll", "cepoll.c")
			if out, err := exec.Command("gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", bin, src, "-lpthread").CombinedOutput(); err != nil {
				t.Fatalf("gcc %s: %v\n%s", src, err, out)
			}
			return []string{bin, "-addr", addr, "-t", "1"}, ""
		}},
		{"h2o", plain, func(t *testing.T, addr string) ([]string, string) {
			h2o, err := exec.LookPath("h2o")
			if err != nil {
				return nil, "h2o is not installed (bench/run.sh installs it)"
			}
			prefix := t.TempDir()
			tmpl, err := os.ReadFile(filepath.Join(benchDir(t), "h2o", "h2o.conf.tmpl"))
			if err != nil {
				t.Fatal(err)
			}
			host, port, _ := strings.Cut(addr, ":")
			user := ""
			if os.Getuid() == 0 {
				user = "user: root"
			}
			conf := strings.NewReplacer("@PREFIX@", prefix, "@THREADS@", "1", "@HOST@", host, "@PORT@", port, "@USER_LINE@", user).Replace(string(tmpl))
			if err := os.WriteFile(filepath.Join(prefix, "h2o.conf"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{h2o, "-c", filepath.Join(prefix, "h2o.conf")}, ""
		}},
		{"gunicorn-gevent", withDelay, func(t *testing.T, addr string) ([]string, string) {
			g, err := exec.LookPath("gunicorn")
			if err != nil {
				return nil, "gunicorn is not installed (bench/run.sh installs gunicorn, python3-gevent)"
			}
			if err := exec.Command("/usr/bin/python3", "-c", "import gevent").Run(); err != nil {
				return nil, "python3-gevent is not installed"
			}
			return []string{g, "-k", "gevent", "-w", "1", "-b", addr, "--chdir", filepath.Join(benchDir(t), "gunicorn"), "--log-level", "warning", "app:app"}, ""
		}},
	}
}

// asyncdPeer runs asyncd as bench/run.sh does, from $ASYNCD_BIN or the
// repository's bin/asyncd (built by the lead's `make build`).
func asyncdPeer(name string, scenarios []string, class, backend string) peer {
	return peer{name, scenarios, func(t *testing.T, addr string) ([]string, string) {
		bin := os.Getenv("ASYNCD_BIN")
		if bin == "" {
			bin = filepath.Join(benchDir(t), "..", "bin", "asyncd")
		}
		if _, err := os.Stat(bin); err != nil {
			return nil, "no asyncd binary (set ASYNCD_BIN or run `make build`): " + err.Error()
		}
		return []string{bin, "-c", filepath.Join(benchDir(t), "asyncd-bench.yaml"), "-w", "1", "-k", class, "--backend", backend, "-b", addr}, ""
	}}
}

// TestPeersAnswerLikeAsyncd starts every peer and checks each route of its
// scenarios, pipelining and Connection: close, as the runner does before
// measuring.
func TestPeersAnswerLikeAsyncd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts every peer; skipped with -short")
	}
	for _, p := range peers() {
		t.Run(p.name, func(t *testing.T) {
			addr := freeAddr(t)
			argv, skip := p.argv(t, addr)
			if skip != "" {
				t.Skip(skip)
			}
			cmd := start(t, argv)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var routes []probe.Route
			for _, sc := range p.scenarios {
				if sc == "pipeline" || sc == "churn" {
					continue
				}
				r, _ := probe.RouteFor(sc)
				if !slices.ContainsFunc(routes, func(x probe.Route) bool { return x.Name == r.Name }) {
					routes = append(routes, r)
				}
			}
			if err := probe.WaitReady(ctx, addr, routes[0]); err != nil {
				t.Fatalf("%s (pid %d) not ready: %v", p.name, cmd.Process.Pid, err)
			}
			if err := probe.Check(ctx, addr, routes); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(p.scenarios, "pipeline") {
				return
			}
			if err := probe.CheckPipelined(ctx, addr, probe.Routes["plaintext"], 16); err != nil {
				t.Fatal(err)
			}
			if err := probe.CheckClose(ctx, addr, probe.Routes["plaintext"]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWrkScripts runs every scenario script for a moment against the
// net/http peer and checks the reporting hook's line parses into a result
// with requests and no errors.
func TestWrkScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wrk; skipped with -short")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed (bench/run.sh installs it)")
	}
	addr := freeAddr(t)
	start(t, []string{build(t, "nethttp"), "-addr", addr})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := probe.WaitReady(ctx, addr, probe.Routes["plaintext"]); err != nil {
		t.Fatal(err)
	}
	scripts := filepath.Join(benchDir(t), "wrk")
	tests := []struct {
		script  string
		path    string
		args    []string
		minReqs int64 // the delay route answers at most conns per 100 ms
	}{
		{"plaintext.lua", "/plaintext", nil, 10},
		{"pipeline.lua", "/plaintext", []string{"--", "16"}, 16},
		{"json.lua", "/json", nil, 10},
		{"post.lua", "/post", nil, 10},
		{"churn.lua", "/plaintext", nil, 10},
		{"delay.lua", "/delay", nil, 4},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			// Run from another directory: scripts find report.lua themselves.
			args := append([]string{"-t", "1", "-c", "4", "-d", "1s", "-s", filepath.Join(scripts, tt.script), "http://" + addr + tt.path}, tt.args...)
			cmd := exec.Command(wrk, args...)
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("wrk: %v\n%s", err, out)
			}
			var line string
			for _, l := range strings.Split(string(out), "\n") {
				if rest, ok := strings.CutPrefix(l, "WRKRESULT "); ok {
					line = rest
				}
			}
			if line == "" {
				t.Fatalf("no WRKRESULT line:\n%s", out)
			}
			var w results.Wrk
			if err := json.Unmarshal([]byte(line), &w); err != nil {
				t.Fatalf("WRKRESULT does not parse: %v\n%s", err, line)
			}
			if w.Requests < tt.minReqs || w.RPS <= 0 || w.Errors() != 0 || w.P50US <= 0 || w.P99US < w.P50US || w.MaxUS < w.P99US {
				t.Fatalf("implausible result %+v", w)
			}
			if tt.script == "delay.lua" && w.P50US < 90000 {
				t.Fatalf("delay p50 %d µs, want about 100 ms", w.P50US)
			}
		})
	}
}

// binDir holds the peers built for this test binary, shared by the tests.
var binDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "bench-peers-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = d
	code := m.Run()
	_ = os.RemoveAll(d)
	os.Exit(code)
}
