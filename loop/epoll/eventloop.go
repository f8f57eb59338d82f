package epoll

import (
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/internal/server"
	"github.com/asyncd/asyncd/loop/socket"
)

// Epoll event data: Fd holds the descriptor and Pad a tag. Connections carry
// a positive generation, so that an event queued for a connection that was
// closed earlier in the same batch is not delivered to a new connection that
// reused its descriptor. The eventfd and the listeners use negative tags.
const (
	tagEventfd      int32 = -1
	tagListenerBase int32 = -2 // listener i is tagged tagListenerBase - i
)

const (
	maxEvents   = 512 // events taken per epoll_wait
	acceptBatch = 128 // accepts per listener readiness, so one busy listener cannot starve the loop
)

// listenerState is one loop's view of one listener.
type listenerState struct {
	server.Listener
	tag     int32 // epoll data tag
	armed   bool  // registered in this loop's epoll set
	stopped bool  // StopAccepting: never re-armed
	rearmAt int64 // loop clock (ns) at which a backed-off listener is re-armed
}

// eventLoop is one loop: an epoll set, an eventfd for wake-ups, and the
// connections accepted on it. Every field without a comment saying otherwise
// is touched only by the loop goroutine.
type eventLoop struct {
	s       *server.Server[*eventLoop]
	h       loop.Handler
	idx     int
	epfd    int
	wakes   server.WakeQueue[*conn] // other goroutines' Wake and commands (its own locking)
	w       *waiter                 // epfd in the netpoller; nil: sleep in epoll_wait
	tick    int64                   // TickInterval in ns
	linger  int64                   // LingerTimeout in ns
	backoff int64                   // AcceptBackoff in ns

	events    []unix.EpollEvent
	conns     []*conn // indexed by fd
	readBuf   []byte  // one read's worth; input is copied out only if unconsumed
	listeners []*listenerState

	ready, readySpare []*conn      // ResumeRead: OnRead due before the next epoll_wait
	timed             []*conn      // closing connections with a deadline
	closed            []closedConn // closed, OnClose not yet called
	locals            socket.LocalAddrs
	cur               *conn  // connection whose OnRead is running
	curIn             []byte // the input that OnRead was given

	gen      int32
	start    time.Time
	now      time.Time
	nowNs    int64 // monotonic ns since start
	nextTick int64
	stopping bool
	ev       unix.EpollEvent     // epoll_ctl argument, kept here so it never escapes to the heap
	rsa      unix.RawSockaddrAny // accept's peer address

	nconns atomic.Int64 // open connections: written by the loop, read by Conns (any goroutine)
}

func newEventLoop(s *server.Server[*eventLoop], b Backend, idx int) (*eventLoop, error) {
	l := &eventLoop{
		s: s, h: s.Cfg.Handler, idx: idx, epfd: -1,
		tick:    int64(s.Cfg.TickInterval),
		linger:  int64(b.LingerTimeout),
		backoff: int64(b.AcceptBackoff),
		events:  make([]unix.EpollEvent, maxEvents),
		readBuf: make([]byte, s.Cfg.ReadBufferSize),
	}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if l.w, err = newWaiter(l); err != nil {
		l.closeFDs()
		return nil, err
	}
	if err := l.wakes.Open(); err != nil {
		l.closeFDs()
		return nil, err
	}
	l.ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.wakes.FD()), Pad: tagEventfd}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.wakes.FD(), &l.ev); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll_ctl add eventfd: %w", err)
	}
	for _, sl := range s.ListenersOf(idx) {
		ln := &listenerState{Listener: sl, tag: tagListenerBase - int32(len(l.listeners))}
		l.listeners = append(l.listeners, ln)
		if err := l.arm(ln); err != nil {
			l.closeFDs()
			return nil, err
		}
	}
	return l, nil
}

// closeFDs closes the loop's epoll and eventfd descriptors, after which
// Wake and commands are no-ops.
func (l *eventLoop) closeFDs() {
	l.wakes.Close()
	if l.w != nil {
		l.w.close()
		l.w = nil
	}
	if l.epfd >= 0 {
		unix.Close(l.epfd)
		l.epfd = -1
	}
}

