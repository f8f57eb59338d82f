package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun writes every output from a small raw file and checks each one is
// there and consistent with the printed table.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "run.raw.jsonl")
	raw := `{"kind":"meta","meta":{"runs":1,"pinning":"unpinned"}}
{"kind":"wrk","server":"asyncd-epoll-sync","scenario":"plaintext","run":1,"wrk":{"rps":1000,"p50_us":100,"p99_us":900}}
{"kind":"wrk","server":"nethttp","scenario":"plaintext","run":1,"wrk":{"rps":500,"p50_us":200,"p99_us":1900}}
`
	if err := os.WriteFile(in, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		in        string
		quiet     bool
		wantErr   string
		wantPrint bool
	}{
		{name: "all outputs", in: in, wantPrint: true},
		{name: "quiet", in: in, quiet: true},
		{name: "missing input", in: filepath.Join(dir, "nope"), wantErr: "open raw records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			md, csv, js := filepath.Join(out, "r.md"), filepath.Join(out, "r.csv"), filepath.Join(out, "r.json")
			var stdout bytes.Buffer
			err := run(tt.in, md, csv, js, "r.svg", "", tt.quiet, &stdout)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mdText, _ := os.ReadFile(md)
			if !strings.Contains(string(mdText), "| plaintext | net/http | 500 | 200 µs | 1.90 ms | - | 0 | 0.50x | - | - |") {
				t.Fatalf("markdown:\n%s", mdText)
			}
			if tt.wantPrint != (stdout.String() == string(mdText)) {
				t.Fatalf("printed %d bytes, want printed=%v", stdout.Len(), tt.wantPrint)
			}
			csvText, _ := os.ReadFile(csv)
			jsText, _ := os.ReadFile(js)
			if !strings.Contains(string(csvText), "plaintext,nethttp,net/http,1,500.00") || !strings.Contains(string(jsText), `"ratio": 0.5`) {
				t.Fatalf("csv:\n%s\njson:\n%s", csvText, jsText)
			}
		})
	}
}
