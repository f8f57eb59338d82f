package uring

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/internal/server"
	"github.com/asyncd/asyncd/loop/socket"
	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

const (
	reapBatch   = 256     // completions taken per PeekBatchCQE
	reapRounds  = 8       // batches per iteration, so that ready work is not starved
	maxSend     = 1 << 30 // bytes per send SQE (sqe->len is 32 bits)
	acceptBatch = 128     // accepts per listener per round, so one busy listener cannot starve the loop
)

// listenerState is one loop's view of one listener.
type listenerState struct {
	server.Listener
	idx     uint32 // index in eventLoop.listeners, the slot in user_data
	armed   bool   // a multishot readiness poll is in flight
	cancel  bool   // and a cancel for it too
	more    bool   // the last batch stopped at acceptBatch: accept again next round
	stopped bool   // StopAccepting: never re-armed
	rearmAt int64  // loop clock (ns) at which a backed-off listener is re-armed; 0: none
}

// eventLoop is one loop: a ring, its provided-buffer ring, an eventfd for
// wake-ups, and the connections accepted on it. Every field without a comment
// saying otherwise is touched only by the loop goroutine (after Serve; New
// and a never-served Stop touch them before).
type eventLoop struct {
	s       *server.Server[*eventLoop]
	h       loop.Handler
	idx     int
	ring    *giouring.Ring
	flags   uint32 // io_uring_setup flags the kernel accepted
	bufs    *bufRing
	wakes   server.WakeQueue[*conn] // other goroutines' Wake and commands (its own locking)
	tick    int64                   // TickInterval in ns
	linger  int64                   // LingerTimeout in ns
	backoff int64                   // AcceptBackoff in ns

	listeners []*listenerState
	conns     []*conn  // slot table; user_data carries the slot
	free      []uint32 // free slots
	gen       uint32   // last connection generation (24 bits)

	batch []*giouring.CompletionQueueEvent // reap's window on the CQ ring
	scan  []*giouring.CompletionQueueEvent // quiesce's window, allocated on first Detach

	ready, readySpare []*conn // connections with loop-side work (see service)
	timed             []*conn // closing connections with a deadline
	cur               *conn   // connection whose OnRead is running
	curIn             []byte  // the input that OnRead was given
	curDirect         bool    // curIn is a provided buffer, not cur.in

	start    time.Time
	now      time.Time
	nowNs    int64 // monotonic ns since start
	nextTick int64
	// nextYield is when the loop next yields its thread to the scheduler
	// (yield); loop clock, ns.
	nextYield int64
	// ts is io_uring_enter's wait timeout. giouring hands the kernel its
	// address as an integer, so it must live in a heap object (which the Go
	// GC never moves), never on a goroutine stack (which can move).
	ts        syscall.Timespec
	arg       getEventsArg // io_uring_enter's EXT_ARG, pointing at ts; heap too
	inline    uint32       // SQEs prepared since the last enter that complete in it (see enter)
	inflight  int          // requests whose completion is still due (connections, listener polls, wake poll)
	wakeArmed bool         // the eventfd poll is in flight
	stopping  bool
	stopAt    int64
	abandoned bool  // the kernel may still use loop memory: never free it
	fatal     error // the ring failed; the loop ends
	spareSQE  giouring.SubmissionQueueEntry
	rsa       unix.RawSockaddrAny // accept's peer address
	locals    socket.LocalAddrs
	pins      map[*conn]*runtime.Pinner // sends waiting for room (pin)
	pinFree   []*runtime.Pinner

	nconns atomic.Int64 // open connections: written by the loop, read by Conns (any goroutine)
	enters atomic.Int64 // io_uring_enter calls made: written by the loop, read by tests
}

