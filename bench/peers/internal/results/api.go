package results

import (
	"fmt"
	"strings"
)

// APIServer is the asyncd configuration the api targets judge: the async
// worker class on epoll; APIPeer is what it must beat, plain net/http
// serving the same handler.
const (
	APIServer = BaselineDelay
	APIPeer   = "nethttp"
)

// apiTargets evaluates issue 19's targets in each api scenario: asyncd
// async at least 1.10x net/http's requests/s, at most 0.90x its CPU per
// request, a p99 and a peak RSS no higher than net/http's.
func apiTargets(s Summary) []Target {
	var out []Target
	for _, sc := range []string{ScenarioAPI, ScenarioAPI1k} {
		a, okA := s.rowFor(sc, APIServer)
		n, okN := s.rowFor(sc, APIPeer)
		if !okA && !okN && !s.has(sc) {
			continue // not part of this run
		}
		name := ScenarioLabel(sc, a.Conns) + ": asyncd async vs net/http "
		metric := func(what, want string, av, nv float64, ok func(r float64) bool, show func(float64) string) Target {
			t := Target{Name: name + what, Want: want, Status: "n/a"}
			switch {
			case !okA || av <= 0:
				t.Got = Label(APIServer) + " " + what + " not measured"
			case !okN || nv <= 0:
				t.Got = Label(APIPeer) + " " + what + " not measured"
			default:
				t.Value = av / nv
				t.Got = fmt.Sprintf("%.2fx (%s vs %s)", t.Value, show(av), show(nv))
				t.Status = status(ok(t.Value))
			}
			return t
		}
		num := func(v float64) string { return Thousands(v) }
		us := func(v float64) string { return fmt.Sprintf("%.1f µs", v) }
		ms := func(v float64) string { return Micros(int64(v)) }
		mib := func(v float64) string { return Bytes(int64(v)) }
		out = append(out,
			metric("req/s", ">= 1.10x", a.RPS, n.RPS, func(r float64) bool { return r >= 1.10 }, num),
			metric("CPU/req", "<= 0.90x", a.CPUUSPerReq, n.CPUUSPerReq, func(r float64) bool { return r <= 0.90 }, us),
			metric("p99", "<= 1.00x", float64(a.P99US), float64(n.P99US), func(r float64) bool { return r <= 1.0 }, ms),
			metric("peak RSS", "<= 1.00x", float64(a.RSSPeak), float64(n.RSSPeak), func(r float64) bool { return r <= 1.0 }, mib),
		)
	}
	return out
}

// writeAPI writes the api scenarios' own table: the main table's figures
// plus peak RSS and PostgreSQL's CPU per request, which only they have.
func writeAPI(b *strings.Builder, s Summary) {
	if !s.has(ScenarioAPI) && !s.has(ScenarioAPI1k) {
		return
	}
	b.WriteString("## Database-backed API (api)\n\n")
	b.WriteString("examples/dbapi's users API (net/http ServeMux over pgx/v5's pgxpool) against a throw-away PostgreSQL on a unix socket, random `GET /users/{id}`; every server uses the same pool size. " +
		"*CPU µs/req* counts only the server's process tree; PostgreSQL's (the postmaster's tree, backends included) is shown apart. " +
		"*Peak RSS* is the largest VmRSS summed over the server's process tree, sampled every 250 ms during each run (asyncd: supervisor + serving process; Gunicorn: arbiter + workers), median over runs.\n\n")
	b.WriteString("| Scenario | Server | Requests/s | p50 | p99 | CPU µs/req | PostgreSQL CPU µs/req | Peak RSS | Errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range s.Rows {
		if !isAPI(r.Scenario) {
			continue
		}
		label := ScenarioLabel(r.Scenario, r.Conns)
		if r.Skipped != "" {
			fmt.Fprintf(b, "| %s | %s | skipped: %s | | | | | | |\n", label, r.Label, mdEscape(r.Skipped))
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", label, r.Label, Thousands(r.RPS),
			Micros(r.P50US), Micros(r.P99US), optional(r.CPUUSPerReq, "%.1f"), optional(r.DBCPUUSPerReq, "%.1f"), optionalBytes(r.RSSPeak), r.Errors)
	}
	b.WriteString("\n")
}

func optional(v float64, format string) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func optionalBytes(v int64) string {
	if v <= 0 {
		return "-"
	}
	return Bytes(v)
}
