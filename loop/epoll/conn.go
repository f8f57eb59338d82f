package epoll

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/internal/server"
	"github.com/asyncd/asyncd/loop/socket"
)

// conn flags; loop goroutine only.
const (
	fPaused  uint16 = 1 << iota // PauseRead: no EPOLLIN
	fClosing                    // Close: draining output, then lingering
	fLinger                     // shut down for writing; reading and discarding until EOF
	fClosed                     // socket closed or detached; OnClose queued unless detached
	fReady                      // on the loop's ready list
	fTimed                      // on the loop's timed list
)

// conn is one connection. An idle keep-alive connection holds only this
// struct: no read or write buffer (in and out are nil unless input is left
// unconsumed or output is pending). Every field but wake is touched only by
// the loop goroutine.
type conn struct {
	l        *eventLoop
	in       *[]byte // unconsumed input, pooled; nil when none
	out      *[]byte // output the kernel did not take, pooled; nil when none
	outOff   int     // sent prefix of *out
	ctx      any
	deadline int64 // loop clock: drain progress or linger end
	remote   netip.AddrPort
	local    *netip.AddrPort // shared, see LocalAddr; nil until known
	fd       int
	gen      int32
	mask     uint32 // events registered with epoll
	flags    uint16
	wake     server.ConnWake // any goroutine (Wake)
}

var _ loop.Conn = (*conn)(nil)