func newEventLoop(s *server.Server[*eventLoop], b Backend, idx int) (*eventLoop, error) {
	l := &eventLoop{
		s: s, h: s.Cfg.Handler, idx: idx,
		tick:    int64(s.Cfg.TickInterval),
		linger:  int64(b.LingerTimeout),
		backoff: int64(b.AcceptBackoff),
		batch:   make([]*giouring.CompletionQueueEvent, reapBatch),
	}
	var err error
	// R_DISABLED: a SINGLE_ISSUER ring belongs to the thread that enables
	// it, which is the loop's locked thread, not New's caller.
	l.ring, l.flags, err = newRing(sqEntries, cqEntries, giouring.SetupRDisabled)
	if err != nil {
		return nil, err
	}
	if l.bufs, err = newBufRing(l.ring, b.BufferRingEntries, s.Cfg.ReadBufferSize); err != nil {
		l.destroy()
		return nil, err
	}
	if err := l.wakes.Open(); err != nil {
		l.destroy()
		return nil, err
	}
	for _, sl := range s.ListenersOf(idx) {
		l.listeners = append(l.listeners, &listenerState{Listener: sl, idx: uint32(len(l.listeners))})
	}
	return l, nil
}

// abandonedMem keeps memory that the kernel may still read or write after a
// loop gave up waiting for its requests (a stop that timed out, a broken
// ring): it must stay mapped and reachable for the life of the process.
var abandonedMem struct {
	sync.Mutex
	keep []any
}

// destroy releases the ring, the buffer ring and the eventfd, after which
// Wake and commands are no-ops. Unless the loop was abandoned, no request is
// in flight by now, so the kernel no longer touches the buffers.
func (l *eventLoop) destroy() {
	l.wakes.Close()
	if l.ring == nil {
		return
	}
	if l.abandoned {
		abandonedMem.Lock()
		abandonedMem.keep = append(abandonedMem.keep, l.bufs, l.conns)
		abandonedMem.Unlock()
		l.ring.QueueExit()
	} else {
		if l.bufs != nil {
			// Fails with EEXIST off the loop thread once the ring was
			// enabled; closing the ring drops the registration anyway.
			l.ring.UnregisterBufferRing(bufGroup)
		}
		l.ring.QueueExit()
		if l.bufs != nil {
			l.bufs.unmap()
		}
	}
	l.ring, l.bufs = nil, nil
}

func (l *eventLoop) clock() {
	l.now = time.Now()
	l.nowNs = int64(l.now.Sub(l.start))
}

// Run is the loop goroutine. It returns nil after Stop, or the error that
// ended it; either way every connection gets its OnClose.
func (l *eventLoop) Run() error {
	// Always locked, whatever Config.LockOSThread says: a SINGLE_ISSUER ring
	// accepts submissions only from the thread that enabled it, and with
	// DEFER_TASKRUN completion work runs only on that thread. Never
	// unlocked: the thread ends with the goroutine, after the ring is gone.
	runtime.LockOSThread()
	defer l.destroy()
	if _, err := l.ring.EnableRings(); err != nil {
		return fmt.Errorf("io_uring: loop %d: enable ring: %w", l.idx, err)
	}
	// Enter through a registered ring index (no file lookup per
	// io_uring_enter). The index belongs to this thread, which the loop
	// never leaves. Only where register calls can use it too
	// (IORING_FEAT_REG_REG_RING, 6.3): giouring then makes every register
	// call through it. Best effort: the descriptor works as well.
	if l.ring.Features()&giouring.FeatRegRegRing != 0 {
		_, _ = l.ring.RegisterRingFd()
	}
	l.start = time.Now()
	l.clock()
	l.nextTick = l.nowNs + l.tick
	l.armWake()
	for _, ln := range l.listeners {
		l.armAccept(ln)
	}
	for l.fatal == nil {
		if l.stopping && (l.inflight == 0 || l.nowNs >= l.stopAt) {
			break
		}
		if err := l.enter(); err != nil {
			l.fatal = fmt.Errorf("io_uring: loop %d: io_uring_enter: %w", l.idx, err)
			break
		}
		l.clock()
		l.reap()
		if l.wakes.Pending() {
			l.drainWakes()
		}
		l.timers()
		l.acceptMore()
		l.runReady()
		if l.nowNs >= l.nextYield {
			l.yield()
		}
	}
	if l.inflight > 0 {
		// A broken ring or a stop that timed out: the kernel may still
		// use connection buffers, so they are never freed or reused.
		l.abandoned = true
		l.s.Cfg.Logger.Error("io_uring loop ended with requests in flight; keeping their memory",
			"loop", l.idx, "inflight", l.inflight, "err", l.fatal)
	}
	l.closeAll() // none left after a clean stop
	return l.fatal
}

