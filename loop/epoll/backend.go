// Package epoll is asyncd's epoll event-loop backend: a loop.Backend built
// directly on epoll(7), accept4(2), read(2) and write(2) via
// golang.org/x/sys/unix.
//
// It owns its loop goroutines, their epoll and eventfd descriptors, the
// accepted connection sockets, the per-loop read buffers and the
// per-connection leftover and pending buffers. It does not own the listening
// sockets it is handed (it duplicates them and closes only its duplicates) and
// knows nothing of HTTP: it must not import the engine, the parser or handler
// code. Socket-level pieces shared with loop/uring live in loop/socket.
// docs/design.md, "The epoll backend", describes the design.
package epoll

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/socket"
)

// Defaults for the zero values of Backend and loop.Config.
const (
	DefaultLingerTimeout  = 2 * time.Second
	DefaultAcceptBackoff  = 100 * time.Millisecond
	DefaultTickInterval   = 100 * time.Millisecond
	DefaultReadBufferSize = 64 << 10
)

// Backend is the epoll loop.Backend. The zero value is ready to use.
type Backend struct {
	// LingerTimeout bounds a graceful Close: how long queued output may make
	// no progress, and then how long input is read and discarded after
	// shutdown(SHUT_WR) while waiting for the peer's EOF. 0 means
	// DefaultLingerTimeout.
	LingerTimeout time.Duration
	// AcceptBackoff is how long a loop stops accepting from a listener after
	// an accept error such as EMFILE. 0 means DefaultAcceptBackoff.
	AcceptBackoff time.Duration
}

var _ loop.Backend = Backend{}

// Name returns "epoll".
func (Backend) Name() string { return "epoll" }

// Probe reports why epoll cannot be used here, or nil.
func (Backend) Probe() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("epoll: unsupported OS %s", runtime.GOOS)
	}
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll: epoll_create1: %w", err)
	}
	unix.Close(fd)
	return nil
}

// New creates a server with cfg. It creates the loops' epoll and eventfd
// descriptors and duplicates the listeners (see socket.DupListener) at once,
// so that configuration and resource errors surface here; nothing is
// accepted until Serve. Stop releases them even if Serve never ran.
func (b Backend) New(cfg loop.Config) (loop.Server, error) {
	if cfg.Loops < 1 {
		return nil, fmt.Errorf("epoll: Loops must be >= 1, got %d", cfg.Loops)
	}
	if cfg.Handler == nil {
		return nil, errors.New("epoll: nil Handler")
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = DefaultReadBufferSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if b.LingerTimeout <= 0 {
		b.LingerTimeout = DefaultLingerTimeout
	}
	if b.AcceptBackoff <= 0 {
		b.AcceptBackoff = DefaultAcceptBackoff
	}
	s := &server{cfg: cfg, opts: b}
	for i, l := range cfg.Listeners {
		if l.Loop < -1 || l.Loop >= cfg.Loops {
			s.release()
			return nil, fmt.Errorf("epoll: listener %s: Loop %d out of range [-1, %d)", l.Addr, l.Loop, cfg.Loops)
		}
		fd, err := socket.DupListener(l.File)
		if err != nil {
			s.release()
			return nil, fmt.Errorf("epoll: listener %d (%s): %w", i, l.Addr, err)
		}
		s.lfds = append(s.lfds, fd)
	}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newEventLoop(s, i)
		if err != nil {
			s.release()
			return nil, fmt.Errorf("epoll: loop %d: %w", i, err)
		}
		s.loops = append(s.loops, l)
	}
	return s, nil
}

// server is the epoll loop.Server.
type server struct {
	cfg   loop.Config
	opts  Backend
	loops []*eventLoop
	lfds  []int // our duplicates of cfg.Listeners, same order

	acceptLog socket.LogLimiter
	// noAccept is set by StopAccepting before the loops hear of it: each
	// loop checks it before every accept, so one that was busy when asked
	// takes no connection once it runs again (any goroutine).
	noAccept atomic.Bool

	mu      sync.Mutex
	state   int // stateNew, stateServing, stateDone
	stopped bool
}

const (
	stateNew = iota
	stateServing
	stateDone
)

// Serve runs the loops until Stop and returns nil, or the first error that
// ended a loop (after stopping the others). On the way out it closes the
// server's duplicates of the listeners; the caller's files stay open.
func (s *server) Serve() error {
	s.mu.Lock()
	switch {
	case s.state == stateDone:
		s.mu.Unlock()
		return nil
	case s.state == stateServing:
		s.mu.Unlock()
		return errors.New("epoll: Serve called twice")
	}
	s.state = stateServing
	s.mu.Unlock()

	errs := make([]error, len(s.loops))
	var wg sync.WaitGroup
	for i, l := range s.loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.run(); err != nil {
				errs[i] = err
				s.Stop() // a dead loop takes the server down
			}
		}()
	}
	wg.Wait()

	s.mu.Lock()
	s.state = stateDone
	s.mu.Unlock()
	for _, fd := range s.lfds {
		unix.Close(fd)
	}
	s.lfds = nil
	return errors.Join(errs...)
}

// StopAccepting stops every loop accepting: no loop calls accept4 once it
// returns (a loop in the middle of one serves what it got). It returns at
// once; each loop removes its listeners from its epoll set at its next
// wake-up.
func (s *server) StopAccepting() {
	s.noAccept.Store(true)
	for _, l := range s.loops {
		l.command(cmdStopAccepting)
	}
}

// Stop asks every loop to abort its connections (OnClose(c, nil) each),
// close its epoll fd and eventfd, and end; Serve returns once all have. It
// returns at once and is idempotent. Before Serve, it releases the server's
// descriptors itself. Only descriptors the backend opened are closed (its
// listener duplicates, epoll fds, eventfds, accepted sockets), never the
// caller's listener files.
func (s *server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	if s.state == stateNew {
		s.state = stateDone
		s.release()
		return
	}
	for _, l := range s.loops {
		l.command(cmdStop)
	}
}

// release closes every descriptor New created; only for a server that never
// served.
func (s *server) release() {
	for _, l := range s.loops {
		l.closeFDs()
	}
	for _, fd := range s.lfds {
		unix.Close(fd)
	}
	s.lfds = nil
}

// Conns reports the open connections per loop, lingering ones included.
func (s *server) Conns() []int {
	n := make([]int, len(s.loops))
	for i, l := range s.loops {
		n[i] = int(l.nconns.Load())
	}
	return n
}

// logAcceptError logs at most one accept error per second for the server.
func (s *server) logAcceptError(now time.Time, loopIdx int, addr string, err error) {
	if ok, dropped := s.acceptLog.Allow(now, time.Second); ok {
		s.cfg.Logger.Warn("accept failed; backing off",
			"loop", loopIdx, "listener", addr, "err", err,
			"backoff", s.opts.AcceptBackoff, "suppressed", dropped)
	}
}
