// Command report turns the runner's raw records (bench/results/*.raw.jsonl)
// into the benchmark table: markdown for people (also printed to stdout),
// CSV and JSON for tools; cmd/chart draws the JSON. See internal/results
// for the arithmetic. It reads and writes only the files it is given.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/asyncd/asyncd/bench/peers/internal/results"
)

func main() {
	in := flag.String("in", "", "raw JSONL records written by bench/run.sh (required)")
	md := flag.String("md", "", "write the markdown report here")
	csvPath := flag.String("csv", "", "write the table as CSV here")
	jsonPath := flag.String("json", "", "write the summary as JSON here (input of cmd/chart)")
	chart := flag.String("chart", "", "image path the markdown links to")
	title := flag.String("title", "", "markdown heading (default \"asyncd benchmarks\")")
	quiet := flag.Bool("quiet", false, "do not print the markdown to stdout")
	flag.Parse()
	if *in == "" {
		log.Fatal("report: -in is required")
	}
	if err := run(*in, *md, *csvPath, *jsonPath, *chart, *title, *quiet, os.Stdout); err != nil {
		log.Fatalf("report: %v", err)
	}
}

func run(in, md, csvPath, jsonPath, chart, title string, quiet bool, stdout io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("open raw records: %w", err)
	}
	recs, err := results.Read(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	s := results.Summarize(recs)
	var mdBuf bytes.Buffer
	if err := results.WriteMarkdown(&mdBuf, s, results.MarkdownOptions{Chart: chart, Title: title}); err != nil {
		return err
	}
	outputs := []struct {
		path  string
		write func(io.Writer) error
	}{
		{md, func(w io.Writer) error { _, err := w.Write(mdBuf.Bytes()); return err }},
		{csvPath, func(w io.Writer) error { return results.WriteCSV(w, s) }},
		{jsonPath, func(w io.Writer) error { return results.WriteJSON(w, s) }},
	}
	for _, o := range outputs {
		if o.path == "" {
			continue
		}
		if err := writeFile(o.path, o.write); err != nil {
			return err
		}
	}
	if !quiet {
		if _, err := stdout.Write(mdBuf.Bytes()); err != nil {
			return fmt.Errorf("print report: %w", err)
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