// yieldEvery is how often a busy loop yields (yield). Under the runtime's
// forced-preemption interval (10 ms, forcePreemptNS in runtime/proc.go).
const yieldEvery = 5 * time.Millisecond

// yield lets the scheduler run, so that the loop goroutine's P records a new
// schedule. The loop never parks (it sleeps in io_uring_enter, a system
// call, on its locked thread), so without it the runtime's monitor (sysmon)
// sees the same schedule for 10 ms, preempts the goroutine with a signal
// (which also interrupts io_uring_enter), and, having acted, goes back to
// polling every 20 microseconds for a while: measured at one request at a
// time, about 100 preemptions a second and a sysmon wake-up every 7
// requests. A yield costs two thread hand-offs (the thread is locked), 200
// times a second at most.
func (l *eventLoop) yield() {
	l.nextYield = l.nowNs + int64(yieldEvery)
	runtime.Gosched()
}

// waitNs returns how long enter may wait: 0 if work is ready, else until the
// next tick, listener re-arm or stop deadline.
func (l *eventLoop) waitNs() int64 {
	if len(l.ready) > 0 {
		return 0
	}
	d := l.nextTick
	for _, ln := range l.listeners {
		if ln.more {
			return 0
		}
		if ln.rearmAt != 0 && ln.rearmAt < d {
			d = ln.rearmAt
		}
	}
	if l.stopping {
		d = min(d, l.stopAt)
	}
	return d - l.nowNs
}

// reap handles the completions in the CQ ring. Each one is copied and its
// slot released before it is handled, so that a handler that detaches a
// connection (quiesce) sees exactly the completions not yet handled.
func (l *eventLoop) reap() {
	for round := 0; round < reapRounds; round++ {
		// Sized to what is ready: giouring's PeekBatchCQE fills every
		// slot it is given, ready or not (a known upstream defect, see
		// its doc.go), which cost 256 pointer stores per reap. With none
		// ready it is not called at all: it would enter the kernel to
		// run pending completion work, which enter does.
		k := min(int(l.ring.CQReady()), len(l.batch))
		if k == 0 {
			return
		}
		n := int(l.ring.PeekBatchCQE(l.batch[:k]))
		for i := 0; i < n; i++ {
			e := l.batch[i]
			ud, res, flags := e.UserData, e.Res, e.Flags
			l.ring.CQAdvance(1)
			l.dispatch(ud, res, flags)
		}
		if n < len(l.batch) {
			return
		}
	}
}

func (l *eventLoop) dispatch(ud uint64, res int32, flags uint32) {
	switch k := udKind(ud); k {
	case kindWake:
		l.onWake(res, flags)
	case kindAccept:
		if i := udSlot(ud); int(i) < len(l.listeners) {
			l.onAccept(l.listeners[i], res, flags)
		}
	case kindRecv, kindSend, kindPoll, kindShutdown, kindClose:
		var c *conn
		if slot := udSlot(ud); int(slot) < len(l.conns) {
			c = l.conns[slot]
		}
		if c == nil || c.gen != udGen(ud) {
			// Cannot happen: a slot is freed only once its requests
			// completed. Still, never leak a buffer.
			if flags&giouring.CQEFBuffer != 0 {
				l.bufs.put(uint16(flags >> giouring.CQEBufferShift))
			}
			return
		}
		switch k {
		case kindRecv:
			l.onRecv(c, res, flags)
		case kindSend:
			l.onSend(c, res)
		case kindPoll:
			l.onPoll(c, res)
		case kindShutdown:
			l.onShutdown(c, res)
		case kindClose:
			l.onClose(c, res)
		}
	}
	// kindCancel: the cancelled request reports for itself.
	// kindIgnored: already handled by quiesce.
}

