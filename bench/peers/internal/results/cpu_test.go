package results

import (
	"math"
	"strings"
	"testing"
)

// cpuRaw is a run with CPU records: the C server, both asyncd backends and
// nginx on plaintext (three runs for epoll), delay with its load alongside,
// and idle memory for nginx and both backends.
const cpuRaw = `
{"kind":"meta","meta":{"runs":3}}
{"kind":"wrk","server":"c-epoll","scenario":"plaintext","run":1,"wrk":{"requests":1000,"rps":100},"cpu":{"ticks":50,"clk_tck":100,"cpu_us":500000,"procs":1}}
{"kind":"wrk","server":"asyncd-epoll-sync","scenario":"plaintext","run":1,"wrk":{"requests":1000,"rps":100},"cpu":{"ticks":60,"clk_tck":100,"cpu_us":600000,"procs":2}}
{"kind":"wrk","server":"asyncd-epoll-sync","scenario":"plaintext","run":2,"wrk":{"requests":2000,"rps":200},"cpu":{"ticks":100,"clk_tck":100,"cpu_us":1000000,"procs":2}}
{"kind":"wrk","server":"asyncd-epoll-sync","scenario":"plaintext","run":3,"wrk":{"requests":1000,"rps":90},"cpu":{"ticks":70,"clk_tck":100,"cpu_us":700000,"procs":2}}
{"kind":"wrk","server":"asyncd-uring-sync","scenario":"plaintext","run":1,"wrk":{"requests":1000,"rps":80},"cpu":{"ticks":50,"clk_tck":100,"cpu_us":500000,"procs":2}}
{"kind":"wrk","server":"nginx","scenario":"plaintext","run":1,"wrk":{"requests":500,"rps":50}}
{"kind":"wrk","server":"asyncd-epoll-sync","scenario":"churn","run":1,"wrk":{"requests":0,"rps":0},"cpu":{"ticks":5,"clk_tck":100,"cpu_us":50000,"procs":2}}
{"kind":"wrk","server":"asyncd-epoll-async","scenario":"delay","run":1,"wrk":{"requests":3000,"rps":300},"cpu":{"ticks":40,"clk_tck":100,"cpu_us":400000,"procs":2}}
{"kind":"wrk","server":"asyncd-epoll-async","scenario":"delay-plaintext","run":1,"wrk":{"requests":1000,"rps":100}}
{"kind":"idle","server":"nginx","idle":{"conns":10000,"bytes_per_conn":500}}
{"kind":"idle","server":"asyncd-epoll-sync","idle":{"conns":10000,"bytes_per_conn":450}}
{"kind":"idle","server":"asyncd-uring-sync","idle":{"conns":10000,"bytes_per_conn":700}}
`

func cpuSummary(t *testing.T) Summary {
	t.Helper()
	recs, err := Read(strings.NewReader(cpuRaw))
	if err != nil {
		t.Fatal(err)
	}
	return Summarize(recs)
}

func TestCPUPerRequest(t *testing.T) {
	s := cpuSummary(t)
	tests := []struct {
		scenario, server string
		wantCPU          float64 // µs per request
		wantCPUVsC       float64
		wantRPSVsC       float64
	}{
		{"plaintext", "c-epoll", 500, 1, 1},
		// Runs give 600, 500 and 700 µs/req: the median is 600, not the
		// total over the total (2,300,000 / 4,000 = 575).
		{"plaintext", "asyncd-epoll-sync", 600, 1.2, 1},
		{"plaintext", "asyncd-uring-sync", 500, 1, 0.8},
		// No CPU record: no CPU figure, but still a requests/s ratio.
		{"plaintext", "nginx", 0, 0, 0.5},
		// No request served: no figure rather than infinity.
		{"churn", "asyncd-epoll-sync", 0, 0, 0},
		// The load alongside delay ran on the same server during the
		// measurement: 400,000 µs over 3,000 + 1,000 requests.
		{"delay", "asyncd-epoll-async", 100, 0, 0},
		{"delay-plaintext", "asyncd-epoll-async", 0, 0, 0},
	}
	for _, tt := range tests {
		r, ok := s.rowFor(tt.scenario, tt.server)
		if !ok {
			t.Errorf("%s/%s: no row", tt.scenario, tt.server)
			continue
		}
		if math.Abs(r.CPUUSPerReq-tt.wantCPU) > 1e-9 || math.Abs(r.CPUVsC-tt.wantCPUVsC) > 1e-9 || math.Abs(r.RPSVsC-tt.wantRPSVsC) > 1e-9 {
			t.Errorf("%s/%s: cpu %v µs/req (vs C %v), rps vs C %v; want %v (%v), %v", tt.scenario, tt.server,
				r.CPUUSPerReq, r.CPUVsC, r.RPSVsC, tt.wantCPU, tt.wantCPUVsC, tt.wantRPSVsC)
		}
	}
}

func TestCPUTargets(t *testing.T) {
	s := cpuSummary(t)
	want := map[string]string{
		"plaintext CPU/req: asyncd epoll vs C server":        "missed", // 600 / 500 = 1.20
		"plaintext CPU/req: asyncd io_uring vs C server":     "met",    // 1.00
		"plaintext CPU/req: io_uring vs epoll":               "met",    // 500 / 600
		"pipeline CPU/req: asyncd epoll vs C server":         "n/a",
		"churn CPU/req: io_uring vs epoll":                   "n/a", // epoll served nothing
		"idle memory/conn: asyncd (epoll, sync) vs nginx":    "met",
		"idle memory/conn: asyncd (io_uring, sync) vs nginx": "missed",
	}
	seen := 0
	for _, tg := range s.Targets {
		w, ok := want[tg.Name]
		if !ok {
			continue
		}
		seen++
		if tg.Status != w {
			t.Errorf("%s: %s (%s), want %s", tg.Name, tg.Status, tg.Got, w)
		}
	}
	if seen != len(want) {
		t.Fatalf("found %d of the %d targets in %+v", seen, len(want), s.Targets)
	}
}

func TestCPUMarkdownAndCSV(t *testing.T) {
	s := cpuSummary(t)
	var md, csv strings.Builder
	if err := WriteMarkdown(&md, s, MarkdownOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(&csv, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| plaintext | C epoll (raw) | 100 | 0 µs | 0 µs | 500.00 | 0 | 1.00x | 1.00x | 1.00x |",
		"| plaintext | asyncd (epoll, sync) | 100 | 0 µs | 0 µs | 600.00 | 0 | 1.00x | 1.20x | 1.00x |",
		"| plaintext | nginx | 50 | 0 µs | 0 µs | - | 0 | 0.50x | - | 0.50x |",
		"| plaintext CPU/req: asyncd epoll vs C server | <= 1.10x | 1.20x (600.00 vs 500.00 µs/req) | missed |",
		"| idle memory/conn: asyncd (io_uring, sync) vs nginx | <= nginx | 700 vs 500 B/conn | missed |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q\n%s", want, md.String())
		}
	}
	if !strings.Contains(csv.String(), "plaintext,asyncd-epoll-sync,\"asyncd (epoll, sync)\",3,100.00,0,0,0,1.0000,asyncd-epoll-sync,0,,600.000,1.2000,1.0000") {
		t.Errorf("csv:\n%s", csv.String())
	}
}
