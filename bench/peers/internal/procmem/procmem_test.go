package procmem

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParsePPID(t *testing.T) {
	tests := []struct {
		stat    string
		want    int
		wantErr bool
	}{
		{"123 (bash) S 45 123 123 0", 45, false},
		{"7 (a) b (c)) R 1 7 7", 1, false},
		{"9 (weird name) S 2", 2, false},
		{"9 no paren S 2", 0, true},
		{"9 (x) S", 0, true},
	}
	for _, tt := range tests {
		got, err := parsePPID([]byte(tt.stat))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parsePPID(%q) = %d, %v; want %d, err=%v", tt.stat, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRSSFrom(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          int64
		wantErr       bool
	}{
		{"normal", "Name:\tx\nVmPeak:\t  10 kB\nVmRSS:\t    2048 kB\n", 2048 * 1024, false},
		{"zombie", "Name:\tx\nState:\tZ\n", 0, true},
		{"bad unit", "VmRSS:\t 12 MB\n", 0, true},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name)
		if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := rssFrom(p)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: got %d, %v; want %d, err=%v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestTreeRSS starts a real child process and checks it is found under this
// process and that its memory is added to the tree.
func TestTreeRSS(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var pids []int
	deadline := time.Now().Add(2 * time.Second)
	for {
		var err error
		pids, err = Tree(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(pids, cmd.Process.Pid) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !slices.Contains(pids, cmd.Process.Pid) {
		t.Fatalf("child %d not in tree %v", cmd.Process.Pid, pids)
	}
	self, err := RSS(os.Getpid())
	if err != nil || self <= 0 {
		t.Fatalf("RSS(self) = %d, %v", self, err)
	}
	child, err := RSS(cmd.Process.Pid)
	if err != nil || child <= 0 {
		t.Fatalf("RSS(child) = %d, %v", child, err)
	}
	tree, err := TreeRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if tree < self+child/2 {
		t.Fatalf("TreeRSS = %d, want at least self %d + most of child %d", tree, self, child)
	}
	if _, err := TreeRSS(1 << 30); err == nil {
		t.Fatal("TreeRSS of a missing pid succeeded")
	}
}