// sqe returns a free submission slot, submitting what is queued if the SQ
// ring is full. If the kernel refuses to take submissions, the loop ends
// with an error; the SQE returned then is a dummy that is never submitted.
func (l *eventLoop) sqe() *giouring.SubmissionQueueEntry {
	for try := 0; ; try++ {
		if e := l.ring.GetSQE(); e != nil {
			return e
		}
		if _, err := l.ring.Submit(); err != nil && try >= 100 {
			if l.fatal == nil {
				l.fatal = fmt.Errorf("io_uring: loop %d: submit: %w", l.idx, err)
			}
			return &l.spareSQE
		}
	}
}

// cancel submits an async cancel of the request with user_data ud.
func (l *eventLoop) cancel(ud uint64) {
	sqe := l.sqe()
	sqe.PrepareCancel64(ud, 0)
	sqe.UserData = userData(kindCancel, 0, 0)
}

// armWake arms a multishot poll on the eventfd: a write from any goroutine
// completes it and so ends the loop's wait.
func (l *eventLoop) armWake() {
	sqe := l.sqe()
	sqe.PreparePollMultishot(l.wakes.FD(), unix.POLLIN)
	sqe.UserData = userData(kindWake, 0, 0)
	l.wakeArmed = true
	l.inflight++
}

