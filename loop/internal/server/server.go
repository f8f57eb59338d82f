// Package server is the half of a loop.Server that does not depend on how a
// loop waits, shared by loop/epoll and loop/uring: the configuration
// defaults, the duplicates of the listening sockets, the
// Serve/StopAccepting/Stop lifecycle over one goroutine per loop, the
// server-wide accept switch and accept-error log, and the wake queue
// through which other goroutines reach a loop (wake.go).
//
// It owns the listener duplicates (closed when Serve returns, or by Stop
// before Serve); each backend owns its loops and everything they open. It
// knows nothing of epoll or io_uring, and nothing of HTTP.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/socket"
)

// Defaults for the zero values of loop.Config and of the backends'
// settings; the same for every backend, so that switching backends changes
// no behaviour.
const (
	DefaultLingerTimeout  = 2 * time.Second
	DefaultAcceptBackoff  = 100 * time.Millisecond
	DefaultTickInterval   = 100 * time.Millisecond
	DefaultReadBufferSize = 64 << 10
)

// Loop is one backend event loop as the server drives it.
type Loop interface {
	// Run is the loop goroutine. It returns nil after CmdStop, or the
	// error that ended the loop; either way every connection has had its
	// OnClose and the loop has released what it opened.
	Run() error
	// Command sends cmd to the loop; any goroutine.
	Command(cmd Cmd)
	// Release frees what the loop's constructor opened, for a loop that
	// never ran.
	Release()
	// Conns is the number of open connections; any goroutine.
	Conns() int
}

// Options are what the backend tells New about itself.
type Options struct {
	// Name is the backend's name; every error New and Serve return starts
	// with it ("epoll: ...").
	Name string
	// AcceptBackoff is the backend's pause after an accept error, for the
	// log line.
	AcceptBackoff time.Duration
}

// Listener is one listening socket as a loop serves it.
type Listener struct {
	FD    int             // the server's duplicate: closed by Serve, never by a loop
	Addr  string          // as configured, for logs
	Unix  bool            // a unix-domain socket
	Local *netip.AddrPort // its connections' local address; nil: a wildcard address
}

// Server is a loop.Server over loops of type L.
type Server[L Loop] struct {
	// Set by New and read-only after (any goroutine).
	Cfg   loop.Config // with the defaults applied
	Loops []L
	opts  Options
	// lfds are the duplicates of Cfg.Listeners, same order. The loop
	// constructors read them in New; Serve closes them once every loop
	// has ended (release, for a server that never served).
	lfds []int

	// noAccept is set by StopAccepting before the loops hear of it: each
	// loop checks it (Accepting) before every accept, so one that was busy
	// when asked takes no connection once it runs again (any goroutine).
	noAccept  atomic.Bool
	acceptLog socket.LogLimiter // any goroutine (atomic)

	mu      sync.Mutex
	state   int  // under mu: stateNew, stateServing, stateDone
	stopped bool // under mu: Stop was called
}

const (
	stateNew = iota
	stateServing
	stateDone
)

// New checks cfg, applies the defaults, duplicates the listeners
// (socket.DupListener) and creates cfg.Loops loops with newLoop, so that
// configuration and resource errors surface here; nothing is accepted until
// Serve. On error it releases whatever it had created.
func New[L Loop](cfg loop.Config, o Options, newLoop func(s *Server[L], idx int) (L, error)) (*Server[L], error) {
	if cfg.Loops < 1 {
		return nil, fmt.Errorf("%s: Loops must be >= 1, got %d", o.Name, cfg.Loops)
	}
	if cfg.Handler == nil {
		return nil, fmt.Errorf("%s: nil Handler", o.Name)
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
	s := &Server[L]{Cfg: cfg, opts: o}
	for i, l := range cfg.Listeners {
		if l.Loop < -1 || l.Loop >= cfg.Loops {
			s.release()
			return nil, fmt.Errorf("%s: listener %s: Loop %d out of range [-1, %d)", o.Name, l.Addr, l.Loop, cfg.Loops)
		}
		fd, err := socket.DupListener(l.File)
		if err != nil {
			s.release()
			return nil, fmt.Errorf("%s: listener %d (%s): %w", o.Name, i, l.Addr, err)
		}
		s.lfds = append(s.lfds, fd)
	}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newLoop(s, i)
		if err != nil {
			s.release()
			return nil, fmt.Errorf("%s: loop %d: %w", o.Name, i, err)
		}
		s.Loops = append(s.Loops, l)
	}
	return s, nil
}