// wantMask is the epoll registration the connection's state calls for:
// EPOLLIN unless paused or closing (lingering reads again), EPOLLOUT only
// while output is pending.
func (c *conn) wantMask() uint32 {
	if c.flags&fLinger != 0 {
		return unix.EPOLLIN | unix.EPOLLRDHUP
	}
	var m uint32
	if c.flags&(fPaused|fClosing) == 0 {
		m = unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if c.out != nil {
		m |= unix.EPOLLOUT
	}
	return m
}

// Write writes p at once if nothing is pending; whatever the kernel does not
// take is copied to the pending buffer and sent on EPOLLOUT. A write error
// closes the connection (OnClose with the error after the current callback).
// No-op after Close, Abort or Detach.
func (c *conn) Write(p []byte) {
	if c.flags&(fClosed|fClosing) != 0 || len(p) == 0 {
		return
	}
	if c.out != nil { // keep order: queue behind what is pending
		c.appendOut(p)
		return
	}
	n, err := rawWrite(c.fd, p)
	if err != nil {
		if err != unix.EAGAIN && err != unix.EINTR {
			c.l.closeNow(c, fmt.Errorf("write: %w", err))
			return
		}
		n = 0
	}
	if n < len(p) {
		c.appendOut(p[n:])
		c.l.update(c)
	}
}

func (c *conn) appendOut(p []byte) {
	if c.out != nil && c.outOff > 0 { // drop the sent prefix before growing
		*c.out = (*c.out)[:copy(*c.out, (*c.out)[c.outOff:])]
		c.outOff = 0
	}
	c.out = socket.AppendBuffer(c.out, p)
}

// OutboundBuffered reports the pending bytes.
func (c *conn) OutboundBuffered() int {
	if c.out == nil {
		return 0
	}
	return len(*c.out) - c.outOff
}

// PauseRead drops EPOLLIN (one epoll_ctl); no-op if already paused.
func (c *conn) PauseRead() {
	if c.flags&(fPaused|fClosed|fClosing) != 0 {
		return
	}
	c.flags |= fPaused
	c.l.update(c)
}

// ResumeRead re-adds EPOLLIN if paused and, if input is buffered, schedules
// OnRead with it before the loop next waits. Without either, no syscall.
// Called during OnRead, it schedules OnRead with whatever that call leaves
// unconsumed.
func (c *conn) ResumeRead() {
	if c.flags&(fClosed|fClosing) != 0 {
		return
	}
	if c.flags&fPaused != 0 {
		c.flags &^= fPaused
		c.l.update(c)
	}
	if (c.in != nil || c.l.cur == c) && c.flags&fReady == 0 {
		c.flags |= fReady
		c.l.ready = append(c.l.ready, c)
	}
}

// Close stops reading, sends the pending output, then half-closes and
// discards input until the peer's EOF (lingering close) before closing the
// socket; OnClose(c, nil) follows. The drain gives up (loop.ErrDrainTimeout) after
// Backend.LingerTimeout without progress; lingering lasts at most
// LingerTimeout. After Close, no callback but OnClose is made for c.
func (c *conn) Close() {
	if c.flags&(fClosed|fClosing) != 0 {
		return
	}
	l := c.l
	c.flags |= fClosing
	c.wake.Kill()
	if l.cur != c {
		socket.PutBuffer(c.in)
		c.in = nil
	}
	if c.out != nil {
		c.deadline = l.nowNs + l.linger
		l.addTimed(c)
		l.update(c)
		return
	}
	l.startLinger(c)
}

// Abort closes the socket now, dropping pending output; OnClose(c, nil)
// follows once the current callback returns.
func (c *conn) Abort() { c.l.closeNow(c, nil) }

// InputPending reports input left unconsumed here (presented again on
// ResumeRead) or waiting in the socket, which a loop that woke late has
// not read yet: its readiness is only dispatched after the tick.
func (c *conn) InputPending() bool {
	return c.flags&(fClosed|fClosing) == 0 && (c.in != nil || socket.InputQueued(c.fd))
}

// Wake queues OnWake; safe from any goroutine. Wakes before the loop gets to
// it merge into one OnWake. False once c is closing, closed or detached: the
// queue holds the connection itself, not its descriptor, so a connection
// that reuses the descriptor never gets another's OnWake.
func (c *conn) Wake() bool { return c.l.wakes.Wake(c, &c.wake) }

// Detach removes the socket from the loop and hands it over. The descriptor
// stays non-blocking, so os.NewFile gives a pollable file and net.FileConn
// works on it. unread is a copy of the input read but not consumed; called
// during OnRead, that is the whole input of that call (nothing counts as
// consumed yet; OnRead's return value is then ignored). It fails with
// loop.ErrClosed after Close/Abort/Detach and with loop.ErrOutputPending while
// output is queued (detach after OnDrained).
func (c *conn) Detach() (*os.File, []byte, error) {
	if c.flags&(fClosed|fClosing) != 0 {
		return nil, nil, loop.ErrClosed
	}
	if c.out != nil {
		return nil, nil, loop.ErrOutputPending
	}
	l := c.l
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil); err != nil {
		return nil, nil, fmt.Errorf("epoll: detach fd %d: %w", c.fd, err)
	}
	var unread []byte
	if l.cur == c {
		unread = append([]byte(nil), l.curIn...)
	} else if c.in != nil {
		unread = append([]byte(nil), *c.in...)
		socket.PutBuffer(c.in)
		c.in = nil
	}
	c.flags |= fClosed
	c.wake.Kill()
	l.conns[c.fd] = nil
	l.nconns.Add(-1)
	return os.NewFile(uintptr(c.fd), "asyncd-detached"), unread, nil
}

// SetContext stores the engine's per-connection state.
func (c *conn) SetContext(v any) { c.ctx = v }

// Context returns what SetContext stored.
func (c *conn) Context() any { return c.ctx }

// RemoteAddr is the peer address from accept (zero for unix sockets).
func (c *conn) RemoteAddr() netip.AddrPort { return c.remote }

// LocalAddr is the listener's address, or, from a wildcard listener, the
// socket's (getsockname on first use, shared with the loop's other
// connections that have it: socket.LocalAddrs). Zero for unix sockets, and
// when first asked after the socket is closed.
func (c *conn) LocalAddr() netip.AddrPort {
	if c.local == nil {
		if c.flags&fClosed != 0 {
			return netip.AddrPort{}
		}
		c.local = c.l.locals.Of(c.fd)
	}
	return *c.local
}

// Loop is the owning loop's index.
func (c *conn) Loop() int { return c.l.idx }

// Fd is the socket descriptor (stale after close or detach).
func (c *conn) Fd() int { return c.fd }
