// Package results turns the runner's raw records (one JSON object per line:
// each wrk run, each skipped server, each memory measurement, each parser
// microbenchmark line) into the one side-by-side table the benchmark
// reports: medians over runs, errors, ratios to asyncd, the memory and
// parser tables and the targets, rendered as markdown, CSV and JSON (which
// cmd/chart draws).
//
// It owns the record format and the arithmetic; it must not run servers or
// load generators, so it stays testable on recorded data.
package results

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
)

// Record kinds in the raw JSONL file.
const (
	KindMeta  = "meta"  // run settings, first line
	KindWrk   = "wrk"   // one wrk run of one scenario against one server
	KindSkip  = "skip"  // a server/scenario pair (or idle/flood) not measured, with why
	KindIdle  = "idle"  // idleconns output
	KindFlood = "flood" // pipeflood output
	KindNote  = "note"  // a free-form line for the report (e.g. reload)
	// KindGoBench is one line of `go test -bench` output (cmd/gobench), the
	// parser microbenchmarks; a skip with Scenario ScenarioParser says why
	// they were not run.
	KindGoBench = "gobench"
)

// ScenarioParser is the scenario name of the parser microbenchmarks.
const ScenarioParser = "parser"

// Record is one line of the raw file.
type Record struct {
	Kind     string       `json:"kind"`
	Server   string       `json:"server,omitempty"`
	Scenario string       `json:"scenario,omitempty"`
	Run      int          `json:"run,omitempty"`
	Wrk      *Wrk         `json:"wrk,omitempty"`
	Idle     *Idle        `json:"idle,omitempty"`
	Flood    *Flood       `json:"flood,omitempty"`
	GoBench  *GoBench     `json:"gobench,omitempty"`
	Meta     *Meta        `json:"meta,omitempty"`
	CPU      *CPU         `json:"cpu,omitempty"`    // with a wrk record: the server's CPU time during it
	Reason   string       `json:"reason,omitempty"` // skip reason or note text
	Extra    *ExtraParams `json:"extra,omitempty"`
}

// ExtraParams records load settings that differ from the run defaults (the
// conns1k and delay scenarios use many more connections, the plaintext load
// alongside delay far fewer).
type ExtraParams struct {
	Conns   int `json:"conns,omitempty"`
	Threads int `json:"threads,omitempty"`
}

// Wrk is the line bench/wrk/report.lua prints after "WRKRESULT ".
type Wrk struct {
	Requests      int64   `json:"requests"`
	DurationUS    int64   `json:"duration_us"`
	RPS           float64 `json:"rps"`
	Bytes         int64   `json:"bytes"`
	P50US         int64   `json:"p50_us"`
	P90US         int64   `json:"p90_us"`
	P99US         int64   `json:"p99_us"`
	MaxUS         int64   `json:"max_us"`
	MeanUS        float64 `json:"mean_us"`
	ErrorsConnect int64   `json:"errors_connect"`
	ErrorsRead    int64   `json:"errors_read"`
	ErrorsWrite   int64   `json:"errors_write"`
	ErrorsTimeout int64   `json:"errors_timeout"`
	ErrorsStatus  int64   `json:"errors_status"`
}

// Errors is socket errors plus answers with status >= 400.
func (w Wrk) Errors() int64 {
	return w.ErrorsConnect + w.ErrorsRead + w.ErrorsWrite + w.ErrorsTimeout + w.ErrorsStatus
}

// Idle is cmd/idleconns' IDLECONNS line.
type Idle struct {
	Conns        int     `json:"conns"`
	Failed       int     `json:"failed"`
	Dropped      int     `json:"dropped"`
	RSSBefore    int64   `json:"rss_before"`
	RSSAfter     int64   `json:"rss_after"`
	BytesPerConn float64 `json:"bytes_per_conn"`
}

// Flood is cmd/pipeflood's PIPEFLOOD line.
type Flood struct {
	Seconds      float64 `json:"seconds"`
	BytesWritten int64   `json:"bytes_written"`
	Requests     int64   `json:"requests_written"`
	RSSBaseline  int64   `json:"rss_baseline"`
	RSSPeak      int64   `json:"rss_peak"`
	Samples      []int64 `json:"samples"`
	Capped       bool    `json:"capped"`
	ServerClosed bool    `json:"server_closed"`
	WriteError   string  `json:"write_error,omitempty"`
}

