package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/bench/peers/internal/results"
)

// TestRun converts bench output into records that results reads back into
// the parser table.
func TestRun(t *testing.T) {
	in := `pkg: github.com/asyncd/asyncd/httpparse
BenchmarkParse/minimal-GET/asyncd-4   	1000	   100.0 ns/op	 400.00 MB/s	   0 B/op	   0 allocs/op
BenchmarkParse/minimal-GET/wildcat-4  	1000	   250.0 ns/op	 160.00 MB/s	   0 B/op	   0 allocs/op
PASS
`
	var out bytes.Buffer
	if err := run(strings.NewReader(in), &out, 4); err != nil {
		t.Fatal(err)
	}
	recs, err := results.Read(&out)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Kind != results.KindGoBench || recs[0].GoBench.Name != "Parse/minimal-GET/asyncd" {
		t.Fatalf("records %+v", recs)
	}
	s := results.Summarize(recs)
	if len(s.Parser) != 2 || s.Parser[1].Parser != "wildcat" || s.Parser[1].Speedup != 2.5 {
		t.Fatalf("parser rows %+v", s.Parser)
	}
	for _, bad := range []string{"", "PASS\nok x 1s\n", "BenchmarkX-4 10 fast ns/op\n"} {
		if err := run(strings.NewReader(bad), &bytes.Buffer{}, 4); err == nil {
			t.Errorf("input %q accepted", bad)
		}
	}
}
