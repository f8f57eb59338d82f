package results

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// GoBench is one result line of `go test -bench -benchmem` output.
type GoBench struct {
	// Pkg is the package, from the "pkg:" header line.
	Pkg string `json:"pkg,omitempty"`
	// Name is the benchmark without its "Benchmark" prefix and
	// -GOMAXPROCS suffix: "Parse/minimal-GET/asyncd".
	Name        string  `json:"name"`
	Procs       int     `json:"procs,omitempty"`
	N           int64   `json:"n"`
	NsPerOp     float64 `json:"ns_per_op"`
	MBPerS      float64 `json:"mb_per_s,omitempty"`
	BytesPerOp  float64 `json:"b_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
}

// ParseGoBench reads `go test -bench` output. procs is the GOMAXPROCS the
// benchmarks ran with (go test -cpu): the testing package appends "-procs"
// to every name unless it is 1, and only that suffix is removed, so a
// sub-benchmark named "size-1024" keeps its name. Lines that are not
// benchmark results (headers, PASS, ok) are skipped; a result line that
// does not parse is an error.
func ParseGoBench(r io.Reader, procs int) ([]GoBench, error) {
	var out []GoBench
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if p, ok := strings.CutPrefix(text, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(text)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue // "BenchmarkX ... --- FAIL" and similar
		}
		b := GoBench{Pkg: pkg, Name: strings.TrimPrefix(f[0], "Benchmark"), N: n, Procs: procs}
		if procs > 1 {
			b.Name = strings.TrimSuffix(b.Name, "-"+strconv.Itoa(procs))
		}
		seen := false
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("bench output line %d: value %q: %w", line, f[i], err)
			}
			switch f[i+1] {
			case "ns/op":
				b.NsPerOp, seen = v, true
			case "MB/s":
				b.MBPerS = v
			case "B/op":
				b.BytesPerOp = v
			case "allocs/op":
				b.AllocsPerOp = v
			}
		}
		if !seen {
			return nil, fmt.Errorf("bench output line %d: no ns/op in %q", line, text)
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read bench output: %w", err)
	}
	return out, nil
}

// ParserRow is one line of the parser table: the medians of one
// benchmark over its runs.
type ParserRow struct {
	// Benchmark is the input or case ("Parse/minimal-GET"); Parser the
	// implementation ("asyncd", "wildcat", "net-http"), Label its name.
	Benchmark   string  `json:"benchmark"`
	Parser      string  `json:"parser"`
	Label       string  `json:"label"`
	Runs        int     `json:"runs"`
	NsPerOp     float64 `json:"ns_per_op"`
	MBPerS      float64 `json:"mb_per_s"`
	BytesPerOp  float64 `json:"b_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	// Speedup is this parser's ns/op divided by asyncd's on the same
	// benchmark: how many times faster asyncd was (1 on asyncd's own
	// row); 0 when the benchmark has no asyncd result.
	Speedup float64 `json:"speedup"`
}

// parserLabels names the implementations httpparse's benchmarks compare.
var parserLabels = map[string]string{"asyncd": "asyncd", "wildcat": "wildcat", "net-http": "net/http"}

// splitBench splits "Parse/minimal-GET/net-http" into the benchmark and
// the parser. A name whose last element is not a known parser is asyncd's
// own ("Incremental").
func splitBench(name string) (bench, parser string) {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		if _, ok := parserLabels[name[i+1:]]; ok {
			return name[:i], name[i+1:]
		}
	}
	return name, "asyncd"
}

func parserRows(benches []GoBench) []ParserRow {
	type key struct{ bench, parser string }
	var order []key
	runs := map[key][]GoBench{}
	for _, b := range benches {
		bench, parser := splitBench(b.Name)
		k := key{bench, parser}
		if _, ok := runs[k]; !ok {
			order = append(order, k)
		}
		runs[k] = append(runs[k], b)
	}
	median := func(bs []GoBench, f func(GoBench) float64) float64 {
		v := make([]float64, len(bs))
		for i, b := range bs {
			v[i] = f(b)
		}
		return Median(v)
	}
	var out []ParserRow
	asyncdNs := map[string]float64{}
	for _, k := range order {
		bs := runs[k]
		r := ParserRow{
			Benchmark: k.bench, Parser: k.parser, Label: parserLabels[k.parser], Runs: len(bs),
			NsPerOp:     median(bs, func(b GoBench) float64 { return b.NsPerOp }),
			MBPerS:      median(bs, func(b GoBench) float64 { return b.MBPerS }),
			BytesPerOp:  median(bs, func(b GoBench) float64 { return b.BytesPerOp }),
			AllocsPerOp: median(bs, func(b GoBench) float64 { return b.AllocsPerOp }),
		}
		if k.parser == "asyncd" {
			asyncdNs[k.bench] = r.NsPerOp
		}
		out = append(out, r)
	}
	for i := range out {
		if a := asyncdNs[out[i].Benchmark]; a > 0 {
			out[i].Speedup = out[i].NsPerOp / a
		}
	}
	return out
}
