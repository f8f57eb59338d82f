package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/testbin"
)

// The soak's knobs: test knobs, not asyncd settings (testbin).
const (
	soakVar        = "ASYNCDTEST_SOAK"              // 1: run TestSoakReloads
	soakDuration   = "ASYNCDTEST_SOAK_DURATION"     // per backend; default 5m
	soakReloadEach = "ASYNCDTEST_SOAK_RELOAD_EVERY" // default 30s
)

const mib = 1 << 20

// soakBinary is the asyncd binary the soak runs: with the race detector
// when the tests have it, so that the short run in make test checks the
// real serving and supervisor processes for races too, and without it
// otherwise, so that make soak measures the memory of the binary users
// run.
func soakBinary(t *testing.T) string {
	t.Helper()
	return testbin.Binary(t, testbin.Build{Race: testbin.Race})
}

// soakOptions shape one run.
type soakOptions struct {
	duration    time.Duration
	reloadEvery time.Duration
	clients     int
	sampleEvery time.Duration
	checkMemory bool // long runs only: a few seconds say nothing about trends
}

// TestSoakReloads is the long run (make soak): the real binary under
// sustained load at high concurrency, reloaded with SIGHUP periodically,
// on every backend. It must show no client error and flat memory. Set
// ASYNCDTEST_SOAK_DURATION (default 5m per backend) and
// ASYNCDTEST_SOAK_RELOAD_EVERY (default 30s) to change its shape.
func TestSoakReloads(t *testing.T) {
	if os.Getenv(soakVar) != "1" {
		t.Skip("the soak runs only with " + soakVar + "=1 (make soak); TestReloadUnderLoad runs a short version of it in make test")
	}
	o := soakOptions{duration: 5 * time.Minute, reloadEvery: 30 * time.Second, clients: 64, sampleEvery: time.Second, checkMemory: true}
	if v := os.Getenv(soakDuration); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %v", soakDuration, err)
		}
		o.duration = d
	}
	if v := os.Getenv(soakReloadEach); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %v", soakReloadEach, err)
		}
		o.reloadEvery = d
	}
	for _, b := range backends() {
		t.Run(b, func(t *testing.T) { runSoak(t, b, o) })
	}
}

// TestReloadUnderLoad is the soak's short version, run by make test so that
// its code path is always exercised: a few seconds of load with a SIGHUP
// reload every 1.2 seconds, and not one client error.
func TestReloadUnderLoad(t *testing.T) {
	o := soakOptions{duration: 4 * time.Second, reloadEvery: 1200 * time.Millisecond, clients: 16, sampleEvery: 200 * time.Millisecond}
	for _, b := range backends() {
		t.Run(b, func(t *testing.T) { runSoak(t, b, o) })
	}
}

// sample is one memory reading.
type sample struct {
	at       time.Duration
	supRSS   int64
	servPID  int
	servRSS  int64
	servings int // serving processes alive (more than one while one drains)
}

