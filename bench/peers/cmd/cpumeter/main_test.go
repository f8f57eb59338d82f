package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantLine bool
		wantErr  bool
	}{
		{"success", []string{"sh", "-c", "exit 0"}, 0, true, false},
		{"the command's status passes through", []string{"sh", "-c", "exit 3"}, 3, true, false},
		{"no such command", []string{"/nonexistent/cpumeter-test"}, 1, false, true},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		code, err := run(os.Getpid(), tt.args, &out, options{})
		if code != tt.wantCode || (err != nil) != tt.wantErr {
			t.Errorf("%s: code %d, err %v; want %d, err=%v", tt.name, code, err, tt.wantCode, tt.wantErr)
		}
		line, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "CPUMETER ")
		if ok != tt.wantLine {
			t.Errorf("%s: output %q, want a CPUMETER line: %v", tt.name, out.String(), tt.wantLine)
			continue
		}
		if !ok {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Errorf("%s: %q: %v", tt.name, line, err)
		}
		if r.ClkTck <= 0 || r.Procs < 1 || r.CPUUS != float64(r.Ticks)*1e6/float64(r.ClkTck) {
			t.Errorf("%s: inconsistent result %+v", tt.name, r)
		}
	}
}

func TestRunNoProcess(t *testing.T) {
	var out bytes.Buffer
	// PIDs are below 2^22 on Linux: this one cannot exist.
	if _, err := run(1<<30, []string{"true"}, &out, options{}); err == nil || out.Len() != 0 {
		t.Fatalf("run on a missing PID: err %v, output %q; want an error and no line", err, out.String())
	}
}

// TestRunRSSAndAlso: -rss reports this test process's tree's memory (it is
// resident, so never 0) and -also a second tree's CPU time apart.
func TestRunRSSAndAlso(t *testing.T) {
	var out bytes.Buffer
	// The command burns some CPU in a child of the -also tree (this
	// process), so also_cpu_us may be above 0; it must be present and
	// consistent, and the server's own figure must not include it twice.
	code, err := run(os.Getpid(), []string{"sh", "-c", "sleep 0.3"}, &out, options{rss: true, interval: 50 * time.Millisecond, also: os.Getpid()})
	if code != 0 || err != nil {
		t.Fatalf("run: code %d, err %v", code, err)
	}
	line, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "CPUMETER ")
	if !ok {
		t.Fatalf("output %q: no CPUMETER line", out.String())
	}
	var r Result
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if r.RSSPeak <= 0 {
		t.Errorf("rss_peak %d with -rss: want the tree's resident memory", r.RSSPeak)
	}
	if !strings.Contains(line, `"rss_peak"`) {
		t.Errorf("%q: no rss_peak field", line)
	}
	var plain bytes.Buffer
	if _, err := run(os.Getpid(), []string{"true"}, &plain, options{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "rss_peak") || strings.Contains(plain.String(), "also_cpu_us") {
		t.Errorf("without -rss and -also: %q has their fields", plain.String())
	}
}
