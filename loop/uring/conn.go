package uring

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/internal/server"
	"github.com/asyncd/asyncd/loop/socket"
	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

// connState is where a connection is in its life; the order matters
// (state >= stDying means "going away").
type connState uint8

const (
	stOpen     connState = iota
	stClosing            // Close or peer EOF: sending queued output, input discarded
	stLinger             // output sent, SHUT_WR submitted: discarding input until EOF or deadline
	stDying              // waiting for in-flight requests, then close(2)
	stClosed             // closed and released; OnClose called
	stDetached           // handed over by Detach
)

// Request bits: which of a connection's requests are in flight.
const (
	opRecv uint8 = 1 << iota
	opSend
	opPoll
	opShutdown
	opClose
)

// conn is one connection. An idle keep-alive connection holds only this
// struct and its armed multishot receive: no input or output buffer (in and
// out are nil unless input is left unconsumed or output is pending). Every
// field but wake is touched only by the loop goroutine; the kernel reads
// *sending while a send is in flight (see submitSend).
type conn struct {
	l *eventLoop
	// in holds input not yet consumed: in[:avail] has been presented to
	// OnRead (the leftover), in[avail:] is held back (it arrived while
	// paused) and is presented one read's worth at a time.
	in      *[]byte
	avail   int
	out     *[]byte // written, not yet submitted (pooled)
	sending *[]byte // submitted; the kernel reads it until the send completes
	sendOff int     // completed prefix of *sending
	ctx     any
	err     error // for OnClose
	// deadline is the loop clock (ns) at which a closing connection's drain
	// or linger ends.
	deadline int64
	remote   netip.AddrPort
	local    *netip.AddrPort // shared, see LocalAddr; nil until known
	fd       int32
	slot     uint32
	gen      uint32
	state    connState
	ops      uint8           // op* bits in flight
	cancels  uint8           // op* bits with a cancel in flight
	wake     server.ConnWake // any goroutine (Wake)

	paused   bool // PauseRead: no receive armed (an error poll instead)
	eof      bool // the receive saw the peer's EOF
	rdhup    bool // the error poll saw the peer's half-close
	deliver  bool // ResumeRead: present the leftover again
	inReady  bool // on the loop's ready list
	timed    bool // on the loop's timed list
	partial  bool // a send completed partially since output was last drained
	observed bool // OutboundBuffered reported pending output since then
	pinned   bool // *sending is pinned (a send waiting for room; eventLoop.pin)
}

var _ loop.Conn = (*conn)(nil)

// held is the input that arrived but was not presented to OnRead yet.
func (c *conn) held() int {
	if c.in == nil {
		return 0
	}
	return len(*c.in) - c.avail
}

// pending is the output written and not yet completed by the kernel.
func (c *conn) pending() int {
	n := 0
	if c.out != nil {
		n = len(*c.out)
	}
	if c.sending != nil {
		n += len(*c.sending) - c.sendOff
	}
	return n
}

// Write copies p into the connection's output buffer; the loop submits the
// buffer once per iteration, before it next waits, so that all the writes of
// one callback go out in one send. A send error closes the connection
// (OnClose with the error). No-op after Close, Abort or Detach.
func (c *conn) Write(p []byte) {
	if c.state != stOpen || len(p) == 0 {
		return
	}
	c.out = socket.AppendBuffer(c.out, p)
	c.l.markReady(c)
}

// OutboundBuffered reports the bytes written whose send has not completed:
// with io_uring that includes every Write since the last completion.
func (c *conn) OutboundBuffered() int {
	n := c.pending()
	if n > 0 {
		c.observed = true // the handler may pause on it: OnDrained is due
	}
	return n
}

// PauseRead cancels the connection's receive. Input the kernel delivered
// before the cancel took effect is held back, not presented, until
// ResumeRead. While paused, a poll watches for a reset or hang-up.
func (c *conn) PauseRead() {
	if c.state != stOpen || c.paused {
		return
	}
	c.paused = true
	c.l.cancelOp(c, kindRecv, opRecv)
	c.l.markReady(c)
}

// ResumeRead re-arms the receive if paused and, if input is buffered,
// schedules OnRead with it before the loop next waits (input held back while
// paused follows, one read's worth per OnRead). Called during OnRead, it
// schedules OnRead with whatever that call leaves unconsumed.
func (c *conn) ResumeRead() {
	if c.state != stOpen {
		return
	}
	c.paused = false
	if c.in != nil || c.l.cur == c {
		c.deliver = true
	}
	c.l.markReady(c)
}

// Close stops reading, sends the pending output, then half-closes and
// discards input until the peer's EOF (lingering close) before closing the
// socket; OnClose(c, nil) follows. The drain gives up (loop.ErrDrainTimeout) after
// Backend.LingerTimeout without progress; lingering lasts at most
// LingerTimeout. After Close, no callback but OnClose is made for c.
func (c *conn) Close() {
	if c.state != stOpen {
		return
	}
	l := c.l
	c.state = stClosing
	c.wake.Kill()
	c.deliver = false
	if c.pending() > 0 {
		c.deadline = l.nowNs + l.linger
		l.addTimed(c)
		l.markReady(c)
		return
	}
	l.startLinger(c)
}

// Abort closes the connection now, dropping pending output: in-flight
// requests are cancelled and the socket is closed once they completed;
// OnClose(c, nil) follows.
func (c *conn) Abort() { c.l.finish(c) }

// InputPending reports input held or left unconsumed here, completions
// the loop has not reaped yet (any connection's: conservative), or bytes
// in the socket, which the armed receive takes only when the loop next
// enters the ring (DEFER_TASKRUN): a tick runs before that.
func (c *conn) InputPending() bool {
	return c.state == stOpen && (c.in != nil || c.deliver || c.l.ring.CQReady() > 0 || socket.InputQueued(int(c.fd)))
}

