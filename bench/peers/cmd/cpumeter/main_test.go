package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
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
		code, err := run(os.Getpid(), tt.args, &out)
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
	if _, err := run(1<<30, []string{"true"}, &out); err == nil || out.Len() != 0 {
		t.Fatalf("run on a missing PID: err %v, output %q; want an error and no line", err, out.String())
	}
}
