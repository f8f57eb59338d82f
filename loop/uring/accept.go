package uring

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/internal/server"
	"github.com/asyncd/asyncd/loop/socket"
	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

// acceptBatch is the most accepts per listener per round, so that one busy
// listener cannot starve the loop.
const acceptBatch = 128

// listenerState is one loop's view of one listener; loop goroutine only.
type listenerState struct {
	server.Listener
	idx     uint32 // index in eventLoop.listeners, the slot in user_data
	armed   bool   // a multishot readiness poll is in flight
	cancel  bool   // and a cancel for it too
	more    bool   // the last batch stopped at acceptBatch: accept again next round
	stopped bool   // StopAccepting: never re-armed
	rearmAt int64  // loop clock (ns) at which a backed-off listener is re-armed; 0: none
}

// armAccept arms a multishot poll for readiness on the listener; the loop
// accepts with accept4 itself (acceptBatch). Not IORING_OP_ACCEPT: the
// kernel arms an accept's internal poll with EPOLLEXCLUSIVE (io_uring/opdef.c,
// .poll_exclusive), and an exclusive waiter that is woken ends the wake-up
// there. The supervisor hands the same listening socket to every
// generation, so an old generation's accept that is woken while its loop
// cannot run (stuck in a handler, the process stopped, a drain command not
// yet seen) keeps the connection from the new generation, which is never
// woken, until another connection arrives (issue 17). A plain poll is not
// exclusive: every server polling the socket is woken, and whichever
// accepts first gets the connection.
func (l *eventLoop) armAccept(ln *listenerState) {
	sqe := l.sqe()
	sqe.PreparePollMultishot(ln.FD, unix.POLLIN)
	sqe.UserData = userData(kindAccept, 0, ln.idx)
	ln.armed, ln.cancel = true, false
	l.inflight++
}

func (l *eventLoop) cancelAccept(ln *listenerState) {
	if ln.armed && !ln.cancel {
		ln.cancel = true
		l.cancel(userData(kindAccept, 0, ln.idx))
	}
}

// onAccept handles a completion of a listener's readiness poll.
func (l *eventLoop) onAccept(ln *listenerState, res int32, flags uint32) {
	if flags&giouring.CQEFMore == 0 {
		ln.armed, ln.cancel = false, false
		l.inflight--
	}
	if res > 0 {
		l.acceptBatch(ln)
	} else if e := errnoOf(res); res < 0 && e != unix.ECANCELED {
		l.backOff(ln, fmt.Errorf("poll: %w", e))
	}
	if !ln.armed && !ln.stopped && !l.stopping && ln.rearmAt == 0 {
		// The kernel ended the multishot (or the poll failed once):
		// arming again reports a connection already queued at once.
		l.armAccept(ln)
	}
}

// acceptBatch accepts up to acceptBatch connections from a ready listener.
// The poll is edge-triggered (one completion however many connections
// arrived since the last), so it accepts until EAGAIN, or marks the
// listener to continue next round.
func (l *eventLoop) acceptBatch(ln *listenerState) {
	ln.more = false
	for i := 0; i < acceptBatch; i++ {
		// Accepting: see server.Server.noAccept.
		if ln.stopped || l.stopping || ln.rearmAt != 0 || !l.s.Accepting() {
			return
		}
		switch fd, drained, err := socket.AcceptNext(ln.FD, &l.rsa); {
		case drained:
			return
		case err != nil:
			l.backOff(ln, err)
			return
		default:
			l.open(fd, ln)
		}
	}
	ln.more = true
}

// backOff stops polling ln for AcceptBackoff after err (out of descriptors
// or memory: the connection stays queued, so accepting again at once would
// spin); existing connections carry on.
func (l *eventLoop) backOff(ln *listenerState, err error) {
	l.s.LogAcceptError(l.now, l.idx, ln.Addr, err)
	ln.rearmAt = max(l.nowNs+l.backoff, 1)
	l.cancelAccept(ln)
}

// acceptMore continues the listeners whose last batch was cut short.
func (l *eventLoop) acceptMore() {
	for _, ln := range l.listeners {
		if ln.more {
			l.acceptBatch(ln)
		}
	}
}

// stopAccepting cancels this loop's accepts for good.
func (l *eventLoop) stopAccepting() {
	for _, ln := range l.listeners {
		ln.stopped = true
		ln.more = false
		ln.rearmAt = 0
		l.cancelAccept(ln)
	}
}

func (l *eventLoop) open(fd int, ln *listenerState) {
	c := &conn{l: l, fd: int32(fd)}
	c.local = ln.Local
	if !ln.Unix {
		// Best effort: a failure only costs latency.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c.remote = socket.AddrPortFrom(&l.rsa)
	}
	var slot uint32
	if n := len(l.free); n > 0 {
		slot = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		slot = uint32(len(l.conns))
		l.conns = append(l.conns, nil)
	}
	l.gen = (l.gen + 1) & genMask
	c.slot, c.gen = slot, l.gen
	l.conns[slot] = c
	l.nconns.Add(1)
	l.h.OnOpen(c)
	l.service(c)
}