func (l *eventLoop) onWake(res int32, flags uint32) {
	if flags&giouring.CQEFMore == 0 {
		l.wakeArmed = false
		l.inflight--
		// Re-armed at once unless stopping or failing (then at the next
		// tick, so that a persistent error cannot spin the loop).
		if !l.stopping && res >= 0 {
			l.armWake()
		}
	}
	if res > 0 {
		l.wakes.Reset()
	} else if res < 0 && errnoOf(res) != unix.ECANCELED {
		l.s.Cfg.Logger.Error("io_uring eventfd poll failed", "loop", l.idx, "err", errnoOf(res))
	}
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

// heldCap bounds the input held back on an open, unpaused connection (input
// received but not yet presented): past it the receive is cancelled until
// the held input falls back under it, so user space never buffers more than
// about heldCap plus what was in flight when the cancel took effect.
func (l *eventLoop) heldCap() int { return 4 * l.bufs.size }

// markReady queues c for service before the loop next waits.
func (l *eventLoop) markReady(c *conn) {
	if !c.inReady {
		c.inReady = true
		l.ready = append(l.ready, c)
	}
}

// runReady services the queued connections. Entries added meanwhile wait
// for the next round (which then does not block).
func (l *eventLoop) runReady() {
	batch := l.ready
	l.ready = l.readySpare[:0]
	for i, c := range batch {
		batch[i] = nil
		c.inReady = false
		l.service(c)
	}
	l.readySpare = batch[:0]
}

// service brings a connection's requests in line with its state: it
// delivers input that ResumeRead asked for (or that arrived while paused),
// acts on the peer's EOF once all input was presented, arms the receive (or,
// while paused, the error poll) and submits queued output.
func (l *eventLoop) service(c *conn) {
	if c.state == stOpen && !c.paused {
		switch {
		case c.deliver:
			c.deliver = false
			l.deliverBuffered(c, false)
		case c.held() > 0:
			l.deliverBuffered(c, true)
		}
		if c.state == stOpen && c.eof && !c.paused && c.held() == 0 {
			l.peerClosed(c)
		}
	}
	switch c.state {
	case stOpen:
		switch {
		case c.eof:
		case !c.paused:
			if c.ops&opPoll != 0 {
				l.cancelOp(c, kindPoll, opPoll)
			}
			if c.ops&opRecv == 0 && c.held() <= l.heldCap() {
				l.armRecv(c) // past heldCap, re-armed once held input is presented
			}
		case c.ops&(opRecv|opPoll) == 0 && !c.rdhup:
			l.armPoll(c)
		}
	case stClosing, stLinger:
		// Input is read and discarded (lingering close); a reset or EOF
		// is seen at once.
		if c.ops&opPoll != 0 {
			l.cancelOp(c, kindPoll, opPoll)
		}
		if c.ops&opRecv == 0 && !c.eof {
			l.armRecv(c)
		}
	default:
		return
	}
	l.flush(c)
}

// cancelOp cancels c's request of kind (op bit bit) unless already done.
func (l *eventLoop) cancelOp(c *conn, kind opKind, bit uint8) {
	if c.ops&bit != 0 && c.cancels&bit == 0 {
		c.cancels |= bit
		l.cancel(userData(kind, c.gen, c.slot))
	}
}

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

func (l *eventLoop) onPoll(c *conn, res int32) {
	c.ops &^= opPoll
	c.cancels &^= opPoll
	l.inflight--
	switch {
	case res > 0 && res&(unix.POLLERR|unix.POLLHUP) != 0 && c.state == stOpen:
		l.fail(c, sockError(int(c.fd)))
	case res > 0:
		// Hang-up of the peer's side only (POLLRDHUP): re-arming would
		// fire again at once. The EOF is read once resumed.
		c.rdhup = true
	default:
		l.markReady(c) // cancelled or failed: service decides again
	}
	l.maybeClose(c)
}

// sockError returns the socket's pending error, or io.EOF if none.
func sockError(fd int) error {
	if e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
		return fmt.Errorf("socket: %w", unix.Errno(e))
	}
	return io.EOF
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

func (l *eventLoop) addTimed(c *conn) {
	if !c.timed {
		c.timed = true
		l.timed = append(l.timed, c)
	}
}

// timers runs what is due: OnTick and the closing-connection deadlines at
// each tick, and listener re-arms after an accept back-off.
func (l *eventLoop) timers() {
	if l.nowNs >= l.nextTick {
		l.nextTick = l.nowNs + l.tick
		l.h.OnTick(l.idx, l.now)
		l.expire()
		if !l.wakeArmed && !l.stopping {
			l.armWake()
		}
	}
	for _, ln := range l.listeners {
		if ln.rearmAt != 0 && ln.rearmAt <= l.nowNs && !ln.armed {
			ln.rearmAt = 0
			if !ln.stopped && !l.stopping {
				l.armAccept(ln)
			}
		}
	}
}

// expire closes connections whose drain or linger deadline passed.
func (l *eventLoop) expire() {
	j := 0
	for _, c := range l.timed {
		switch {
		case c.state != stClosing && c.state != stLinger:
			c.timed = false
		case l.nowNs >= c.deadline:
			c.timed = false
			if c.state == stClosing && c.err == nil {
				c.err = loop.ErrDrainTimeout
			}
			l.finish(c) // lingering: the response was sent, the peer just kept talking
		default:
			l.timed[j] = c
			j++
		}
	}
	clear(l.timed[j:])
	l.timed = l.timed[:j]
}

// drainWakes runs commands first, then OnWake for each connection that
// asked.
func (l *eventLoop) drainWakes() {
	cmds, batch := l.wakes.Take()
	if cmds&server.CmdStopAccepting != 0 {
		l.stopAccepting()
	}
	if cmds&server.CmdStop != 0 && !l.stopping {
		l.beginStop()
	}
	for _, c := range batch {
		// A closed connection is dead, not queued: skipped.
		if c.wake.Claim() {
			l.h.OnWake(c)
		}
	}
	l.wakes.Done(batch)
}

// Command sends cmd to the loop; any goroutine.
func (l *eventLoop) Command(cmd server.Cmd) { l.wakes.Command(cmd) }

// Release frees what newEventLoop created, for a loop that never ran.
func (l *eventLoop) Release() { l.destroy() }

// Conns is the number of open connections, closing ones included; any
// goroutine.
func (l *eventLoop) Conns() int { return int(l.nconns.Load()) }

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
