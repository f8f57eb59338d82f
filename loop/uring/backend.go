// Package uring is asyncd's io_uring event-loop backend: a loop.Backend on
// Linux io_uring through a vendored copy of github.com/pawelgaczynski/giouring
// (internal/giouring; see its package comment for why it is vendored).
//
// Each loop owns one ring, driven from a goroutine locked to its OS thread
// (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN when the kernel has them), a
// provided-buffer ring that multishot receives fill, an eventfd for wake-ups,
// and the connections it accepted (accept4 on a multishot poll's readiness,
// never IORING_OP_ACCEPT: see armAccept). Output is copied
// into per-connection buffers and submitted once per loop iteration.
//
// It owns its rings, buffer rings, eventfds, the duplicates of the listening
// sockets it is handed (never the caller's files), the accepted sockets and
// every buffer the kernel reads or writes. It knows nothing of HTTP: it must
// not import the engine, the parser or handler code. Socket helpers shared
// with loop/epoll live in loop/socket. docs/design.md, "The io_uring backend",
// describes the design.
package uring

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/socket"
)

// Defaults for the zero values of Backend and loop.Config. They match
// loop/epoll's so that switching backends changes no behaviour.
const (
	DefaultLingerTimeout     = 2 * time.Second
	DefaultAcceptBackoff     = 100 * time.Millisecond
	DefaultTickInterval      = 100 * time.Millisecond
	DefaultReadBufferSize    = 64 << 10
	DefaultBufferRingEntries = 256
)

// stopDrainTimeout bounds how long a stopping loop waits for the kernel to
// finish its in-flight requests (cancelled at once, normally) before it
// gives up and abandons the memory they may still touch.
const stopDrainTimeout = 5 * time.Second

// Backend is the io_uring loop.Backend. The zero value is ready to use.
type Backend struct {
	// LingerTimeout bounds a graceful Close: how long queued output may make
	// no progress, and then how long input is read and discarded after
	// shutdown(SHUT_WR) while waiting for the peer's EOF. 0 means
	// DefaultLingerTimeout.
	LingerTimeout time.Duration
	// AcceptBackoff is how long a loop stops accepting from a listener after
	// an accept error such as EMFILE. 0 means DefaultAcceptBackoff.
	AcceptBackoff time.Duration
	// BufferRingEntries is the number of receive buffers (each
	// Config.ReadBufferSize bytes, mapped lazily) per loop; rounded up to a
	// power of two in [8, 32768]. 0 means DefaultBufferRingEntries.
	BufferRingEntries int
}

var _ loop.Backend = Backend{}

// Name returns "io_uring".
func (Backend) Name() string { return "io_uring" }

// New creates a server with cfg. It creates every loop's ring (disabled
// until its loop thread enables it, IORING_SETUP_R_DISABLED, because a
// SINGLE_ISSUER ring belongs to the thread that enables it), buffer ring and
// eventfd, and duplicates the listeners (socket.DupListener) at once, so that
// configuration and resource errors surface here; nothing is accepted until
// Serve. Stop releases them even if Serve never ran.
func (b Backend) New(cfg loop.Config) (loop.Server, error) {
	if cfg.Loops < 1 {
		return nil, fmt.Errorf("io_uring: Loops must be >= 1, got %d", cfg.Loops)
	}
	if cfg.Handler == nil {
		return nil, errors.New("io_uring: nil Handler")
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
	if b.BufferRingEntries <= 0 {
		b.BufferRingEntries = DefaultBufferRingEntries
	}
	b.BufferRingEntries = 1 << bits.Len(uint(min(max(b.BufferRingEntries, 8), 32768)-1))
	s := &server{cfg: cfg, opts: b}
	for i, l := range cfg.Listeners {
		if l.Loop < -1 || l.Loop >= cfg.Loops {
			s.release()
			return nil, fmt.Errorf("io_uring: listener %s: Loop %d out of range [-1, %d)", l.Addr, l.Loop, cfg.Loops)
		}
		fd, err := socket.DupListener(l.File)
		if err != nil {
			s.release()
			return nil, fmt.Errorf("io_uring: listener %d (%s): %w", i, l.Addr, err)
		}
		s.lfds = append(s.lfds, fd)
	}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newEventLoop(s, i)
		if err != nil {
			s.release()
			return nil, fmt.Errorf("io_uring: loop %d: %w", i, err)
		}
		s.loops = append(s.loops, l)
	}
	return s, nil
}

// server is the io_uring loop.Server.
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

// Serve runs the loops until Stop and returns nil, or the errors that ended
// loops (after stopping the others).
func (s *server) Serve() error {
	s.mu.Lock()
	switch s.state {
	case stateDone:
		s.mu.Unlock()
		return nil
	case stateServing:
		s.mu.Unlock()
		return errors.New("io_uring: Serve called twice")
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
// once; each loop cancels its listener polls at its next wake-up.
func (s *server) StopAccepting() {
	s.noAccept.Store(true)
	for _, l := range s.loops {
		l.command(cmdStopAccepting)
	}
}

// Stop asks every loop to abort its connections (OnClose(c, nil) each, once
// the kernel confirms the close) and end; Serve returns once all have. It
// returns at once. Before Serve, it releases the server's resources itself.
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

// release frees everything New created; only for a server that never served.
func (s *server) release() {
	for _, l := range s.loops {
		l.destroy()
	}
	for _, fd := range s.lfds {
		unix.Close(fd)
	}
	s.lfds = nil
}

// Conns reports the open connections per loop, closing ones included.
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
