package proccpu

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A real line's shape: pid (comm) state ppid pgrp session tty tpgid
	// flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
	tests := []struct {
		name    string
		stat    string
		want    Times
		wantErr bool
	}{
		{"plain", "4242 (asyncd) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 89 10 20 0 8 0 100 0", Times{1234, 567, 89, 10}, false},
		{"name with spaces and parens", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 5 6 7 8 20 0", Times{5, 6, 7, 8}, false},
		{"exactly 17 fields", "9 (x) S 1 9 9 0 -1 0 0 0 0 0 1 2 3 4", Times{1, 2, 3, 4}, false},
		{"too few fields", "9 (x) S 1 9 9 0 -1 0 0 0 0 0 1 2 3", Times{}, true},
		{"no name", "9 x S 1 9 9 0 -1 0 0 0 0 0 1 2 3 4", Times{}, true},
		{"not a number", "9 (x) S 1 9 9 0 -1 0 0 0 0 0 1 two 3 4", Times{}, true},
	}
	for _, tt := range tests {
		got, err := parseStat([]byte(tt.stat))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: parseStat = %+v, %v; want %+v, err=%v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestTotal(t *testing.T) {
	if got := (Times{1, 2, 3, 4}).Total(); got != 10 {
		t.Fatalf("Total = %d, want 10", got)
	}
}

func TestSumTimes(t *testing.T) {
	times := map[int]Times{
		10: {User: 100, System: 50, ChildUser: 7, ChildSystem: 3}, // a supervisor
		11: {User: 900, System: 400},                              // its serving process
		12: {User: 1, System: 1},
	}
	read := func(pid int) (Times, error) {
		if t, ok := times[pid]; ok {
			return t, nil
		}
		return Times{}, errors.New("no such process")
	}
	tests := []struct {
		name    string
		pids    []int
		want    Sample
		wantErr bool
	}{
		{"root and children", []int{10, 11, 12}, Sample{Ticks: 160 + 1300 + 2, Procs: 3}, false},
		{"a child exited meanwhile", []int{10, 99, 11}, Sample{Ticks: 160 + 1300, Procs: 2}, false},
		{"root gone", []int{99, 10}, Sample{}, true},
	}
	for _, tt := range tests {
		got, err := sumTimes(tt.pids, read)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: sumTimes = %+v, %v; want %+v, err=%v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func auxv(pairs ...uint64) []byte {
	b := make([]byte, 8*len(pairs))
	for i, v := range pairs {
		binary.NativeEndian.PutUint64(b[8*i:], v)
	}
	return b
}

func TestClockTicksFrom(t *testing.T) {
	tests := []struct {
		name    string
		auxv    []byte
		want    int64
		wantErr bool
	}{
		{"found", auxv(6, 4096, 17, 100, 25, 12345, 0, 0), 100, false},
		{"other rate", auxv(17, 250, 0, 0), 250, false},
		{"after the end marker", auxv(6, 4096, 0, 0, 17, 100), 0, true},
		{"missing", auxv(6, 4096, 0, 0), 0, true},
		{"zero", auxv(17, 0, 0, 0), 0, true},
		{"truncated", auxv(6, 4096, 17)[:20], 0, true},
	}
	for _, tt := range tests {
		got, err := clockTicksFrom(tt.auxv)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: clockTicksFrom = %d, %v; want %d, err=%v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestClockTicksHere reads this machine's rate: Linux reports USER_HZ,
// 100, through AT_CLKTCK on every architecture.
func TestClockTicksHere(t *testing.T) {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		t.Skipf("no /proc/self/auxv: %v", err)
	}
	hz, err := clockTicksFrom(b)
	if err != nil {
		t.Fatalf("this process's auxv: %v", err)
	}
	if hz != 100 || ClockTicks() != hz {
		t.Fatalf("AT_CLKTCK %d, ClockTicks %d; want 100", hz, ClockTicks())
	}
}

func TestMicros(t *testing.T) {
	if got := Micros(250, 100); got != 2.5e6 {
		t.Fatalf("Micros(250, 100) = %v, want 2.5e6", got)
	}
	if got := Micros(5, 0); got != 0 {
		t.Fatalf("Micros(5, 0) = %v, want 0", got)
	}
}

// TestTreeSampleKeepsExitedChildren runs sh -> timeout -> yes: while yes
// spins the tree counts it, and once it has exited (reaped by timeout,
// timeout reaped by sh) its time stays in the tree through the cutime and
// cstime of the processes that waited for it, so the sum never drops.
func TestTreeSampleKeepsExitedChildren(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CPU-bound child for a second")
	}
	for _, tool := range []string{"sh", "timeout", "yes", "sleep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	cmd := exec.Command("sh", "-c", "timeout 1 yes >/dev/null; exec sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var running Sample
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := TreeSample(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if s.Procs >= 3 && s.Ticks > 0 {
			running = s // sh, timeout and yes, and yes has run
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw the three processes with CPU time: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		root, err := ProcessTimes(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if root.ChildUser+root.ChildSystem > 0 {
			break // timeout (with yes's time) was reaped by sh
		}
		if time.Now().After(deadline) {
			t.Fatalf("the root never reaped a child with CPU time: %+v", root)
		}
		time.Sleep(20 * time.Millisecond)
	}
	after, err := TreeSample(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if after.Ticks < running.Ticks {
		t.Fatalf("the tree's time dropped from %d to %d ticks when its busy child exited", running.Ticks, after.Ticks)
	}
}