// Wake queues OnWake; safe from any goroutine. Wakes before the loop gets to
// it merge into one OnWake. False once c is closing, closed or detached: the
// queue holds the connection itself, not its descriptor or slot, so a
// connection that reuses either never gets another's OnWake.
func (c *conn) Wake() bool { return c.l.wakes.Wake(c, &c.wake) }

// detachTimeout bounds Detach's wait for the kernel to confirm that the
// connection's receive is cancelled.
const detachTimeout = time.Second

// Detach hands the socket over. It cancels the connection's receive (or
// error poll) synchronously (IORING_REGISTER_SYNC_CANCEL) and collects any
// input the kernel delivered meanwhile, so that no request on the socket
// outlives the call and no byte is lost. The descriptor stays non-blocking,
// so os.NewFile gives a pollable file and net.FileConn works on it. unread is
// the input read but not consumed; called during OnRead, that is the whole
// input of that call (nothing counts as consumed yet; OnRead's return value
// is then ignored). It fails with loop.ErrClosed after Close/Abort/Detach and
// with loop.ErrOutputPending while output is queued or in flight (detach after
// OnDrained).
func (c *conn) Detach() (*os.File, []byte, error) {
	if c.state != stOpen {
		return nil, nil, loop.ErrClosed
	}
	if c.pending() > 0 {
		return nil, nil, loop.ErrOutputPending
	}
	l := c.l
	if err := l.quiesce(c, kindPoll, opPoll); err != nil {
		return nil, nil, err
	}
	if err := l.quiesce(c, kindRecv, opRecv); err != nil {
		return nil, nil, err
	}
	if c.ops != 0 {
		return nil, nil, fmt.Errorf("io_uring: detach fd %d: requests %#x still in flight", int(c.fd), c.ops)
	}
	var unread []byte
	switch {
	case l.cur == c && l.curDirect:
		unread = append([]byte(nil), l.curIn...)
		if c.in != nil {
			unread = append(unread, *c.in...)
		}
		socket.PutBuffer(c.in)
	case c.in != nil:
		// Handed over as is (it may alias the current OnRead's input);
		// it never returns to the pool.
		unread = *c.in
	}
	c.in, c.avail = nil, 0
	c.state = stDetached
	c.wake.Kill()
	l.release(c)
	return os.NewFile(uintptr(int(c.fd)), "asyncd-detached"), unread, nil
}

// quiesce synchronously cancels c's request of kind (op bit bit) and waits
// for its last completion, handling the completions it finds out of order:
// input is appended to c.in (held), buffers are returned, and the CQE is
// marked kindIgnored for reap. Detach runs inside a callback, in the middle
// of reaping, so the rest of the CQ ring is scanned rather than reaped.
func (l *eventLoop) quiesce(c *conn, kind opKind, bit uint8) error {
	if c.ops&bit == 0 {
		return nil
	}
	ud := userData(kind, c.gen, c.slot)
	reg := giouring.SyncCancelReg{Addr: ud, Timeout: syscall.NsecToTimespec(int64(detachTimeout))}
	if _, err := l.ring.RegisterSyncCancel(&reg); err != nil &&
		!errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EALREADY) {
		return fmt.Errorf("io_uring: detach fd %d: cancel: %w", int(c.fd), err)
	}
	if l.scan == nil {
		l.scan = make([]*giouring.CompletionQueueEvent, cqEntries)
	}
	deadline := time.Now().Add(detachTimeout)
	for {
		n := int(l.ring.PeekBatchCQE(l.scan))
		for i := 0; i < n; i++ {
			e := l.scan[i]
			if e.UserData != ud {
				continue
			}
			res, flags := e.Res, e.Flags
			e.UserData, e.Flags = userData(kindIgnored, 0, 0), 0
			if flags&giouring.CQEFBuffer != 0 {
				bid := uint16(flags >> giouring.CQEBufferShift)
				if res > 0 {
					c.in = socket.AppendBuffer(c.in, l.bufs.data(bid, int(res)))
				}
				l.bufs.put(bid)
			}
			if flags&giouring.CQEFMore == 0 {
				c.ops &^= bit
				c.cancels &^= bit
				l.inflight--
			}
		}
		if c.ops&bit == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("io_uring: detach fd %d: cancelled request did not complete within %v", int(c.fd), detachTimeout)
		}
		// Run deferred completion work and wait for one completion more
		// than the ring holds (l.ts: see its comment).
		l.ts = syscall.NsecToTimespec(int64(time.Millisecond))
		_, _ = l.ring.SubmitAndWaitTimeout(l.ring.CQReady()+1, &l.ts, nil)
	}
}

// SetContext stores the engine's per-connection state.
func (c *conn) SetContext(v any) { c.ctx = v }

// Context returns what SetContext stored.
func (c *conn) Context() any { return c.ctx }

// RemoteAddr is the peer address, from getpeername at accept (multishot
// accept does not report it); zero for unix sockets.
func (c *conn) RemoteAddr() netip.AddrPort { return c.remote }

// LocalAddr is the listener's address, or, from a wildcard listener, the
// socket's (getsockname on first use, shared with the loop's other
// connections that have it: socket.LocalAddrs). Zero for unix sockets, and
// when first asked once the socket is closing for good.
func (c *conn) LocalAddr() netip.AddrPort {
	if c.local == nil {
		if c.state >= stDying {
			return netip.AddrPort{}
		}
		c.local = c.l.locals.Of(int(c.fd))
	}
	return *c.local
}

// Loop is the owning loop's index.
func (c *conn) Loop() int { return c.l.idx }

// Fd is the socket descriptor (stale after close or detach).
func (c *conn) Fd() int { return int(c.fd) }
