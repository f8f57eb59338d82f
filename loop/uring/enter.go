package uring

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

// getEventsArg mirrors struct io_uring_getevents_arg
// (include/uapi/linux/io_uring.h): io_uring_enter's argument with
// IORING_ENTER_EXT_ARG. giouring.GetEventsArg has unexported fields.
type getEventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWait   uint32 // min_wait_usec (6.12); 0: unused
	ts        uint64 // *struct __kernel_timespec
}

// enter submits the prepared SQEs and, unless work is ready on the loop,
// waits in the same io_uring_enter for a completion or the next timer.
//
// The wait asks for 1 + l.inline completions: l.inline counts the SQEs
// prepared since the last enter that always complete inside the enter that
// submits them (first sends, MSG_DONTWAIT: see submitSend), so their own
// completions do not end the wait. A request/response on a lone connection
// then costs one io_uring_enter (submit the response, sleep until the next
// request) instead of two (submit and reap the send, then sleep). Counting
// too few only costs an extra round; too many cannot happen, since every
// counted SQE posts its completion before the wait starts (and the wait has
// a timeout anyway).
//
// An enter that does not wait is a raw system call (it never sleeps: the
// goroutine keeps its P, as epoll's non-blocking calls do), and is skipped
// when there is nothing to submit and no completion work pending in the
// kernel (IORING_SQ_TASKRUN, IORING_SQ_CQ_OVERFLOW). One that waits goes
// through syscall.Syscall6, so that the runtime can hand the P to other
// goroutines while the thread sleeps.
func (l *eventLoop) enter() error {
	submit := l.ring.FlushSQ()
	inline := l.inline
	l.inline = 0
	fd, regFlag := l.ring.EnterFd()
	var errno syscall.Errno
	if d := l.waitNs(); d <= 0 {
		if submit == 0 && l.ring.SQFlags()&(giouring.SQTaskrun|giouring.SQCQOverflow) == 0 {
			return nil
		}
		l.enters.Add(1)
		_, _, errno = syscall.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(submit), 0,
			uintptr(giouring.EnterGetEvents|regFlag), 0, 0)
	} else {
		l.ts = syscall.NsecToTimespec(d)
		l.arg.ts = uint64(uintptr(unsafe.Pointer(&l.ts)))
		l.enters.Add(1)
		_, _, errno = syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(submit), uintptr(1+inline),
			uintptr(giouring.EnterGetEvents|giouring.EnterExtArg|regFlag),
			uintptr(unsafe.Pointer(&l.arg)), unsafe.Sizeof(l.arg))
	}
	switch errno {
	case 0, unix.ETIME, unix.EINTR, unix.EAGAIN, unix.EBUSY:
		// ETIME: the timeout; EINTR: a signal (the Go runtime preempts
		// threads with SIGURG); EAGAIN/EBUSY: the kernel is short of
		// resources or the CQ overflowed: reap, then try again.
		return nil
	case unix.EBADR:
		// The kernel could not keep an overflowing completion and
		// dropped it: a request may never report. Keep serving; a stop
		// then gives up waiting for it (stopDrainTimeout).
		l.s.Cfg.Logger.Error("io_uring dropped completions (CQ overflow)", "loop", l.idx)
		return nil
	}
	return errno
}

// waitNs returns how long enter may wait: 0 if work is ready, else until the
// next tick, listener re-arm or stop deadline.
func (l *eventLoop) waitNs() int64 {
	if len(l.ready) > 0 {
		return 0
	}
	d := l.nextTick
	for _, ln := range l.listeners {
		if ln.more {
			return 0
		}
		if ln.rearmAt != 0 && ln.rearmAt < d {
			d = ln.rearmAt
		}
	}
	if l.stopping {
		d = min(d, l.stopAt)
	}
	return d - l.nowNs
}