// Meta describes the run.
type Meta struct {
	Started    string `json:"started"`     // RFC 3339
	Host       string `json:"host"`        // uname -srm
	CPUModel   string `json:"cpu_model"`   // from /proc/cpuinfo
	Cores      int    `json:"cores"`       // online CPUs
	Pinning    string `json:"pinning"`     // what the runner did, one sentence
	ServerCPUs string `json:"server_cpus"` // taskset list or "" when unpinned
	WrkCPUs    string `json:"wrk_cpus"`
	Duration   string `json:"duration"` // per wrk run
	Runs       int    `json:"runs"`
	Conns      int    `json:"conns"`
	Threads    int    `json:"threads"` // wrk threads
	Quick      bool   `json:"quick"`
	GoVersion  string `json:"go_version"`
	WrkVersion string `json:"wrk_version"`
	Commit     string `json:"commit,omitempty"`
	// ParserCommand is the go test command of the parser
	// microbenchmarks, when they are part of the run.
	ParserCommand string `json:"parser_command,omitempty"`
}

// Read parses a raw JSONL stream; blank lines are ignored.
func Read(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(trimSpace(b)) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("raw line %d: %w", line, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read raw records: %w", err)
	}
	return out, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// Scenarios in report order. conns1k is plaintext over 1,000 connections;
// delay-plaintext is the plaintext load the runner sends alongside the
// delay scenario (few connections, same server, same time), which shows
// whether other routes stay fast while many requests wait.
// api and api1k are the database-backed users API (examples/dbapi) at
// BENCH_API_CONNS and BENCH_CONNS1K connections.
var Scenarios = []string{"plaintext", "pipeline", "json", "post", "churn", "conns1k", "delay", ScenarioDelayPlaintext, ScenarioAPI, ScenarioAPI1k}

// The api scenarios: GET /users/{id} against PostgreSQL.
const (
	ScenarioAPI   = "api"
	ScenarioAPI1k = "api1k"
)

// isAPI reports whether a scenario is one of the api scenarios.
func isAPI(scenario string) bool { return scenario == ScenarioAPI || scenario == ScenarioAPI1k }

// ScenarioDelayPlaintext is the plaintext load measured during delay.
const ScenarioDelayPlaintext = "delay-plaintext"

// scenarioTitles are display names that differ from the scenario id.
var scenarioTitles = map[string]string{
	ScenarioDelayPlaintext: "plaintext during delay",
}

// ScenarioLabel is how tables and the chart name a scenario: its title,
// with its connection count when the scenario has its own.
func ScenarioLabel(scenario string, conns int) string {
	l := scenario
	if t, ok := scenarioTitles[scenario]; ok {
		l = t
	}
	if conns > 0 {
		l += fmt.Sprintf(" (%d conns)", conns)
	}
	return l
}

// Baseline is the asyncd configuration every other row is compared with.
const Baseline = "asyncd-epoll-sync"

// BaselineDelay is the baseline for the delay scenario, which asyncd serves
// with the async worker class.
const BaselineDelay = "asyncd-epoll-async"

// BaselineFor returns the server a scenario's ratios are relative to.
func BaselineFor(scenario string) string {
	if scenario == "delay" || scenario == ScenarioDelayPlaintext || isAPI(scenario) {
		return BaselineDelay
	}
	return Baseline
}

// Labels are the display names of server ids.
var Labels = map[string]string{
	"asyncd-epoll-sync":    "asyncd (epoll, sync)",
	"asyncd-uring-sync":    "asyncd (io_uring, sync)",
	"asyncd-epoll-async":   "asyncd (epoll, async)",
	"asyncd-uring-async":   "asyncd (io_uring, async)",
	"asyncd-epoll-gthread": "asyncd (epoll, gthread)",
	"nethttp":              "net/http",
	"fasthttp":             "fasthttp",
	"gnet-raw":             "gnet (raw)",
	"hertz":                "hertz (netpoll)",
	"nbio":                 "nbio (nbhttp)",
	"gain-raw":             "gain (raw, io_uring)",
	"nginx":                "nginx",
	"gunicorn-gevent":      "Gunicorn + gevent",
	CServer:                "C epoll (raw)",
	"h2o":                  "h2o",
}

// Label returns the display name of a server id.
func Label(id string) string {
	if l, ok := Labels[id]; ok {
		return l
	}
	return id
}

// Row is one line of the main table.
type Row struct {
	Scenario string  `json:"scenario"`
	Server   string  `json:"server"`
	Label    string  `json:"label"`
	Runs     int     `json:"runs"`
	RPS      float64 `json:"rps"`    // median over runs
	P50US    int64   `json:"p50_us"` // median over runs
	P99US    int64   `json:"p99_us"` // median over runs
	Errors   int64   `json:"errors"` // summed over runs
	Ratio    float64 `json:"ratio"`  // RPS / baseline RPS; 0 when there is no baseline
	Baseline string  `json:"baseline"`
	// CPUUSPerReq is the median over runs of the server's CPU time (its
	// whole process tree, user + system) per request, in µs; 0 when not
	// measured.
	CPUUSPerReq float64 `json:"cpu_us_per_req,omitempty"`
	// CPUVsC and RPSVsC are CPUUSPerReq and RPS divided by the C server's
	// in the same scenario; 0 when there is none.
	CPUVsC  float64 `json:"cpu_vs_c,omitempty"`
	RPSVsC  float64 `json:"rps_vs_c,omitempty"`
	Conns   int     `json:"conns,omitempty"`
	Skipped string  `json:"skipped,omitempty"` // why there is no measurement
	// RSSPeak (bytes) and DBCPUUSPerReq (PostgreSQL's CPU µs per request)
	// are the api scenarios' medians over runs; 0 elsewhere.
	RSSPeak       int64   `json:"rss_peak,omitempty"`
	DBCPUUSPerReq float64 `json:"db_cpu_us_per_req,omitempty"`
}

// IdleRow is one line of the idle-memory table.
type IdleRow struct {
	Server  string `json:"server"`
	Label   string `json:"label"`
	Skipped string `json:"skipped,omitempty"`
	Idle
}

// FloodRow is one line of the pipelining-flood table.
type FloodRow struct {
	Server  string `json:"server"`
	Label   string `json:"label"`
	Skipped string `json:"skipped,omitempty"`
	Flood
}

// Target is one of the project's performance targets, evaluated.
type Target struct {
	Name   string  `json:"name"`
	Want   string  `json:"want"`
	Got    string  `json:"got"`
	Value  float64 `json:"value"`
	Status string  `json:"status"` // "met", "missed" or "n/a"
}

// Summary is everything the report shows; cmd/report writes it as JSON and
// cmd/chart reads it back.
type Summary struct {
	Meta    Meta       `json:"meta"`
	Servers []string   `json:"servers"` // ids, in run order
	Rows    []Row      `json:"rows"`
	Idle    []IdleRow  `json:"idle"`
	Flood   []FloodRow `json:"flood"`
	// Parser is the parser microbenchmarks; ParserSkipped says why there
	// are none when they were meant to run.
	Parser        []ParserRow `json:"parser,omitempty"`
	ParserSkipped string      `json:"parser_skipped,omitempty"`
	Targets       []Target    `json:"targets"`
	Notes         []string    `json:"notes"`
}

// Summarize aggregates raw records.
func Summarize(recs []Record) Summary {
	var s Summary
	type key struct{ scenario, server string }
	runs := map[key][]Wrk{}
	cpus := map[key][]cpuRun{}
	side := map[string]map[int]int64{} // server -> run -> requests of the load alongside delay
	conns := map[key]int{}
	skips := map[key]string{}
	seen := map[string]bool{}
	addServer := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			s.Servers = append(s.Servers, id)
		}
	}
	idleSkip := map[string]string{}
	floodSkip := map[string]string{}
	var idleOrder, floodOrder []string
	idle := map[string]Idle{}
	flood := map[string]Flood{}
	var benches []GoBench
	for _, r := range recs {
		switch r.Kind {
		case KindMeta:
			if r.Meta != nil {
				s.Meta = *r.Meta
			}
		case KindWrk:
			if r.Wrk == nil {
				continue
			}
			addServer(r.Server)
			k := key{r.Scenario, r.Server}
			runs[k] = append(runs[k], *r.Wrk)
			if r.CPU != nil {
				cpus[k] = append(cpus[k], cpuRun{run: r.Run, cpu: *r.CPU, requests: r.Wrk.Requests})
			}
			if r.Scenario == ScenarioDelayPlaintext {
				if side[r.Server] == nil {
					side[r.Server] = map[int]int64{}
				}
				side[r.Server][r.Run] = r.Wrk.Requests
			}
			if r.Extra != nil && r.Extra.Conns > 0 {
				conns[k] = r.Extra.Conns
			}
		case KindSkip:
			if r.Scenario != ScenarioParser {
				addServer(r.Server)
			}
			switch r.Scenario {
			case "idle":
				idleSkip[r.Server] = r.Reason
				idleOrder = appendOnce(idleOrder, r.Server)
			case "flood":
				floodSkip[r.Server] = r.Reason
				floodOrder = appendOnce(floodOrder, r.Server)
			case ScenarioParser:
				s.ParserSkipped = r.Reason
			default:
				skips[key{r.Scenario, r.Server}] = r.Reason
			}
		case KindIdle:
			if r.Idle != nil {
				idle[r.Server] = *r.Idle
				idleOrder = appendOnce(idleOrder, r.Server)
			}
		case KindFlood:
			if r.Flood != nil {
				flood[r.Server] = *r.Flood
				floodOrder = appendOnce(floodOrder, r.Server)
			}
		case KindNote:
			s.Notes = append(s.Notes, r.Reason)
		case KindGoBench:
			if r.GoBench != nil {
				benches = append(benches, *r.GoBench)
			}
		}
	}
	s.Parser = parserRows(benches)
	if len(s.Parser) > 0 {
		s.ParserSkipped = ""
	}

	medians := map[key]Row{}
	for k, ws := range runs {
		row := aggregate(k.scenario, k.server, ws)
		var alongside map[int]int64
		if k.scenario == "delay" {
			alongside = side[k.server]
		}
		row.CPUUSPerReq = cpuPerRequest(cpus[k], alongside)
		if isAPI(k.scenario) {
			apiFigures(&row, cpus[k])
		}
		medians[k] = row
	}
	for _, sc := range Scenarios {
		base, hasBase := medians[key{sc, BaselineFor(sc)}]
		for _, srv := range s.Servers {
			k := key{sc, srv}
			row, measured := medians[k]
			if !measured {
				reason, ok := skips[k]
				if !ok {
					continue // the server does not take part in this scenario
				}
				row = Row{Scenario: sc, Server: srv, Label: Label(srv), Skipped: reason}
			}
			row.Baseline = BaselineFor(sc)
			row.Conns = conns[k]
			if measured && hasBase && base.RPS > 0 {
				row.Ratio = row.RPS / base.RPS
			}
			s.Rows = append(s.Rows, row)
		}
	}
	addCRatios(s.Rows)
	for _, id := range idleOrder {
		row := IdleRow{Server: id, Label: Label(id), Skipped: idleSkip[id]}
		if v, ok := idle[id]; ok {
			row.Idle, row.Skipped = v, ""
		}
		s.Idle = append(s.Idle, row)
	}
	for _, id := range floodOrder {
		row := FloodRow{Server: id, Label: Label(id), Skipped: floodSkip[id]}
		if v, ok := flood[id]; ok {
			row.Flood, row.Skipped = v, ""
		}
		s.Flood = append(s.Flood, row)
	}
	s.Targets = targets(s)
	return s
}

