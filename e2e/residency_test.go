package e2e

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"
)

// exeResidency is, for process pid, the resident and the mapped size of
// its executable's code (the r-xp mappings of /proc/PID/exe's path), in
// KiB, from /proc/PID/smaps.
func exeResidency(t *testing.T, pid int) (rss, size int64) {
	t.Helper()
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 0 {
			continue
		}
		if !bytes.HasSuffix(f[0], []byte(":")) {
			in = len(f) >= 6 && string(f[1]) == "r-xp" && string(bytes.Join(f[5:], []byte(" "))) == exe
			continue
		}
		if !in {
			continue
		}
		n, _ := strconv.ParseInt(string(f[1]), 10, 64)
		switch string(f[0]) {
		case "Size:":
			size += n
		case "Rss:":
			rss += n
		}
	}
	return rss, size
}

// TestStartupCodeNotResident: once a generation is ready, neither the
// supervisor nor the serving process keeps the executable's code that
// start-up touched resident (internal/residency). Start-up alone (init of
// every package, config, plugins, race runtime) leaves well over a third of
// the code resident; a process that has shed it and only waits holds a
// small part. Both go on serving and reloading afterwards.
func TestStartupCodeNotResident(t *testing.T) {
	s := startServer(t, baseConfig, options{})
	s.waitLog(`msg="serving process ready"`, 1)
	pids := map[string]int{"supervisor": s.cmd.Process.Pid, "serving process": s.ready(1).pid}
	for name, pid := range pids {
		// Shedding follows READY on each side: wait for it rather than
		// assume it is done.
		deadline := time.Now().Add(waitFor)
		for {
			rss, size := exeResidency(t, pid)
			if size == 0 {
				t.Fatalf("%s (pid %d): no code mapping of its executable in smaps", name, pid)
			}
			if rss*4 < size {
				t.Logf("%s: %d of %d KiB of code resident", name, rss, size)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s (pid %d): %d of %d KiB of its code still resident %s after ready; want under a quarter", name, pid, rss, size, waitFor)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if r := get(t, "tcp", s.addr(), "/"); r.body != "v1" {
		t.Fatalf("GET / after shedding: %q, want v1", r.body)
	}
}
