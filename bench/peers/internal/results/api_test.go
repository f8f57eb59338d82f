package results

import (
	"strings"
	"testing"
)

// apiRaw: the api scenario at 100 connections, asyncd async over three runs
// and net/http over one, with peak RSS and PostgreSQL's CPU; api1k has
// net/http skipped.
const apiRaw = `
{"kind":"meta","meta":{"runs":3}}
{"kind":"wrk","server":"asyncd-epoll-async","scenario":"api","run":1,"wrk":{"requests":1000,"rps":120,"p99_us":900},"cpu":{"ticks":5,"clk_tck":100,"cpu_us":50000,"procs":2,"rss_peak":30000000,"also_cpu_us":40000},"extra":{"conns":100}}
{"kind":"wrk","server":"asyncd-epoll-async","scenario":"api","run":2,"wrk":{"requests":1000,"rps":110,"p99_us":800},"cpu":{"ticks":6,"clk_tck":100,"cpu_us":60000,"procs":2,"rss_peak":20000000,"also_cpu_us":50000},"extra":{"conns":100}}
{"kind":"wrk","server":"asyncd-epoll-async","scenario":"api","run":3,"wrk":{"requests":1000,"rps":130,"p99_us":1000},"cpu":{"ticks":4,"clk_tck":100,"cpu_us":40000,"procs":2,"rss_peak":25000000,"also_cpu_us":60000},"extra":{"conns":100}}
{"kind":"wrk","server":"nethttp","scenario":"api","run":1,"wrk":{"requests":1000,"rps":100,"p99_us":1000},"cpu":{"ticks":10,"clk_tck":100,"cpu_us":100000,"procs":1,"rss_peak":24000000,"also_cpu_us":45000},"extra":{"conns":100}}
{"kind":"wrk","server":"asyncd-epoll-async","scenario":"api1k","run":1,"wrk":{"requests":1000,"rps":100,"p99_us":1000},"cpu":{"ticks":5,"clk_tck":100,"cpu_us":50000,"procs":2,"rss_peak":30000000},"extra":{"conns":1000}}
{"kind":"skip","server":"nethttp","scenario":"api1k","reason":"did not start"}
`

func TestAPIFiguresAndTargets(t *testing.T) {
	recs, err := Read(strings.NewReader(apiRaw))
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(recs)
	a, ok := s.rowFor(ScenarioAPI, "asyncd-epoll-async")
	if !ok {
		t.Fatal("no api row for asyncd async")
	}
	// Medians over the runs, each figure on its own: RSS 25 MB of
	// {30, 20, 25}; PostgreSQL 50 µs/req of {40, 50, 60}; CPU 50 µs/req.
	if a.RSSPeak != 25000000 || a.DBCPUUSPerReq != 50 || a.CPUUSPerReq != 50 || a.Conns != 100 {
		t.Errorf("asyncd api row: RSS %d, db %.1f, cpu %.1f, conns %d; want 25000000, 50, 50, 100", a.RSSPeak, a.DBCPUUSPerReq, a.CPUUSPerReq, a.Conns)
	}
	want := map[string]string{
		"api (100 conns): asyncd async vs net/http req/s":       "met",    // 120 / 100 = 1.20
		"api (100 conns): asyncd async vs net/http CPU/req":     "met",    // 50 / 100
		"api (100 conns): asyncd async vs net/http p99":         "met",    // 900 / 1000
		"api (100 conns): asyncd async vs net/http peak RSS":    "missed", // 25 / 24 MB
		"api1k (1000 conns): asyncd async vs net/http req/s":    "n/a",    // net/http skipped
		"api1k (1000 conns): asyncd async vs net/http peak RSS": "n/a",
	}
	got := map[string]string{}
	for _, tg := range s.Targets {
		got[tg.Name] = tg.Status
	}
	for name, st := range want {
		if got[name] != st {
			t.Errorf("target %q: %q, want %q (targets: %v)", name, got[name], st, got)
		}
	}
	var md strings.Builder
	if err := WriteMarkdown(&md, s, MarkdownOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"## Database-backed API (api)",
		"| api (100 conns) | asyncd (epoll, async) | 120 | 0 µs | 900 µs | 50.0 | 50.0 | 23.8 MiB | 0 |",
		"| api1k | net/http | skipped: did not start |",
	} {
		if !strings.Contains(md.String(), line) {
			t.Errorf("markdown lacks %q:\n%s", line, md.String())
		}
	}
}

// TestNoAPITargetsWithoutAPI: a run without the api scenario shows none of
// its targets.
func TestNoAPITargetsWithoutAPI(t *testing.T) {
	for _, tg := range cpuSummary(t).Targets {
		if strings.HasPrefix(tg.Name, "api") {
			t.Errorf("target %q in a run without the api scenario", tg.Name)
		}
	}
}
