package socket

import (
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// AcceptAction says what an accept loop does after an accept error.
type AcceptAction uint8

const (
	// AcceptDrained: the accept queue is empty (EAGAIN); wait for the next
	// readiness or completion.
	AcceptDrained AcceptAction = iota
	// AcceptRetry: this one connection failed (it was aborted or carried a
	// pending network error, see accept(2)); accept the next one.
	AcceptRetry
	// AcceptBackoff: the process or system is out of a resource (EMFILE,
	// ENFILE, ENOBUFS, ENOMEM) or the error is unknown. Retrying at once would
	// spin, since the connection stays queued; stop accepting from this
	// listener for a while, keep serving existing connections, and log.
	AcceptBackoff
)

// ClassifyAcceptError maps an accept error to the action to take. It does not
// allocate for a bare unix.Errno.
func ClassifyAcceptError(err error) AcceptAction {
	errno, ok := err.(unix.Errno)
	if !ok {
		// Only wrapped errors pay for errors.As (its target escapes).
		var e unix.Errno
		if !errors.As(err, &e) {
			return AcceptBackoff
		}
		errno = e
	}
	switch errno {
	case unix.EAGAIN:
		return AcceptDrained
	case unix.EINTR, unix.ECONNABORTED, unix.EPROTO,
		// accept(2): Linux passes pending network errors of the new
		// socket up from accept; treat them like a lost connection.
		unix.ENETDOWN, unix.ENOPROTOOPT, unix.EHOSTDOWN, unix.ENONET,
		unix.EHOSTUNREACH, unix.EOPNOTSUPP, unix.ENETUNREACH, unix.ETIMEDOUT,
		unix.ECONNRESET:
		return AcceptRetry
	}
	return AcceptBackoff
}

// LogLimiter lets at most one log line through per interval and counts the
// ones it held back, so that an accept error storm (EMFILE under load) costs
// one line per second, not one per attempt. The zero value is ready to use and
// it is safe for concurrent use.
type LogLimiter struct {
	next    atomic.Int64 // unix nanos before which lines are dropped
	dropped atomic.Int64
}

// Allow reports whether a line may be logged now; if so it also returns how
// many lines were dropped since the last one allowed.
func (l *LogLimiter) Allow(now time.Time, every time.Duration) (ok bool, dropped int64) {
	t := now.UnixNano()
	next := l.next.Load()
	if t < next || !l.next.CompareAndSwap(next, t+int64(every)) {
		l.dropped.Add(1)
		return false, 0
	}
	return true, l.dropped.Swap(0)
}
