package epoll

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/socket"
)

// flush writes pending output after EPOLLOUT.
func (l *eventLoop) flush(c *conn) {
	n, err := rawWrite(c.fd, (*c.out)[c.outOff:])
	if err != nil {
		if err != unix.EAGAIN && err != unix.EINTR {
			l.closeNow(c, fmt.Errorf("write: %w", err))
		}
		return
	}
	c.outOff += n
	if c.flags&fClosing != 0 {
		c.deadline = l.nowNs + l.linger // progress: a slow reader is not a dead one
	}
	if c.outOff < len(*c.out) {
		return
	}
	socket.PutBuffer(c.out)
	c.out, c.outOff = nil, 0
	if c.flags&fClosing != 0 {
		l.startLinger(c)
		return
	}
	l.update(c)
	if c.flags&fClosed == 0 {
		l.h.OnDrained(c)
	}
}
