// Package residency gives back, once a process has started, the memory it
// holds only because start-up touched it: the Go heap that start-up left
// free (returned to the kernel), and the pages of read-only file mappings
// (the executable's code and constant data; the C library's and the
// dynamic loader's when cgo linked them) that start-up faulted in.
//
// Why: the supervisor and the serving process map the same executable,
// and resident-memory figures (VmRSS, what ps, top and most benchmarks
// sum per process) count every page of it that a process has touched, in
// each process. Start-up touches much of it (every package's init, config
// parsing and validation, plugin factories); afterwards the supervisor
// runs a small loop and the serving process its request path. Dropping
// those pages from the process's page tables (madvise MADV_DONTNEED on
// read-only, private, file-backed mappings that hold no page of their own)
// changes nothing a program can observe: the kernel keeps the file's pages
// in its page cache, shared, and the next access maps the page again with
// a minor fault. Nothing writable is touched, nor a read-only mapping with
// a private copy of a page (RELRO: the dynamic loader's relocations, made
// read-only after it wrote them; dropping those would lose them).
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

// Shed returns the free heap to the kernel and drops the pages of
// read-only file mappings from this process's resident set; it reports how
// many bytes of those mappings it advised. Safe to call from any goroutine, at
// any time; it costs one garbage collection and a few system calls.
func Shed() (int64, error) {
	debug.FreeOSMemory()
	maps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("residency: read /proc/self/smaps: %w", err)
	}
	return dropReadOnly(maps, func(string) bool { return true })
}

// dropReadOnly advises MADV_DONTNEED on every read-only private file
// mapping without private pages listed in smaps (/proc/self/smaps) whose
// path keep accepts, and returns the bytes advised.
func dropReadOnly(maps []byte, keep func(path string) bool) (int64, error) {
	var advised int64
	for _, m := range readOnlyMappings(maps) {
		if !keep(m.path) {
			continue
		}
		// The raw call: the range is an address from /proc/self/maps, not
		// memory Go allocated, so no slice is made over it.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); errno != 0 {
			return advised, fmt.Errorf("residency: madvise %s %x-%x: %w", m.path, m.start, m.end, errno)
		}
		advised += int64(m.end - m.start)
	}
	return advised, nil
}

// mapping is one line of /proc/PID/maps that Shed may drop.
type mapping struct {
	start, end uintptr
	path       string
}

// readOnlyMappings picks, from /proc/PID/smaps, the private file mappings
// that cannot be written and hold only the file's pages: perms "r--p" or
// "r-xp", a path that names a file (not [vdso], [stack] or anonymous
// memory), and "Anonymous: 0 kB" (no private copy of a page). A writable
// mapping ("rw-p": a program's data) or a read-only one with private
// copies (RELRO) holds data the file does not, which MADV_DONTNEED would
// discard.
func readOnlyMappings(smaps []byte) []mapping {
	var out []mapping
	var cur mapping
	candidate := false
	flush := func() {
		if candidate {
			out = append(out, cur)
		}
		candidate = false
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 0 {
			continue
		}
		if k, isField := bytes.CutSuffix(f[0], []byte(":")); isField {
			// "Anonymous: N kB" of the mapping above.
			if candidate && string(k) == "Anonymous" && (len(f) < 2 || string(f[1]) != "0") {
				candidate = false
			}
			continue
		}
		// A mapping's header: address perms offset dev inode pathname.
		flush()
		if len(f) < 6 || f[5][0] != '/' {
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
		// Candidate until its Anonymous line says otherwise; a kernel
		// without that line (before 2.6.34) never reaches here: smaps
		// has had it since.
		cur, candidate = mapping{uintptr(start), uintptr(end), string(bytes.Join(f[5:], []byte(" ")))}, true
	}
	flush()
	return out
}