// ListenersOf returns the listeners loop idx serves: those pinned to it and
// those every loop shares. For the loop constructors, in New.
func (s *Server[L]) ListenersOf(idx int) []Listener {
	var out []Listener
	for i, lc := range s.Cfg.Listeners {
		if lc.Loop != idx && lc.Loop != -1 {
			continue
		}
		out = append(out, Listener{FD: s.lfds[i], Addr: lc.Addr, Unix: lc.Unix, Local: socket.ListenerLocal(s.lfds[i], lc.Unix)})
	}
	return out
}

// Serve runs the loops until Stop and returns nil, or the errors that ended
// loops (after stopping the others). On the way out it closes the server's
// duplicates of the listeners; the caller's files stay open.
func (s *Server[L]) Serve() error {
	s.mu.Lock()
	switch s.state {
	case stateDone:
		s.mu.Unlock()
		return nil
	case stateServing:
		s.mu.Unlock()
		return fmt.Errorf("%s: Serve called twice", s.opts.Name)
	}
	s.state = stateServing
	s.mu.Unlock()

	errs := make([]error, len(s.Loops))
	var wg sync.WaitGroup
	for i, l := range s.Loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Run(); err != nil {
				errs[i] = err
				s.Stop() // a dead loop takes the server down
			}
		}()
	}
	wg.Wait()

	s.mu.Lock()
	s.state = stateDone
	s.mu.Unlock()
	s.closeListeners()
	return errors.Join(errs...)
}

// StopAccepting stops every loop accepting: no loop accepts once it
// returns (a loop in the middle of an accept serves what it got). It
// returns at once; each loop stops watching its listeners at its next
// wake-up.
func (s *Server[L]) StopAccepting() {
	s.noAccept.Store(true)
	for _, l := range s.Loops {
		l.Command(CmdStopAccepting)
	}
}

// Stop asks every loop to abort its connections (OnClose(c, nil) each) and
// end; Serve returns once all have. It returns at once and is idempotent.
// Before Serve, it releases the server's resources itself. Only what the
// backend opened is closed, never the caller's listener files.
func (s *Server[L]) Stop() {
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
	for _, l := range s.Loops {
		l.Command(CmdStop)
	}
}

// release frees everything New created; only for a server that never
// served.
func (s *Server[L]) release() {
	for _, l := range s.Loops {
		l.Release()
	}
	s.closeListeners()
}

func (s *Server[L]) closeListeners() {
	for _, fd := range s.lfds {
		unix.Close(fd)
	}
	s.lfds = nil
}

// Conns reports the open connections per loop.
func (s *Server[L]) Conns() []int {
	n := make([]int, len(s.Loops))
	for i, l := range s.Loops {
		n[i] = l.Conns()
	}
	return n
}

// Accepting reports whether the loops may still accept (StopAccepting was
// not called); any goroutine.
func (s *Server[L]) Accepting() bool { return !s.noAccept.Load() }

// LogAcceptError logs at most one accept error per second for the server;
// any goroutine.
func (s *Server[L]) LogAcceptError(now time.Time, loopIdx int, addr string, err error) {
	if ok, dropped := s.acceptLog.Allow(now, time.Second); ok {
		s.Cfg.Logger.Warn("accept failed; backing off",
			"loop", loopIdx, "listener", addr, "err", err,
			"backoff", s.opts.AcceptBackoff, "suppressed", dropped)
	}
}