// arm adds the listener to the loop's epoll set, level-triggered and not
// EPOLLEXCLUSIVE. The supervisor hands the same listening socket to every
// generation, so a waiter must never keep a connection's wake-up from the
// others: an exclusive epoll entry ends the wake-up when a thread sleeps in
// epoll_wait on its set (fs/eventpoll.c, ep_poll_callback), and a loop
// woken that way that then cannot run (its process stopped between the
// wake-up and the accept) would leave the connection queued with no other
// server woken for it (issue 17). A loop parked on the netpoller (wait.go)
// never sleeps in epoll_wait on its own set, so there the flag never had
// an effect: every loop polling a shared socket is woken anyway.
func (l *eventLoop) arm(ln *listenerState) error {
	l.ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ln.FD), Pad: ln.tag}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ln.FD, &l.ev); err != nil {
		return fmt.Errorf("epoll_ctl add listener %s: %w", ln.Addr, err)
	}
	ln.armed = true
	return nil
}

func (l *eventLoop) disarm(ln *listenerState) {
	if !ln.armed {
		return
	}
	ln.armed = false
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ln.FD, nil); err != nil {
		l.s.Cfg.Logger.Error("epoll_ctl del listener", "loop", l.idx, "listener", ln.Addr, "err", err)
	}
}

func (l *eventLoop) clock() {
	l.now = time.Now()
	l.nowNs = int64(l.now.Sub(l.start))
}

// Run is the loop goroutine. It returns nil after Stop, or the epoll_wait
// error that ended it; either way every connection gets its OnClose.
func (l *eventLoop) Run() error {
	if l.s.Cfg.LockOSThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	defer l.shutdown()
	l.start = time.Now()
	l.clock()
	l.nextTick = l.nowNs + l.tick
	for {
		if len(l.ready) > 0 {
			l.runReady()
		}
		if l.stopping {
			return nil
		}
		// Poll without blocking: under load there is nearly always
		// something ready. Only with nothing ready does the loop sleep,
		// parked on the netpoller (wait.go), whose wait polls first
		// itself.
		var n int
		var err error
		d := l.deadline()
		switch {
		case len(l.ready) > 0 || d <= l.nowNs:
			n, err = pollNow(l.epfd, l.events)
		case l.w != nil:
			n, err = l.w.wait(d)
		default:
			n, err = pollNow(l.epfd, l.events)
			if n == 0 && err == nil {
				n, err = unix.EpollWait(l.epfd, l.events, msUntil(d-l.nowNs))
			}
		}
		l.clock()
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("epoll: loop %d: epoll_wait: %w", l.idx, err)
		}
		for i := 0; i < n; i++ {
			l.dispatch(&l.events[i])
		}
		l.timers()
	}
}

// deadline returns when the loop must next wake with nothing ready (loop
// clock, ns): the next tick or listener re-arm.
func (l *eventLoop) deadline() int64 {
	d := l.nextTick
	for _, ln := range l.listeners {
		if !ln.armed && !ln.stopped && ln.rearmAt < d {
			d = ln.rearmAt
		}
	}
	return d
}

// msUntil converts a positive wait to epoll_wait's milliseconds, rounded up
// so that the loop never wakes early and spins.
func msUntil(d int64) int {
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// timers runs what is due: OnTick and the closing-connection deadlines at
// each tick, and listener re-arms after an accept back-off.
func (l *eventLoop) timers() {
	if l.nowNs >= l.nextTick {
		l.nextTick = l.nowNs + l.tick
		l.h.OnTick(l.idx, l.now)
		l.flushClosed()
		l.expire()
	}
	for _, ln := range l.listeners {
		if !ln.armed && !ln.stopped && ln.rearmAt <= l.nowNs {
			if err := l.arm(ln); err != nil {
				l.s.LogAcceptError(l.now, l.idx, ln.Addr, err)
				ln.rearmAt = l.nowNs + l.backoff
			}
		}
	}
}

// expire closes connections whose drain or linger deadline passed.
func (l *eventLoop) expire() {
	j := 0
	for _, c := range l.timed {
		switch {
		case c.flags&fClosed != 0:
			c.flags &^= fTimed
		case l.nowNs >= c.deadline:
			c.flags &^= fTimed
			if c.flags&fLinger != 0 {
				l.closeNow(c, nil) // response sent; the peer just kept talking
			} else {
				l.closeNow(c, loop.ErrDrainTimeout)
			}
		default:
			l.timed[j] = c
			j++
		}
	}
	clear(l.timed[j:])
	l.timed = l.timed[:j]
	l.flushClosed()
}

func (l *eventLoop) dispatch(ev *unix.EpollEvent) {
	switch {
	case ev.Pad > 0:
		fd := int(ev.Fd)
		if fd >= len(l.conns) {
			return
		}
		if c := l.conns[fd]; c != nil && c.gen == ev.Pad {
			l.connEvent(c, ev.Events)
		}
	case ev.Pad == tagEventfd:
		l.drainWakes()
	default:
		if i := int(tagListenerBase - ev.Pad); i >= 0 && i < len(l.listeners) {
			l.accept(l.listeners[i])
		}
	}
}

func (l *eventLoop) connEvent(c *conn, events uint32) {
	if events&unix.EPOLLOUT != 0 && c.out != nil {
		l.flush(c)
	}
	if c.flags&fClosed == 0 && events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		switch {
		case c.flags&fLinger != 0:
			l.discard(c)
		case c.flags&(fPaused|fClosing) == 0:
			l.read(c)
		case events&(unix.EPOLLHUP|unix.EPOLLERR) != 0:
			// Paused or draining, and the socket is dead in both directions
			// (reset): nothing more can be sent, and level-triggered HUP
			// would fire forever.
			l.closeNow(c, sockError(c.fd))
		}
	}
	l.flushClosed()
}

