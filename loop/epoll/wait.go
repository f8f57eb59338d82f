package epoll

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// When nothing is ready the loop must sleep until an event or its next
// timer. Sleeping in epoll_wait through syscall.Syscall holds an OS thread
// in a system call: the runtime wakes its monitor thread (sysmon) to take
// the P back, hands the P off, and wakes sysmon again when the call
// returns, which under load (a loop busy most of the time, sleeping a few
// thousand times a second) costs a futex wake-up and a sysmon pass per
// sleep on the loop's own core (docs/benchmarks.md). Instead the loop's
// epoll descriptor, which is itself pollable, is registered with Go's
// netpoller and the loop goroutine parks on it like any network
// goroutine: the runtime's own epoll_wait, which it makes anyway when its
// P has nothing to run, wakes it when the loop's set has an event, and a
// read deadline wakes it at the timer.

// netpollWait is false only in tests of the fallback, where loops sleep in
// epoll_wait.
var netpollWait = true

// waiter is the loop's epoll descriptor as the netpoller sees it; loop
// goroutine only.
type waiter struct {
	f    *os.File        // a duplicate of the epoll descriptor, registered with the netpoller
	rc   syscall.RawConn // f's raw conn: Read parks until f is readable
	l    *eventLoop
	poll func(uintptr) bool // w.pollOnce, bound once so Read allocates nothing
	n    int
	err  error
	dl   int64 // the read deadline set last (loop clock); changes once a tick
}

// newWaiter duplicates epfd and registers the duplicate with the
// netpoller. It returns nil, nil when the runtime cannot poll it (the loop
// then sleeps in epoll_wait as a system call).
func newWaiter(l *eventLoop) (*waiter, error) {
	if !netpollWait {
		return nil, nil
	}
	// O_NONBLOCK lives on the open file description: epoll_wait ignores
	// it; os.NewFile needs it to register the descriptor.
	if err := unix.SetNonblock(l.epfd, true); err != nil {
		return nil, fmt.Errorf("set epoll descriptor non-blocking: %w", err)
	}
	fd, err := unix.FcntlInt(uintptr(l.epfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup epoll descriptor: %w", err)
	}
	w := &waiter{f: os.NewFile(uintptr(fd), "epoll"), l: l}
	// SetReadDeadline fails on a file the netpoller did not take.
	if err := w.f.SetReadDeadline(time.Time{}); err != nil {
		w.f.Close()
		return nil, nil
	}
	if w.rc, err = w.f.SyscallConn(); err != nil {
		w.f.Close()
		return nil, fmt.Errorf("epoll descriptor raw conn: %w", err)
	}
	w.poll = w.pollOnce
	return w, nil
}

// pollOnce is the raw conn's read callback: one non-blocking epoll_wait;
// false (park) while nothing is ready.
func (w *waiter) pollOnce(uintptr) bool {
	w.n, w.err = pollNow(w.l.epfd, w.l.events)
	return w.n > 0 || (w.err != nil && w.err != unix.EINTR)
}

// wait returns the loop's ready events: it polls once and, only if nothing
// is ready, parks the goroutine until there is something or until the loop
// clock passes deadline (ns since l.start). The loop calls it instead of
// polling first itself: Read's first pollOnce is that poll (it must be:
// Read clears a readiness the netpoller saw before it), so a sleep costs
// one epoll_wait less.
func (w *waiter) wait(deadline int64) (int, error) {
	if deadline != w.dl {
		if err := w.f.SetReadDeadline(w.l.start.Add(time.Duration(deadline))); err != nil {
			return 0, fmt.Errorf("set wait deadline: %w", err)
		}
		w.dl = deadline
	}
	w.n, w.err = 0, nil
	if err := w.rc.Read(w.poll); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, fmt.Errorf("wait on epoll descriptor: %w", err)
	}
	return w.n, w.err
}

// close deregisters and closes the duplicate.
func (w *waiter) close() { w.f.Close() }

// deadline returns when the loop must next wake with nothing ready (loop
// clock, ns): the next tick or listener re-arm.
func (l *eventLoop) deadline() int64 {
	d := l.nextTick
	for _, ln := range l.listeners {
		if !ln.armed && !ln.stopped && ln.rearmAt < d {
			d = ln.rearmAt
		}
	}
	return d
}

// msUntil converts a positive wait to epoll_wait's milliseconds, rounded up
// so that the loop never wakes early and spins.
func msUntil(d int64) int {
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}
