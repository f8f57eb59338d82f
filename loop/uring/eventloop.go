package uring

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/internal/server"
	"github.com/asyncd/asyncd/loop/socket"
	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

const (
	reapBatch  = 256 // completions taken per PeekBatchCQE
	reapRounds = 8   // batches per iteration, so that ready work is not starved
)

// eventLoop is one loop: a ring, its provided-buffer ring, an eventfd for
// wake-ups, and the connections accepted on it. Every field without a comment
// saying otherwise is touched only by the loop goroutine (after Serve; New
// and a never-served Stop touch them before).
type eventLoop struct {
	s       *server.Server[*eventLoop] // read-only after New (any goroutine)
	h       loop.Handler               // read-only after New
	idx     int                        // read-only after New (any goroutine: Conn.Loop)
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
	keep []any // under the mutex: any loop goroutine appends
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

// Release frees what newEventLoop created, for a loop that never ran.
func (l *eventLoop) Release() { l.destroy() }

// Conns is the number of open connections, closing ones included; any
// goroutine.
func (l *eventLoop) Conns() int { return int(l.nconns.Load()) }