// sockError returns the socket's pending error, or io.EOF if none.
func sockError(fd int) error {
	if e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
		return fmt.Errorf("socket: %w", unix.Errno(e))
	}
	return io.EOF
}

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

func (l *eventLoop) addTimed(c *conn) {
	if c.flags&fTimed == 0 {
		c.flags |= fTimed
		l.timed = append(l.timed, c)
	}
}

// update brings the connection's epoll registration in line with its state;
// no syscall when nothing changed.
func (l *eventLoop) update(c *conn) {
	m := c.wantMask()
	if m == c.mask || c.flags&fClosed != 0 {
		return
	}
	l.ev = unix.EpollEvent{Events: m, Fd: int32(c.fd), Pad: c.gen}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &l.ev); err != nil {
		l.closeNow(c, fmt.Errorf("epoll_ctl mod: %w", err))
		return
	}
	c.mask = m
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

func (l *eventLoop) accept(ln *listenerState) {
	for i := 0; i < acceptBatch && ln.armed; i++ {
		if !l.s.Accepting() { // see server.Server.noAccept
			return
		}
		fd, drained, err := socket.AcceptNext(ln.FD, &l.rsa)
		if drained {
			return
		}
		if err != nil {
			// Out of descriptors or memory: the connection stays queued,
			// so level-triggered readiness would spin. Stop listening
			// here for a while; existing connections carry on.
			l.s.LogAcceptError(l.now, l.idx, ln.Addr, err)
			l.disarm(ln)
			ln.rearmAt = l.nowNs + l.backoff
			return
		}
		l.open(fd, ln)
	}
}

func (l *eventLoop) open(fd int, ln *listenerState) {
	c := &conn{l: l, fd: fd, mask: unix.EPOLLIN | unix.EPOLLRDHUP}
	c.local = ln.Local
	if !ln.Unix {
		// Best effort: a failure only costs latency.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c.remote = socket.AddrPortFrom(&l.rsa)
	}
	if l.gen++; l.gen <= 0 {
		l.gen = 1
	}
	c.gen = l.gen
	l.ev = unix.EpollEvent{Events: c.mask, Fd: int32(fd), Pad: c.gen}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &l.ev); err != nil {
		unix.Close(fd)
		l.s.LogAcceptError(l.now, l.idx, ln.Addr, fmt.Errorf("epoll_ctl add conn: %w", err))
		return
	}
	if fd >= len(l.conns) {
		grown := make([]*conn, max(fd+1, 2*len(l.conns), 1024))
		copy(grown, l.conns)
		l.conns = grown
	}
	l.conns[fd] = c
	l.nconns.Add(1)
	l.h.OnOpen(c)
	l.flushClosed()
}

// drainWakes handles the eventfd: commands first, then OnWake for each
// connection that asked.
func (l *eventLoop) drainWakes() {
	l.wakes.Reset()
	cmds, batch := l.wakes.Take()
	if cmds&server.CmdStopAccepting != 0 {
		for _, ln := range l.listeners {
			ln.stopped = true
			l.disarm(ln)
		}
	}
	if cmds&server.CmdStop != 0 {
		l.stopping = true
	}
	for _, c := range batch {
		// A closed connection is dead, not queued: skipped.
		if c.wake.Claim() {
			l.h.OnWake(c)
			l.flushClosed()
		}
	}
	l.wakes.Done(batch)
}

// Command sends cmd to the loop; any goroutine.
func (l *eventLoop) Command(cmd server.Cmd) { l.wakes.Command(cmd) }

// Release closes the descriptors of a loop that never ran.
func (l *eventLoop) Release() { l.closeFDs() }

// Conns is the number of open connections, lingering ones included; any
// goroutine.
func (l *eventLoop) Conns() int { return int(l.nconns.Load()) }

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