func appendOnce(list []string, id string) []string {
	if slices.Contains(list, id) {
		return list
	}
	return append(list, id)
}

// aggregate takes the median of each metric over runs independently and
// sums errors, so one bad run shows up in the error count, not the median.
func aggregate(scenario, server string, ws []Wrk) Row {
	rps := make([]float64, len(ws))
	p50 := make([]float64, len(ws))
	p99 := make([]float64, len(ws))
	var errs int64
	for i, w := range ws {
		rps[i], p50[i], p99[i] = w.RPS, float64(w.P50US), float64(w.P99US)
		errs += w.Errors()
	}
	return Row{
		Scenario: scenario, Server: server, Label: Label(server), Runs: len(ws),
		RPS: Median(rps), P50US: int64(Median(p50)), P99US: int64(Median(p99)), Errors: errs,
	}
}

// Median returns the middle value (mean of the two middle values for an
// even count); 0 for no values.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// rowFor finds a measured row.
func (s Summary) rowFor(scenario, server string) (Row, bool) {
	for _, r := range s.Rows {
		if r.Scenario == scenario && r.Server == server && r.Skipped == "" && r.Runs > 0 {
			return r, true
		}
	}
	return Row{}, false
}

// targets evaluates the project's goals (bench/README.md) on this run.
func targets(s Summary) []Target {
	ratio := func(name, scenario, other string, want float64) Target {
		t := Target{Name: name, Want: fmt.Sprintf(">= %.2fx", want), Status: "n/a"}
		a, okA := s.rowFor(scenario, Baseline)
		b, okB := s.rowFor(scenario, other)
		switch {
		case !okA:
			t.Got = "asyncd not measured"
		case !okB:
			t.Got = Label(other) + " not measured"
		case b.RPS <= 0:
			t.Got = Label(other) + " served nothing"
		default:
			t.Value = a.RPS / b.RPS
			t.Got = fmt.Sprintf("%.2fx", t.Value)
			t.Status = status(t.Value >= want)
		}
		return t
	}
	out := []Target{
		ratio("plaintext vs fasthttp", "plaintext", "fasthttp", 1.15),
		ratio("plaintext vs raw gnet", "plaintext", "gnet-raw", 1.0),
		ratio("pipelined vs raw gnet", "pipeline", "gnet-raw", 1.0),
		ratio("plaintext vs Gunicorn + gevent", "plaintext", "gunicorn-gevent", 10),
	}
	idle := Target{Name: "idle keep-alive memory", Want: "<= 1024 B/conn", Status: "n/a", Got: "asyncd not measured"}
	for _, r := range s.Idle {
		if r.Server == Baseline && r.Skipped == "" && r.Conns > 0 {
			idle.Value = r.BytesPerConn
			idle.Got = fmt.Sprintf("%.0f B/conn", r.BytesPerConn)
			idle.Status = status(r.BytesPerConn <= 1024)
		}
	}
	return append(append(append(out, idle), cpuTargets(s)...), apiTargets(s)...)
}

func status(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
