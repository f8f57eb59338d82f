package results

import "fmt"

// CPU is cmd/cpumeter's CPUMETER line, recorded with a wrk run: the CPU
// time the server's whole process tree used while wrk ran.
type CPU struct {
	Ticks  uint64  `json:"ticks"`
	ClkTck int64   `json:"clk_tck"`
	US     float64 `json:"cpu_us"`
	Procs  int     `json:"procs"`
	// RSSPeak is the tree's peak VmRSS during the run (cpumeter -rss, the
	// api scenario), in bytes; 0 when not sampled.
	RSSPeak int64 `json:"rss_peak,omitempty"`
	// AlsoUS is the CPU time of the tree measured alongside (cpumeter
	// -also: the api scenario's PostgreSQL), never part of US.
	AlsoUS float64 `json:"also_cpu_us,omitempty"`
}

// CServer is the minimal C epoll server (bench/peers/cepoll): no parsing, a
// fixed answer per "\r\n\r\n", so its CPU per request is what the kernel's
// share of a request costs on this machine. Every server's CPU per request
// and requests/s are also shown as a ratio to it.
const CServer = "c-epoll"

// cpuRun is one run's CPU time and the requests it served.
type cpuRun struct {
	run      int
	cpu      CPU
	requests int64
}

// cpuPerRequest is the median over runs of the server's CPU microseconds
// per request; side holds, by run, the requests of a load that ran
// alongside on the same server (the plaintext load during delay), whose
// CPU time the run's measurement includes. 0 when no run has both.
func cpuPerRequest(runs []cpuRun, side map[int]int64) float64 {
	var per []float64
	for _, r := range runs {
		n := r.requests + side[r.run]
		if n > 0 && r.cpu.ClkTck > 0 {
			per = append(per, r.cpu.US/float64(n))
		}
	}
	return Median(per)
}

// apiFigures fills the api scenarios' extra columns: the median over runs
// of the peak RSS and of PostgreSQL's CPU µs per request.
func apiFigures(row *Row, runs []cpuRun) {
	var rss, db []float64
	for _, r := range runs {
		if r.cpu.RSSPeak > 0 {
			rss = append(rss, float64(r.cpu.RSSPeak))
		}
		if r.requests > 0 && r.cpu.AlsoUS > 0 {
			db = append(db, r.cpu.AlsoUS/float64(r.requests))
		}
	}
	row.RSSPeak = int64(Median(rss))
	row.DBCPUUSPerReq = Median(db)
}

// addCRatios sets every measured row's ratios to the C server's row of the
// same scenario.
func addCRatios(rows []Row) {
	c := map[string]Row{}
	for _, r := range rows {
		if r.Server == CServer && r.Skipped == "" && r.Runs > 0 {
			c[r.Scenario] = r
		}
	}
	for i := range rows {
		r := &rows[i]
		base, ok := c[r.Scenario]
		if !ok || r.Skipped != "" || r.Runs == 0 {
			continue
		}
		if base.CPUUSPerReq > 0 && r.CPUUSPerReq > 0 {
			r.CPUVsC = r.CPUUSPerReq / base.CPUUSPerReq
		}
		if base.RPS > 0 {
			r.RPSVsC = r.RPS / base.RPS
		}
	}
}

// cpuScenarios are the scenarios issue 17's CPU targets are judged on.
var cpuScenarios = []string{"plaintext", "pipeline", "churn", "conns1k"}

// cpuTargets evaluates the CPU-per-request and idle-memory targets: each
// asyncd backend within 1.10x of the C server's CPU per request, io_uring
// at or below epoll, and idle memory per connection at or below nginx's.
func cpuTargets(s Summary) []Target {
	const uring = "asyncd-uring-sync"
	ratio := func(name, scenario, num, den string, want float64) Target {
		t := Target{Name: name, Want: fmt.Sprintf("<= %.2fx", want), Status: "n/a"}
		a, okA := s.rowFor(scenario, num)
		b, okB := s.rowFor(scenario, den)
		switch {
		case !okA || a.CPUUSPerReq <= 0:
			t.Got = Label(num) + " CPU not measured"
		case !okB || b.CPUUSPerReq <= 0:
			t.Got = Label(den) + " CPU not measured"
		default:
			t.Value = a.CPUUSPerReq / b.CPUUSPerReq
			t.Got = fmt.Sprintf("%.2fx (%.2f vs %.2f µs/req)", t.Value, a.CPUUSPerReq, b.CPUUSPerReq)
			t.Status = status(t.Value <= want)
		}
		return t
	}
	var out []Target
	for _, sc := range cpuScenarios {
		out = append(out,
			ratio(sc+" CPU/req: asyncd epoll vs C server", sc, Baseline, CServer, 1.10),
			ratio(sc+" CPU/req: asyncd io_uring vs C server", sc, uring, CServer, 1.10),
			ratio(sc+" CPU/req: io_uring vs epoll", sc, uring, Baseline, 1.00),
		)
	}
	idle := map[string]IdleRow{}
	for _, r := range s.Idle {
		if r.Skipped == "" && r.Conns > 0 {
			idle[r.Server] = r
		}
	}
	for _, id := range []string{Baseline, uring} {
		t := Target{Name: "idle memory/conn: " + Label(id) + " vs nginx", Want: "<= nginx", Status: "n/a"}
		a, okA := idle[id]
		n, okN := idle["nginx"]
		switch {
		case !okA:
			t.Got = Label(id) + " not measured"
		case !okN:
			t.Got = "nginx not measured"
		default:
			t.Value = a.BytesPerConn
			t.Got = fmt.Sprintf("%.0f vs %.0f B/conn", a.BytesPerConn, n.BytesPerConn)
			t.Status = status(a.BytesPerConn <= n.BytesPerConn)
		}
		out = append(out, t)
	}
	return out
}
