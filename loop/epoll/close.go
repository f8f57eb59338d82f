package epoll

import (
	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/socket"
)

// startLinger half-closes a connection whose output is all sent and reads
// (and discards) until the peer's EOF or the linger deadline. Closing with
// unread input would make the kernel send RST, and the peer could lose the
// tail of the response before reading it.
func (l *eventLoop) startLinger(c *conn) {
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		l.closeNow(c, nil) // ENOTCONN: the peer is gone, nothing to wait for
		return
	}
	c.flags |= fLinger
	c.deadline = l.nowNs + l.linger
	l.addTimed(c)
	l.update(c)
}

func (l *eventLoop) discard(c *conn) {
	n, err := rawRead(c.fd, l.readBuf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil || n == 0 {
		l.closeNow(c, nil)
	}
}

// closeNow closes the socket at once and queues OnClose, which runs after
// the current callback returns (flushClosed), so that a handler calling
// Abort never sees OnClose nested inside its own callback.
func (l *eventLoop) closeNow(c *conn, err error) {
	if c.flags&fClosed != 0 {
		return
	}
	c.flags |= fClosed
	c.wake.Kill()
	l.conns[c.fd] = nil
	unix.Close(c.fd)
	if l.cur != c {
		socket.PutBuffer(c.in)
		c.in = nil
	}
	socket.PutBuffer(c.out)
	c.out, c.outOff = nil, 0
	l.nconns.Add(-1)
	l.closed = append(l.closed, closedConn{c, err})
}

// closedConn is a closed connection whose OnClose is queued, with its
// error (kept here, not in every conn).
type closedConn struct {
	c   *conn
	err error
}

func (l *eventLoop) flushClosed() {
	for i := 0; i < len(l.closed); i++ { // OnClose may close more
		c, err := l.closed[i].c, l.closed[i].err
		l.closed[i] = closedConn{}
		l.h.OnClose(c, err)
	}
	l.closed = l.closed[:0]
}

// shutdown aborts every connection, then closes the loop's descriptors.
func (l *eventLoop) shutdown() {
	for _, c := range l.conns {
		if c != nil {
			l.closeNow(c, nil)
		}
	}
	l.flushClosed()
	l.closeFDs()
	clear(l.ready)
	clear(l.timed)
	l.ready, l.timed = nil, nil
}
