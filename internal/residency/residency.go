// Package residency gives back, once a process has started, the memory it
// holds only because start-up touched it: the Go heap that start-up left
// free (returned to the kernel), and the pages of the executable's
// read-only mappings (code and constant data) that start-up faulted in.
//
// Why: the supervisor and the serving process map the same executable,
// and resident-memory figures (VmRSS, what ps, top and most benchmarks
// sum per process) count every page of it that a process has touched, in
// each process. Start-up touches much of it (every package's init, config
// parsing and validation, plugin factories); afterwards the supervisor
// runs a small loop and the serving process its request path. Dropping
// those pages from the process's page tables (madvise MADV_DONTNEED on
// read-only, private, file-backed mappings) changes nothing a program can
// observe: the kernel keeps the file's pages in its page cache, shared,
// and the next access maps the page again with a minor fault. Nothing
// writable is touched.
package residency

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"

	"golang.org/x/sys/unix"
)

// Shed returns the free heap to the kernel and drops the executable's
// read-only pages from this process's resident set; it reports how many
// bytes of those mappings it advised. Safe to call from any goroutine, at
// any time; it costs one garbage collection and a few system calls.
func Shed() (int64, error) {
	debug.FreeOSMemory()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("residency: find the executable: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("residency: read /proc/self/maps: %w", err)
	}
	return dropReadOnly(maps, exe)
}

// dropReadOnly advises MADV_DONTNEED on every read-only private mapping of
// path listed in maps (/proc/self/maps) and returns the bytes advised.
func dropReadOnly(maps []byte, path string) (int64, error) {
	var advised int64
	for _, m := range readOnlyMappings(maps, path) {
		// The raw call: the range is an address from /proc/self/maps, not
		// memory Go allocated, so no slice is made over it.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); errno != 0 {
			return advised, fmt.Errorf("residency: madvise %s %x-%x: %w", path, m.start, m.end, errno)
		}
		advised += int64(m.end - m.start)
	}
	return advised, nil
}

// mapping is one line of /proc/PID/maps that Shed may drop.
type mapping struct{ start, end uintptr }

// readOnlyMappings picks, from /proc/PID/maps, the private mappings of
// path that can be neither written nor were ever writable in place: perms
// "r--p" or "r-xp". A private writable mapping ("rw-p": the executable's
// data) may hold this process's writes, which MADV_DONTNEED would discard.
func readOnlyMappings(maps []byte, path string) []mapping {
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// address perms offset dev inode pathname
		f := bytes.Fields(sc.Bytes())
		if len(f) < 6 || string(bytes.Join(f[5:], []byte(" "))) != path {
			continue
		}
		if p := string(f[1]); p != "r--p" && p != "r-xp" {
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		out = append(out, mapping{uintptr(start), uintptr(end)})
	}
	return out
}
