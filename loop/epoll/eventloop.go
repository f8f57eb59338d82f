package epoll

import (
	"fmt"
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

// maxEvents is the most events taken per epoll_wait.
const maxEvents = 512

// eventLoop is one loop: an epoll set, an eventfd for wake-ups, and the
// connections accepted on it. Every field without a comment saying otherwise
// is touched only by the loop goroutine (after Serve; New and a never-served
// Stop touch them before it exists).
type eventLoop struct {
	s       *server.Server[*eventLoop] // read-only after New (any goroutine)
	h       loop.Handler               // read-only after New
	idx     int                        // read-only after New (any goroutine: Conn.Loop)
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
			l.closeNow(c, socket.PendingError(c.fd))
		}
	}
	l.flushClosed()
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

// Release closes the descriptors of a loop that never ran.
func (l *eventLoop) Release() { l.closeFDs() }

// Conns is the number of open connections, lingering ones included; any
// goroutine.
func (l *eventLoop) Conns() int { return int(l.nconns.Load()) }
