package serving

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
)

// RSS returns the process's resident set size in bytes, read from
// /proc/self/statm, or 0 if it cannot be read.
func RSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// Goroutines returns a dump of every goroutine's stack, for the error log
// when a loop stops answering (Gunicorn's worker timeout, made useful).
func Goroutines() string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return string(buf[:n])
}