func runSoak(t *testing.T, backend string, o soakOptions) {
	bin := soakBinary(t)
	addr := freePort(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "asyncd.yaml")
	cfg := fmt.Sprintf(`bind: ["%s"]
workers: 2
backend: %s
worker_class: sync
keepalive: 5s
graceful_timeout: 10s
loglevel: info
routes:
  - {path: /, handler: static, methods: [GET], options: {body: "Hello, World!", content_type: text/plain}}
  - {path: /echo/, handler: echo}
`, addr, backend)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	asyncd := testbin.Start(t, bin, testbin.Options{Args: []string{"-c", cfgPath}})
	// A failure stops the test here: testbin stops asyncd and shows its
	// log.
	asyncd.WaitLog(regexp.MustCompile("serving process ready"), 1, 30*time.Second)
	cmd := asyncd.Cmd
	logs := asyncd.Stderr
	sup := cmd.Process.Pid
	firstServ := newestChild(sup)
	if firstServ == 0 {
		t.Fatal("no serving process under the supervisor")
	}

	// Load: clients on keep-alive connections, GETs and POSTs checked
	// byte for byte. POSTs carry an Idempotency-Key so that net/http may
	// retry them like GETs when a reload closes an idle connection just
	// as a request goes out (RFC 9110 §9.2.2: the race every HTTP/1.1
	// client handles); a request the server accepted and dropped still
	// fails.
	tr := &http.Transport{MaxIdleConnsPerHost: o.clients, MaxConnsPerHost: o.clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	var requests, failures atomic.Int64
	var errMu sync.Mutex
	var firstErrs []string
	fail := func(err error) {
		failures.Add(1)
		errMu.Lock()
		if len(firstErrs) < 10 {
			firstErrs = append(firstErrs, err.Error())
		}
		errMu.Unlock()
	}
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < o.clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				if err := soakRequest(client, addr, w, i); err != nil {
					fail(err)
				}
				requests.Add(1)
			}
		}()
	}

	// Reloads and samples.
	began := time.Now()
	var samples []sample
	servPIDs := map[int]bool{firstServ: true}
	reloads := 0
	nextReload := began.Add(o.reloadEvery)
	tick := time.NewTicker(o.sampleEvery)
	for time.Since(began) < o.duration {
		<-tick.C
		now := time.Now()
		if now.After(nextReload) {
			if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatalf("SIGHUP: %v", err)
			}
			reloads++
			nextReload = now.Add(o.reloadEvery)
		}
		supRSS, err := procRSS(sup)
		if err != nil {
			t.Fatalf("supervisor gone: %v\n%s", err, tailLines(logs.String(), 40))
		}
		s := sample{at: now.Sub(began), supRSS: supRSS}
		kids := children(sup)
		s.servings = len(kids)
		if p := newestChild(sup); p != 0 {
			s.servPID = p
			s.servRSS, _ = procRSS(p)
			servPIDs[p] = true
		}
		samples = append(samples, s)
	}
	tick.Stop()
	close(stopLoad)
	wg.Wait()
	took := time.Since(began)

	// A last reload must still take effect: the serving process changes.
	last := newestChild(sup)
	cmd.Process.Signal(syscall.SIGHUP) //nolint:errcheck
	reloads++
	if !poll(30*time.Second, func() bool { p := newestChild(sup); return p != 0 && p != last && isReady(logs.String(), reloads+1) }) {
		t.Errorf("the serving process did not change after the last SIGHUP (pid %d)", last)
	}
	servPIDs[newestChild(sup)] = true

	cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	select {
	case <-asyncd.Done():
		if err := asyncd.Err(); err != nil {
			t.Errorf("asyncd exit after SIGTERM: %v\n%s", err, tailLines(logs.String(), 40))
		}
	case <-time.After(30 * time.Second):
		t.Errorf("asyncd did not exit within 30s of SIGTERM")
	}

	n, f := requests.Load(), failures.Load()
	t.Logf("%s: %d requests from %d clients in %v (%.0f/s), %d SIGHUP reloads, %d serving processes, %d failures",
		backend, n, o.clients, took.Round(time.Millisecond), float64(n)/took.Seconds(), reloads, len(servPIDs), f)
	if f > 0 {
		t.Errorf("%d of %d requests failed across reloads; first: %s", f, n, strings.Join(firstErrs, "; "))
	}
	if n == 0 {
		t.Error("no request completed")
	}
	if len(servPIDs) < reloads {
		t.Errorf("%d reloads but only %d serving processes seen", reloads, len(servPIDs))
	}
	if strings.Contains(logs.String(), "panic") || strings.Contains(logs.String(), "DATA RACE") {
		t.Errorf("asyncd log shows a panic or a race:\n%s", tailLines(logs.String(), 80))
	}
	reportMemory(t, samples, o)
}

// soakRequest makes one checked request: mostly GETs, every fifth a POST
// echoed back.
func soakRequest(client *http.Client, addr string, w, i int) error {
	if i%5 == 4 {
		body := fmt.Sprintf("client %d request %d", w, i)
		req, err := http.NewRequest("POST", fmt.Sprintf("http://%s/echo/%d/%d", addr, w, i), strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Idempotency-Key", fmt.Sprintf("%d-%d", w, i))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("POST body: %w", err)
		}
		if resp.StatusCode != 200 || !bytes.Contains(got, []byte(strconv.Quote(body))) {
			return fmt.Errorf("POST /echo/: %d %.200q", resp.StatusCode, got)
		}
		return nil
	}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		return err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("GET body: %w", err)
	}
	if resp.StatusCode != 200 || string(got) != "Hello, World!" {
		return fmt.Errorf("GET /: %d %q", resp.StatusCode, got)
	}
	return nil
}

