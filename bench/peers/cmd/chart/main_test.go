package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/bench/peers/internal/results"
)

// parse walks the SVG with an XML decoder (so it must be well-formed) and
// counts bars, legend swatches and text.
func parse(t *testing.T, svg []byte) (bars, legend int, texts []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	inText := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			fill := ""
			for _, a := range e.Attr {
				if a.Name.Local == "fill" {
					fill = a.Value
				}
			}
			for _, a := range e.Attr {
				if a.Name.Local == "class" && (a.Value == "bar" || a.Value == "legend") && !strings.HasPrefix(fill, "#") {
					t.Errorf("%s without a colour", a.Value)
				}
				if a.Name.Local == "class" && a.Value == "bar" {
					bars++
				}
				if a.Name.Local == "class" && a.Value == "legend" {
					legend++
				}
			}
			inText = e.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, string(e))
			}
		case xml.EndElement:
			inText = false
		}
	}
}

func TestDraw(t *testing.T) {
	row := func(sc, srv string, rps float64) results.Row {
		return results.Row{Scenario: sc, Server: srv, Label: results.Label(srv), RPS: rps, Runs: 3}
	}
	full := results.Summary{
		Meta:    results.Meta{Runs: 3, Quick: true, Pinning: "server pinned to CPU0 & wrk to CPU1"},
		Servers: []string{"asyncd-epoll-sync", "fasthttp", "nginx", "custom<x>"},
		Rows: []results.Row{
			row("plaintext", "asyncd-epoll-sync", 250000),
			row("plaintext", "fasthttp", 200000),
			{Scenario: "plaintext", Server: "nginx", Label: "nginx", Skipped: "no root"},
			row("pipeline", "asyncd-epoll-sync", 2.5e6),
			row("churn", "fasthttp", 15000),
			row("churn", "custom<x>", 900),
			{Scenario: "delay", Server: "asyncd-epoll-async", Label: "asyncd (epoll, async)", RPS: 49000, Conns: 5000},
			{Scenario: "conns1k", Server: "asyncd-uring-sync", Label: "asyncd (io_uring, sync)", RPS: 200000, Conns: 1000},
			{Scenario: "delay-plaintext", Server: "asyncd-epoll-async", Label: "asyncd (epoll, async)", RPS: 30000, Conns: 16},
		},
	}
	tests := []struct {
		name       string
		s          results.Summary
		wantErr    error
		wantBars   int
		wantLegend int
		wantTexts  []string
	}{
		{
			name:       "grouped bars with skipped row and odd names",
			s:          full,
			wantBars:   8,
			wantLegend: 5, // nginx has no measured bar; asyncd async and io_uring are added though not in Servers
			wantTexts: []string{
				"requests/s (log scale)", "scenario", "server",
				"plaintext", "pipeline", "churn", "delay (5000 conns)", "conns1k (1000 conns)", "plaintext during delay (16 conns)",
				"1k", "10k", "100k", "1M", "10M",
				"server pinned to CPU0 & wrk to CPU1", "smoke run (BENCH_QUICK=1)", "custom<x>", "fasthttp", "asyncd (epoll, sync)", "asyncd (epoll, async)",
			},
		},
		{
			name:    "nothing measured",
			s:       results.Summary{Rows: []results.Row{{Scenario: "plaintext", Server: "nginx", Skipped: "x"}}},
			wantErr: ErrEmpty,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Draw(&b, tt.s)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			bars, legend, texts := parse(t, b.Bytes())
			if bars != tt.wantBars || legend != tt.wantLegend {
				t.Fatalf("bars=%d legend=%d, want %d %d", bars, legend, tt.wantBars, tt.wantLegend)
			}
			all := strings.Join(texts, "\n")
			for _, want := range tt.wantTexts {
				if !strings.Contains(all, want) {
					t.Errorf("no text %q in\n%s", want, all)
				}
			}
		})
	}
}

func TestCompact(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{{100, "100"}, {1000, "1k"}, {20000, "20k"}, {1e6, "1M"}, {5e7, "50M"}}
	for _, tt := range tests {
		if got := compact(tt.v); got != tt.want {
			t.Errorf("compact(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
