// Command gobench turns `go test -bench -benchmem` output (stdin) into the
// runner's raw records (stdout), one {"kind":"gobench"} line per result
// line, so that the parser microbenchmarks reach the report through the
// same raw file as every other measurement. -procs is the GOMAXPROCS the
// benchmarks ran with (go test -cpu), whose "-N" name suffix it removes.
// It exits non-zero when the output holds no result or a malformed one.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/asyncd/asyncd/bench/peers/internal/results"
)

func main() {
	log.SetFlags(0)
	procs := flag.Int("procs", 1, "GOMAXPROCS of the benchmark run (go test -cpu)")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *procs); err != nil {
		log.Fatalf("gobench: %v", err)
	}
}

func run(in io.Reader, out io.Writer, procs int) error {
	benches, err := results.ParseGoBench(in, procs)
	if err != nil {
		return err
	}
	if len(benches) == 0 {
		return fmt.Errorf("no benchmark results in the input")
	}
	enc := json.NewEncoder(out)
	for i := range benches {
		rec := results.Record{Kind: results.KindGoBench, Scenario: results.ScenarioParser, GoBench: &benches[i]}
		if err := enc.Encode(rec); err != nil {
			return fmt.Errorf("write record: %w", err)
		}
	}
	return nil
}
