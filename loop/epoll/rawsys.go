//go:build !race

package epoll

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's socket reads and writes, and its epoll_wait when it must not
// block, are raw system calls: they never block (every socket is
// non-blocking), so the goroutine keeps its P through them instead of
// entering and leaving each one as a possibly blocking call (the runtime's
// entersyscall/exitsyscall, which can hand the P off). The loop never
// blocks in a system call: with nothing ready it parks on the netpoller
// (wait.go). docs/benchmarks.md (hot-path items 4 and 6) has what each
// measured.
//
// Under the race detector rawsys_race.go uses x/sys/unix's calls instead:
// they tell the detector that a write to a descriptor happens before the
// read that sees it, which tests rely on and raw calls cannot say (the
// detector's synchronisation variable is private to x/sys/unix). The
// binaries the end-to-end, soak and bench runs use are built without it.

// Errors boxed once, so returning one allocates nothing.
var (
	errEAGAIN error = unix.EAGAIN
	errEINTR  error = unix.EINTR
)

func errnoErr(e unix.Errno) error {
	switch e {
	case unix.EAGAIN:
		return errEAGAIN
	case unix.EINTR:
		return errEINTR
	}
	return e
}

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// rawWrite is write(2) on a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// pollNow is epoll_wait(2) with a zero timeout: it returns at once.
func pollNow(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}
