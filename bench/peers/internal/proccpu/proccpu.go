// Package proccpu reads the CPU time a server under benchmark has used,
// from /proc: user plus system time of a process and its whole process
// tree, because asyncd (supervisor + serving process), nginx (master +
// workers), h2o and Gunicorn (arbiter + workers) serve from children of
// the PID the runner started.
//
// It only reads /proc; it must not signal or change any process.
package proccpu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/asyncd/asyncd/bench/peers/internal/procmem"
)

// Times are the CPU times of one process from /proc/PID/stat, in clock
// ticks: its own (all its threads) and those of its children that have
// exited and been waited for.
type Times struct {
	User, System           uint64 // fields 14 and 15: utime, stime
	ChildUser, ChildSystem uint64 // fields 16 and 17: cutime, cstime
}

// Total is all four: a process's own time plus that of its reaped
// children, so that a child that exits between two samples of a tree
// keeps counting (in its parent) instead of vanishing.
func (t Times) Total() uint64 { return t.User + t.System + t.ChildUser + t.ChildSystem }

// parseStat reads fields 14 to 17 of /proc/PID/stat. The command name
// (field 2) may hold spaces and parentheses, so fields are counted after
// the last ')': field 3 (state) is the first one there.
func parseStat(stat []byte) (Times, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Times{}, fmt.Errorf("stat %q: no command name", stat)
	}
	f := bytes.Fields(stat[i+1:])
	const first = 3 // the field number of f[0]
	if len(f) < 17-first+1 {
		return Times{}, fmt.Errorf("stat %q: %d fields after the name, want at least %d", stat, len(f), 17-first+1)
	}
	var v [4]uint64
	for k := range v {
		n, err := strconv.ParseUint(string(f[14-first+k]), 10, 64)
		if err != nil {
			return Times{}, fmt.Errorf("stat field %d: %w", 14+k, err)
		}
		v[k] = n
	}
	return Times{User: v[0], System: v[1], ChildUser: v[2], ChildSystem: v[3]}, nil
}

// ProcessTimes reads /proc/PID/stat.
func ProcessTimes(pid int) (Times, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return Times{}, fmt.Errorf("read cpu times: %w", err)
	}
	return parseStat(b)
}

// Sample is the CPU time of a process tree at one moment.
type Sample struct {
	Ticks uint64 // Times.Total summed over the tree
	Procs int    // processes in the tree
}

// TreeSample sums Times.Total over pid and its descendants. A descendant
// that exits while the tree is read is skipped; the root must be readable.
func TreeSample(pid int) (Sample, error) {
	pids, err := procmem.Tree(pid)
	if err != nil {
		return Sample{}, err
	}
	return sumTimes(pids, ProcessTimes)
}

func sumTimes(pids []int, read func(int) (Times, error)) (Sample, error) {
	var s Sample
	for i, p := range pids {
		t, err := read(p)
		if err != nil {
			if i == 0 {
				return Sample{}, err
			}
			continue // exited meanwhile: its time is now in its parent's
		}
		s.Ticks += t.Total()
		s.Procs++
	}
	return s, nil
}

// atClkTck is the auxiliary-vector key of the kernel's clock-tick rate,
// what sysconf(_SC_CLK_TCK) returns in C.
const atClkTck = 17

// ClockTicks returns the rate of the ticks /proc/PID/stat counts in, read
// from this process's auxiliary vector (/proc/self/auxv, AT_CLKTCK) as
// glibc's sysconf(_SC_CLK_TCK) does; 100, the value Linux has on every
// architecture (USER_HZ), when that cannot be read.
func ClockTicks() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if hz, err := clockTicksFrom(b); err == nil {
		return hz
	}
	return 100
}

// clockTicksFrom finds AT_CLKTCK in an auxiliary vector: pairs of native
// words (key, value), ending with key 0.
func clockTicksFrom(auxv []byte) (int64, error) {
	const word = 8 // 64-bit Linux; the runner only builds for it
	for i := 0; i+2*word <= len(auxv); i += 2 * word {
		key := binary.NativeEndian.Uint64(auxv[i:])
		val := binary.NativeEndian.Uint64(auxv[i+word:])
		if key == 0 {
			break
		}
		if key == atClkTck {
			if val == 0 {
				return 0, errors.New("AT_CLKTCK is 0")
			}
			return int64(val), nil
		}
	}
	return 0, errors.New("no AT_CLKTCK in the auxiliary vector")
}

// Micros converts ticks at hz ticks per second to microseconds.
func Micros(ticks uint64, hz int64) float64 {
	if hz <= 0 {
		return 0
	}
	return float64(ticks) * 1e6 / float64(hz)
}
