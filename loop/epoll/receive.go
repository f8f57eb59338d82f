package epoll

import (
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/socket"
)

func (l *eventLoop) read(c *conn) {
	n, err := rawRead(c.fd, l.readBuf)
	if err != nil {
		if err != unix.EAGAIN && err != unix.EINTR {
			l.closeNow(c, fmt.Errorf("read: %w", err))
		}
		return
	}
	if n == 0 {
		// Any leftover was presented to OnRead already; it is left
		// unconsumed, so the peer's EOF ends the connection.
		l.closeNow(c, io.EOF)
		return
	}
	in := l.readBuf[:n]
	if c.in != nil {
		c.in = socket.AppendBuffer(c.in, in)
		in = *c.in
	}
	l.deliver(c, in)
}

// deliver calls OnRead and keeps the unconsumed tail: in place if in is the
// connection's own buffer, else copied from the loop's read buffer into a
// pooled one.
func (l *eventLoop) deliver(c *conn, in []byte) {
	l.cur, l.curIn = c, in
	k := l.h.OnRead(c, in)
	l.cur, l.curIn = nil, nil
	if c.flags&(fClosed|fClosing) != 0 {
		// Closed, closing or detached during the callback; the buffer was
		// kept alive until now because in aliased it.
		socket.PutBuffer(c.in)
		c.in = nil
		return
	}
	k = min(max(k, 0), len(in))
	if c.in != nil { // in is *c.in
		if k == len(in) {
			socket.PutBuffer(c.in)
			c.in = nil
		} else if k > 0 {
			*c.in = (*c.in)[:copy(*c.in, (*c.in)[k:])]
			c.in = socket.ShrinkBuffer(c.in)
		}
		return
	}
	if k < len(in) {
		c.in = socket.GetBuffer(len(in) - k)
		*c.in = append(*c.in, in[k:]...)
	}
}

// runReady delivers buffered input to the connections that asked for it
// with ResumeRead. Entries added meanwhile wait for the next round.
func (l *eventLoop) runReady() {
	batch := l.ready
	l.ready = l.readySpare[:0]
	for i, c := range batch {
		batch[i] = nil
		c.flags &^= fReady
		if c.flags&(fClosed|fClosing|fPaused) != 0 || c.in == nil {
			continue
		}
		l.deliver(c, *c.in)
		l.flushClosed()
	}
	l.readySpare = batch[:0]
}
