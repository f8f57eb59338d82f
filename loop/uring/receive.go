package uring

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/socket"
	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

// heldCap bounds the input held back on an open, unpaused connection (input
// received but not yet presented): past it the receive is cancelled until
// the held input falls back under it, so user space never buffers more than
// about heldCap plus what was in flight when the cancel took effect.
func (l *eventLoop) heldCap() int { return 4 * l.bufs.size }

func (l *eventLoop) armRecv(c *conn) {
	sqe := l.sqe()
	sqe.PrepareRecvMultishot(int(c.fd), 0, 0, 0)
	sqe.Flags |= giouring.SqeBufferSelect
	sqe.BufIG = bufGroup
	sqe.UserData = userData(kindRecv, c.gen, c.slot)
	c.ops |= opRecv
	l.inflight++
}

// armPoll watches a paused connection (no receive armed) for a reset or
// hang-up, so that its OnClose is not delayed until it is resumed.
func (l *eventLoop) armPoll(c *conn) {
	sqe := l.sqe()
	sqe.PreparePollAdd(int(c.fd), unix.POLLERR|unix.POLLHUP)
	sqe.UserData = userData(kindPoll, c.gen, c.slot)
	c.ops |= opPoll
	l.inflight++
}

func (l *eventLoop) onRecv(c *conn, res int32, flags uint32) {
	if flags&giouring.CQEFMore == 0 {
		// The multishot ended (EOF, error, cancel, no buffers, or the
		// kernel's choice): service re-arms it if the state wants one.
		c.ops &^= opRecv
		c.cancels &^= opRecv
		l.inflight--
		l.markReady(c)
	}
	if flags&giouring.CQEFBuffer != 0 {
		bid := uint16(flags >> giouring.CQEBufferShift)
		if res > 0 && c.state == stOpen {
			l.onData(c, l.bufs.data(bid, int(res)))
		}
		// Returned at once: the bytes were handed on or copied.
		l.bufs.put(bid)
	}
	switch {
	case res > 0:
	case res == 0:
		c.eof = true
		switch c.state {
		case stOpen: // service closes once all input was presented
			l.markReady(c)
		case stClosing:
			if c.pending() == 0 {
				l.finish(c)
			}
		case stLinger:
			l.finish(c) // the lingering close is complete
		}
	default:
		switch e := errnoOf(res); {
		case e == unix.ECANCELED, e == unix.ENOBUFS:
			// Paused or closing; or out of provided buffers, which were
			// returned meanwhile: service re-arms.
		case c.state == stLinger:
			l.finish(c) // the response was sent; the peer just reset
		default:
			l.fail(c, fmt.Errorf("recv: %w", e))
		}
	}
	l.maybeClose(c)
}

// onData handles input from a receive on an open connection.
func (l *eventLoop) onData(c *conn, data []byte) {
	if c.paused || c.held() > 0 {
		// Arrived after PauseRead (before the cancel took effect), or
		// queued behind such input: held back, and presented one read's
		// worth at a time once resumed, as if it were still in the socket.
		c.in = socket.AppendBuffer(c.in, data)
		if !c.paused {
			l.markReady(c)
			if c.held() > l.heldCap() {
				// Held input is presented one read's worth per round,
				// but a multishot receive can deliver many per round:
				// stop it until the handler catches up (service re-arms
				// it), so that the socket, not user space, buffers a
				// client that sends faster than it is served.
				l.cancelOp(c, kindRecv, opRecv)
			}
		}
		return
	}
	if c.in == nil {
		l.deliverDirect(c, data)
		return
	}
	c.in = socket.AppendBuffer(c.in, data)
	c.avail = len(*c.in)
	l.deliverBuffered(c, false)
}

// deliverDirect calls OnRead with the provided buffer itself and copies only
// what is left unconsumed.
func (l *eventLoop) deliverDirect(c *conn, data []byte) {
	l.cur, l.curIn, l.curDirect = c, data, true
	k := l.h.OnRead(c, data)
	l.cur, l.curIn, l.curDirect = nil, nil, false
	if c.state != stOpen {
		return
	}
	if k = min(max(k, 0), len(data)); k < len(data) {
		// c.in is nil: nothing but quiesce (Detach) appends during OnRead.
		c.in = socket.GetBuffer(len(data) - k)
		*c.in = append(*c.in, data[k:]...)
		c.avail = len(*c.in)
	}
}

// deliverBuffered calls OnRead with the buffered input c.in[:avail]; with
// extend (or nothing left over) one more read's worth of held input is added
// first.
func (l *eventLoop) deliverBuffered(c *conn, extend bool) {
	if c.in == nil {
		return
	}
	if extend || c.avail == 0 {
		c.avail += min(c.held(), l.bufs.size)
	}
	if c.avail == 0 {
		return
	}
	in := (*c.in)[:c.avail]
	l.cur, l.curIn, l.curDirect = c, in, false
	k := l.h.OnRead(c, in)
	l.cur, l.curIn = nil, nil
	if c.state != stOpen {
		return // closed (c.in is freed with c) or detached (c.in handed over)
	}
	k = min(max(k, 0), len(in))
	if buf := *c.in; k == len(buf) {
		socket.PutBuffer(c.in)
		c.in, c.avail = nil, 0
	} else if k > 0 {
		*c.in = buf[:copy(buf, buf[k:])]
		c.avail -= k
		c.in = socket.ShrinkBuffer(c.in)
	}
	if c.held() > 0 && !c.paused {
		l.markReady(c) // the next read's worth, next round
	}
}

func (l *eventLoop) onPoll(c *conn, res int32) {
	c.ops &^= opPoll
	c.cancels &^= opPoll
	l.inflight--
	switch {
	case res > 0 && res&(unix.POLLERR|unix.POLLHUP) != 0 && c.state == stOpen:
		l.fail(c, socket.PendingError(int(c.fd)))
	case res > 0:
		// Hang-up of the peer's side only (POLLRDHUP): re-arming would
		// fire again at once. The EOF is read once resumed.
		c.rdhup = true
	default:
		l.markReady(c) // cancelled or failed: service decides again
	}
	l.maybeClose(c)
}
