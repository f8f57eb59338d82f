// Package procmem reads the resident memory of a server under benchmark
// from /proc: VmRSS of a process and of its whole process tree, because
// asyncd (supervisor + serving process), nginx (master + workers) and
// Gunicorn (arbiter + workers) serve from children of the PID the runner
// started.
//
// It only reads /proc; it must not signal or change any process.
package procmem

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// RSS returns VmRSS of pid in bytes.
func RSS(pid int) (int64, error) {
	return rssFrom(filepath.Join("/proc", strconv.Itoa(pid), "status"))
}

func rssFrom(statusPath string) (int64, error) {
	f, err := os.Open(statusPath)
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		return parseKB(v)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", statusPath, err)
	}
	// Zombies and kernel threads have no VmRSS line.
	return 0, fmt.Errorf("%s: no VmRSS line", statusPath)
}

// parseKB parses "   1234 kB".
func parseKB(v []byte) (int64, error) {
	f := bytes.Fields(v)
	if len(f) != 2 || string(f[1]) != "kB" {
		return 0, fmt.Errorf("VmRSS %q: unexpected format", v)
	}
	n, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("VmRSS %q: %w", v, err)
	}
	return n * 1024, nil
}

// Tree returns pid and all its descendants.
func Tree(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		pp, err := parsePPID(stat)
		if err != nil {
			continue
		}
		children[pp] = append(children[pp], p)
	}
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out, nil
}

// parsePPID reads field 4 of /proc/PID/stat; the command name (field 2)
// may hold spaces and parentheses, so fields are counted after the last ')'.
func parsePPID(stat []byte) (int, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no command name", stat)
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("stat %q: too few fields", stat)
	}
	return strconv.Atoi(string(f[1]))
}

// TreeRSS sums VmRSS over pid and its descendants. Pages shared between
// them are counted in each, so compare a tree with itself over time (as
// the idle-connection and flood tools do), not across servers of
// different process shapes.
func TreeRSS(pid int) (int64, error) {
	pids, err := Tree(pid)
	if err != nil {
		return 0, err
	}
	var sum int64
	for i, p := range pids {
		n, err := RSS(p)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue // a child that exited or is a zombie holds no memory
		}
		sum += n
	}
	return sum, nil
}
