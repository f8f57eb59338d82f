// Command chart draws the benchmark summary (the JSON cmd/report writes) as
// an SVG: grouped bars of requests/s, one group per scenario and one bar
// per server, on a logarithmic axis because pipelined and churn throughput
// differ by orders of magnitude. It uses only the standard library and
// writes the SVG by hand; it reads and writes only the files it is given.
package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/asyncd/asyncd/bench/peers/internal/results"
)

func main() {
	in := flag.String("in", "", "summary JSON written by cmd/report -json (required)")
	out := flag.String("out", "", "SVG file to write (required)")
	flag.Parse()
	if *in == "" || *out == "" {
		log.Fatal("chart: -in and -out are required")
	}
	f, err := os.Open(*in)
	if err != nil {
		log.Fatalf("chart: open summary: %v", err)
	}
	s, err := results.ReadSummary(f)
	f.Close()
	if err != nil {
		log.Fatalf("chart: %s: %v", *in, err)
	}
	var b bytes.Buffer
	if err := Draw(&b, s); err != nil {
		log.Fatalf("chart: %v", err)
	}
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		log.Fatalf("chart: write %s: %v", *out, err)
	}
}

// ErrEmpty is returned when the summary has no measured row.
var ErrEmpty = errors.New("nothing to draw: no measured rows")

// palette gives asyncd's configurations warm shades and peers cool or
// neutral ones, so asyncd's bars are found at a glance.
var palette = map[string]string{
	"asyncd-epoll-sync":  "#d62728",
	"asyncd-uring-sync":  "#ff7f0e",
	"asyncd-epoll-async": "#e377c2",
	"asyncd-uring-async": "#bcbd22",
	"nethttp":            "#1f77b4",
	"fasthttp":           "#17becf",
	"gnet-raw":           "#2ca02c",
	"hertz":              "#9467bd",
	"nbio":               "#8c564b",
	"gain-raw":           "#98df8a",
	"nginx":              "#7f7f7f",
	"gunicorn-gevent":    "#aec7e8",
}

var fallback = []string{"#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"}

// Layout in pixels.
const (
	barW      = 16
	barGap    = 2
	groupGap  = 36
	left      = 90
	top       = 80
	plotH     = 360
	bottom    = 70
	legendW   = 230
	minPlotW  = 360
	legendRow = 20
)

type group struct {
	scenario string
	rows     []results.Row
}

// Draw writes the SVG for s.
func Draw(w io.Writer, s results.Summary) error {
	var groups []group
	used := map[string]bool{}
	var order []string // servers with a bar, in row order
	lo, hi := math.Inf(1), 0.0
	for _, sc := range results.Scenarios {
		g := group{scenario: sc}
		for _, r := range s.Rows {
			if r.Scenario == sc && r.Skipped == "" && r.RPS > 0 {
				g.rows = append(g.rows, r)
				if !used[r.Server] {
					used[r.Server] = true
					order = append(order, r.Server)
				}
				lo, hi = math.Min(lo, r.RPS), math.Max(hi, r.RPS)
			}
		}
		if len(g.rows) > 0 {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return ErrEmpty
	}
	// Legend order: run order, then any server the run list missed.
	var servers []string
	for _, id := range s.Servers {
		if used[id] && !slices.Contains(servers, id) {
			servers = append(servers, id)
		}
	}
	for _, id := range order {
		if !slices.Contains(servers, id) {
			servers = append(servers, id)
		}
	}
	colors := map[string]string{}
	for i, id := range servers {
		if c, ok := palette[id]; ok {
			colors[id] = c
		} else {
			colors[id] = fallback[i%len(fallback)]
		}
	}

	// Decades that cover every bar.
	dLo := math.Floor(math.Log10(lo))
	dHi := math.Ceil(math.Log10(hi))
	if dHi == dLo {
		dHi++
	}
	y := func(v float64) float64 {
		return top + plotH - (math.Log10(v)-dLo)/(dHi-dLo)*plotH
	}

	plotW := 0
	for _, g := range groups {
		plotW += len(g.rows)*(barW+barGap) - barGap + groupGap
	}
	plotW = max(plotW+groupGap, minPlotW)
	runs := s.Meta.Runs
	title := fmt.Sprintf("Requests per second by scenario (median of %d run(s))", runs)
	legendH := len(servers)*legendRow + 40
	// Wide enough for the title and the pinning line (about 7 px a
	// character at 12 px, 9 at the 16 px title).
	width := max(left+plotW+legendW, left+9*len(title)+20, left+7*len(s.Meta.Pinning)+20)
	height := top + max(plotH+bottom, legendH)

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", left, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="42" fill="#555555">%s</text>`+"\n", left, esc(s.Meta.Pinning))
	if s.Meta.Quick {
		fmt.Fprintf(&b, `<text x="%d" y="58" fill="#d62728">smoke run (BENCH_QUICK=1): shows the harness works; figures not comparable</text>`+"\n", left)
	}

	// Y axis: gridlines at each decade and at 2x and 5x within it.
	for d := dLo; d <= dHi; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if math.Log10(v) > dHi+1e-9 {
				continue
			}
			yy := y(v)
			stroke, label := "#eeeeee", ""
			if m == 1 {
				stroke, label = "#cccccc", compact(v)
			}
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", left, yy, left+plotW, yy, stroke)
			if label != "" {
				fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-8, yy, label)
			}
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000000"/>`+"\n", left, top, left, top+plotH)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000000"/>`+"\n", left, top+plotH, left+plotW, top+plotH)
	fmt.Fprintf(&b, `<text transform="translate(22 %d) rotate(-90)" text-anchor="middle">requests/s (log scale)</text>`+"\n", top+plotH/2)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">scenario</text>`+"\n", left+plotW/2, top+plotH+52)

	// Bars.
	x := left + groupGap
	for _, g := range groups {
		gw := len(g.rows)*(barW+barGap) - barGap
		for i, r := range g.rows {
			bx := x + i*(barW+barGap)
			by := y(r.RPS)
			fmt.Fprintf(&b, `<rect class="bar" x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s, %s: %s requests/s, p99 %s</title></rect>`+"\n",
				bx, by, barW, float64(top+plotH)-by, colors[r.Server], esc(r.Label), esc(g.scenario), results.Thousands(r.RPS), esc(results.Micros(r.P99US)))
		}
		label := results.ScenarioLabel(g.scenario, g.rows[0].Conns)
		fmt.Fprintf(&b, `<text class="group" x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x+gw/2, top+plotH+20, esc(label))
		x += gw + groupGap
	}

	// Legend.
	lx := left + plotW + 24
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">server</text>`+"\n", lx, top)
	for i, id := range servers {
		ly := top + 14 + i*legendRow
		fmt.Fprintf(&b, `<rect class="legend" x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", lx, ly, colors[id])
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+18, ly+10, esc(results.Label(id)))
	}
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	return nil
}

// compact formats an axis value: 1k, 10k, 1M.
func compact(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