// reportMemory logs the RSS trends and, for long runs, checks they are
// flat: the supervisor's over the whole run, and the serving processes'
// from one generation to the next (each generation's RSS when it is
// replaced).
func reportMemory(t *testing.T, samples []sample, o soakOptions) {
	if len(samples) < 4 {
		t.Logf("too few memory samples (%d) for a trend", len(samples))
		return
	}
	// Skip the first fifth: start-up and the heap reaching its working size.
	warm := samples[len(samples)/5:]
	var xs, ys []float64
	for _, s := range warm {
		xs = append(xs, s.at.Minutes())
		ys = append(ys, float64(s.supRSS))
	}
	supSlope := slope(xs, ys)
	// Per generation: its last RSS reading, in order of appearance.
	type gen struct {
		pid       int
		first     time.Duration
		last      time.Duration
		endRSS    int64
		rss0      int64
		readings  int
		xs, ys    []float64
		maxServes int
	}
	var gens []*gen
	byPID := map[int]*gen{}
	for _, s := range samples {
		if s.servPID == 0 || s.servRSS == 0 {
			continue
		}
		g := byPID[s.servPID]
		if g == nil {
			g = &gen{pid: s.servPID, first: s.at, rss0: s.servRSS}
			byPID[s.servPID] = g
			gens = append(gens, g)
		}
		g.last, g.endRSS = s.at, s.servRSS
		g.readings++
		g.xs = append(g.xs, s.at.Minutes())
		g.ys = append(g.ys, float64(s.servRSS))
		g.maxServes = max(g.maxServes, s.servings)
	}
	var gx, gy []float64
	var b strings.Builder
	worstWithin := 0.0
	for i, g := range gens {
		within := 0.0
		if len(g.xs) >= 4 {
			// Within a generation, after its first quarter.
			k := len(g.xs) / 4
			within = slope(g.xs[k:], g.ys[k:])
		}
		if g.last-g.first >= o.reloadEvery/2 {
			gx = append(gx, float64(i))
			gy = append(gy, float64(g.endRSS))
			worstWithin = max(worstWithin, within)
		}
		fmt.Fprintf(&b, "  generation %d (pid %d): RSS %.1f -> %.1f MiB over %v, %+.2f MiB/min\n",
			i+1, g.pid, float64(g.rss0)/mib, float64(g.endRSS)/mib, (g.last - g.first).Round(time.Second), within/mib)
	}
	perGen := 0.0
	if len(gx) >= 2 {
		perGen = slope(gx, gy)
	}
	first, last := warm[0], warm[len(warm)-1]
	t.Logf("memory: supervisor RSS %.1f -> %.1f MiB, slope %+.3f MiB/min; serving processes: %+.2f MiB per generation, worst in-generation slope %+.2f MiB/min\n%s",
		float64(first.supRSS)/mib, float64(last.supRSS)/mib, supSlope/mib, perGen/mib, worstWithin/mib, b.String())
	if !o.checkMemory {
		return
	}
	// Bounds: generous, because RSS moves in steps as the Go heap grows
	// and the runtime returns memory lazily (every few minutes), yet far
	// below what a per-request or per-reload leak produces over a run of
	// minutes at thousands of requests a second.
	runMin := o.duration.Minutes()
	if growth := supSlope * runMin; growth > 16*mib {
		t.Errorf("supervisor RSS grows %.2f MiB/min (%.1f MiB over the run): not flat", supSlope/mib, growth/mib)
	}
	if growth := perGen * float64(len(gx)); growth > 64*mib {
		t.Errorf("each new serving process ends %.2f MiB larger than the one before (%.1f MiB over %d generations): not flat",
			perGen/mib, growth/mib, len(gx))
	}
	if growth := worstWithin * o.reloadEvery.Minutes(); growth > 64*mib {
		t.Errorf("a serving process grew %.2f MiB/min under steady load (%.1f MiB over its life): not flat", worstWithin/mib, growth/mib)
	}
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if math.Abs(d) < 1e-12 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// children lists the processes whose parent is pid, oldest first.
func children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	type kid struct {
		pid   int
		start uint64
	}
	var kids []kid
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 20 || f[0] == "Z" {
			continue
		}
		if pp, _ := strconv.Atoi(f[1]); pp != pid {
			continue
		}
		start, _ := strconv.ParseUint(f[19], 10, 64)
		kids = append(kids, kid{p, start})
	}
	sort.Slice(kids, func(i, j int) bool {
		return kids[i].start < kids[j].start || kids[i].start == kids[j].start && kids[i].pid < kids[j].pid
	})
	out := make([]int, len(kids))
	for i, k := range kids {
		out[i] = k.pid
	}
	return out
}

// newestChild is the most recently started child of pid (the serving
// process of the newest generation), or 0.
func newestChild(pid int) int {
	k := children(pid)
	if len(k) == 0 {
		return 0
	}
	return k[len(k)-1]
}

// isReady reports whether the log shows at least n "serving process ready"
// lines.
func isReady(log string, n int) bool { return strings.Count(log, "serving process ready") >= n }

// procRSS returns the resident set size of process pid in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/statm: %w", pid, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("unexpected /proc/%d/statm: %q", pid, b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/statm: %q", pid, b)
	}
	return pages * int64(os.Getpagesize()), nil
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
