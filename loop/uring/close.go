package uring

import (
	"io"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/socket"
)

// startLinger half-closes a connection whose output is all sent and reads
// (and discards) until the peer's EOF or the linger deadline. Closing with
// unread input would make the kernel send RST, and the peer could lose the
// tail of the response before reading it.
func (l *eventLoop) startLinger(c *conn) {
	if c.eof {
		l.finish(c) // the peer already closed its side: nothing to wait for
		return
	}
	c.state = stLinger
	sqe := l.sqe()
	sqe.PrepareShutdown(int(c.fd), unix.SHUT_WR)
	sqe.UserData = userData(kindShutdown, c.gen, c.slot)
	c.ops |= opShutdown
	l.inflight++
	c.deadline = l.nowNs + l.linger
	l.addTimed(c)
	l.markReady(c) // arms the receive that drains the input
}

func (l *eventLoop) onShutdown(c *conn, res int32) {
	c.ops &^= opShutdown
	l.inflight--
	if res < 0 && c.state == stLinger {
		l.finish(c) // ENOTCONN: the peer is gone, nothing to wait for
	}
	l.maybeClose(c)
}

// peerClosed handles the peer's EOF on an open connection whose input was
// all presented to OnRead: the connection closes (OnClose(c, io.EOF)) once
// the output already written is sent.
func (l *eventLoop) peerClosed(c *conn) {
	c.err = io.EOF
	c.state = stClosing
	c.wake.Kill()
	if c.pending() == 0 {
		l.finish(c)
		return
	}
	c.deadline = l.nowNs + l.linger
	l.addTimed(c)
	l.markReady(c)
}

// fail closes c at once because of err (kept for OnClose unless an earlier
// reason is).
func (l *eventLoop) fail(c *conn, err error) {
	if c.err == nil {
		c.err = err
	}
	l.finish(c)
}

// finish starts the final close: queued output is dropped, in-flight
// requests are cancelled, and close(2) is submitted once they all completed
// (maybeClose), so that no completion can refer to a reused descriptor or
// freed buffer. OnClose follows the close's completion.
func (l *eventLoop) finish(c *conn) {
	if c.state >= stDying {
		return
	}
	c.state = stDying
	c.wake.Kill()
	c.deliver = false
	if c.out != nil {
		socket.PutBuffer(c.out)
		c.out = nil
	}
	l.cancelOp(c, kindRecv, opRecv)
	l.cancelOp(c, kindPoll, opPoll)
	l.cancelOp(c, kindSend, opSend)
	l.maybeClose(c)
}

// maybeClose submits the close of a dying connection once nothing else is
// in flight for it.
func (l *eventLoop) maybeClose(c *conn) {
	if c.state != stDying || c.ops != 0 {
		return
	}
	sqe := l.sqe()
	sqe.PrepareClose(int(c.fd))
	sqe.UserData = userData(kindClose, c.gen, c.slot)
	c.ops |= opClose
	l.inflight++
}

func (l *eventLoop) onClose(c *conn, res int32) {
	c.ops &^= opClose
	l.inflight--
	if res < 0 {
		// EINVAL comes from the request's preparation: the descriptor is
		// still open, so close it here rather than leak it. Any other
		// error comes from close itself, after the descriptor was
		// released: closing the number again could hit a reused one.
		e := errnoOf(res)
		l.s.Cfg.Logger.Error("io_uring close failed", "loop", l.idx, "fd", int(c.fd), "err", e)
		if e == unix.EINVAL {
			unix.Close(int(c.fd))
		}
	}
	c.state = stClosed
	l.release(c)
	err := c.err
	c.err = nil
	l.h.OnClose(c, err)
}

// release forgets a connection whose requests have all completed, freeing
// its slot for reuse (under a new generation) and its buffers.
func (l *eventLoop) release(c *conn) {
	l.conns[c.slot] = nil
	l.free = append(l.free, c.slot)
	l.nconns.Add(-1)
	socket.PutBuffer(c.in)
	socket.PutBuffer(c.out)
	c.in, c.out, c.avail = nil, nil, 0
}

// beginStop aborts every connection and cancels the accepts and the wake
// poll; the loop ends once their completions are in.
func (l *eventLoop) beginStop() {
	l.stopping = true
	l.stopAt = l.nowNs + int64(stopDrainTimeout)
	l.stopAccepting()
	if l.wakeArmed {
		l.cancel(userData(kindWake, 0, 0))
	}
	for _, c := range l.conns {
		if c != nil && c.state < stDying {
			c.err = nil
			l.finish(c)
		}
	}
}

// closeAll ends the connections of a loop that could not close them through
// the ring (it failed, or its stop timed out): their sockets are closed
// (requests still in the kernel hold their own reference) and OnClose is
// called; if requests may still be in flight, destroy keeps their memory in
// abandonedMem.
func (l *eventLoop) closeAll() {
	for _, c := range l.conns {
		if c == nil {
			continue
		}
		c.wake.Kill()
		if c.state == stClosed {
			continue
		}
		c.state = stClosed
		unix.Close(int(c.fd))
		l.nconns.Add(-1)
		err := c.err
		c.err = nil
		l.h.OnClose(c, err)
	}
}
