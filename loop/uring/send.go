package uring

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/socket"
)

// maxSend is the most bytes one send SQE carries (sqe->len is 32 bits).
const maxSend = 1 << 30

// flush submits c's queued output unless a send is in flight (the
// completion submits what was queued meanwhile).
func (l *eventLoop) flush(c *conn) {
	if c.ops&opSend != 0 || c.out == nil || len(*c.out) == 0 {
		return
	}
	if c.state != stOpen && c.state != stClosing {
		return
	}
	c.sending, c.out = c.out, nil
	c.sendOff = 0
	l.submitSend(c, true)
}

// submitSend sends c.sending from sendOff. The first attempt (inline) is
// MSG_DONTWAIT: the kernel then completes it, whole, partly or with EAGAIN,
// inside the io_uring_enter that submits it, never later (io_sendmsg_prep
// sets REQ_F_NOWAIT, so a send that would block fails instead of waiting
// for room), which lets enter wait past its completion. What the socket did
// not take goes out with a plain send, which waits for room in the kernel.
//
// Memory rule: the kernel reads the buffer until the send completes. It
// stays referenced by c.sending (c is in l.conns until all its requests
// complete) and goes back to the pool only in onSend. An inline send reads
// it only during the io_uring_enter that submits it, with the buffer
// reachable from c, and the Go GC moves no heap object; a send that waits
// for room pins it too (runtime.Pinner), as the rule for memory the kernel
// holds across calls requires.
func (l *eventLoop) submitSend(c *conn, inline bool) {
	b := (*c.sending)[c.sendOff:]
	flags := unix.MSG_NOSIGNAL
	if inline {
		flags |= unix.MSG_DONTWAIT
		l.inline++
	} else if !c.pinned {
		l.pin(c)
	}
	sqe := l.sqe()
	sqe.PrepareSend(int(c.fd), uintptr(unsafe.Pointer(&b[0])), uint32(min(len(b), maxSend)), flags)
	sqe.UserData = userData(kindSend, c.gen, c.slot)
	c.ops |= opSend
	l.inflight++
}

// releaseSending unpins and pools the buffer of a completed send.
func (c *conn) releaseSending() {
	if c.pinned {
		c.l.unpin(c)
	}
	socket.PutBuffer(c.sending)
	c.sending, c.sendOff = nil, 0
}

// pin pins c's send buffer with a Pinner of the loop's (not one per
// connection: only a send waiting for room needs one).
func (l *eventLoop) pin(c *conn) {
	var p *runtime.Pinner
	if n := len(l.pinFree); n > 0 {
		p = l.pinFree[n-1]
		l.pinFree = l.pinFree[:n-1]
	} else {
		p = new(runtime.Pinner)
	}
	p.Pin(&(*c.sending)[0])
	if l.pins == nil {
		l.pins = make(map[*conn]*runtime.Pinner)
	}
	l.pins[c] = p
	c.pinned = true
}

func (l *eventLoop) unpin(c *conn) {
	if p := l.pins[c]; p != nil {
		p.Unpin()
		delete(l.pins, c)
		l.pinFree = append(l.pinFree, p)
	}
	c.pinned = false
}

func (l *eventLoop) onSend(c *conn, res int32) {
	c.ops &^= opSend
	c.cancels &^= opSend
	l.inflight--
	if res == -int32(unix.EAGAIN) && c.state < stDying {
		// The inline attempt found the socket buffer full: wait for room.
		// Output now exceeded what the kernel took at once, so OnDrained
		// is due when it is all sent.
		c.partial = true
		l.submitSend(c, false)
		return
	}
	if res <= 0 {
		c.releaseSending()
		if c.state < stDying {
			if res < 0 {
				l.fail(c, fmt.Errorf("send: %w", errnoOf(res)))
			} else {
				l.fail(c, errors.New("send: no progress"))
			}
		}
		l.maybeClose(c)
		return
	}
	c.sendOff += int(res)
	if c.state == stClosing {
		c.deadline = l.nowNs + l.linger // progress: a slow reader is not a dead one
	}
	if c.state >= stDying {
		c.releaseSending()
		l.maybeClose(c)
		return
	}
	if c.sendOff < len(*c.sending) {
		// The kernel took part (socket buffer full): send the rest, from
		// the same pinned buffer. Output now exceeded what the kernel
		// took at once, so OnDrained is due when it is all sent.
		c.partial = true
		l.submitSend(c, false)
		return
	}
	c.releaseSending()
	if c.out != nil && len(*c.out) > 0 {
		l.flush(c) // written while the send was in flight
		return
	}
	switch c.state {
	case stOpen:
		// OnDrained when the kernel did not take everything at once, or
		// when the handler saw output pending (it may have paused on it:
		// with io_uring every Write is pending until its completion).
		if c.partial || c.observed {
			c.partial, c.observed = false, false
			l.h.OnDrained(c)
		}
	case stClosing:
		l.startLinger(c)
	}
}
