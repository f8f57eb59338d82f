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
// with loop/epoll live in loop/socket; the server's lifecycle and the loops'
// wake queue in loop/internal/server. docs/design.md, "The io_uring backend",
// describes the design.
//
// Files by concern: backend.go (Backend, New), eventloop.go (a loop's state,
// Run, the ready list and service), ring.go (ring set-up, user_data, reaping
// and submitting), bufring.go (the provided-buffer ring), enter.go (the
// wait), accept.go, receive.go, send.go, close.go, timers.go, wake.go
// (wake-ups and commands), conn.go (loop.Conn, Detach), probe.go.
package uring

import (
	"math/bits"
	"time"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/internal/server"
)

// Defaults for the zero values of Backend and loop.Config, loop/epoll's
// (server's) so that switching backends changes no behaviour.
const (
	DefaultLingerTimeout     = server.DefaultLingerTimeout
	DefaultAcceptBackoff     = server.DefaultAcceptBackoff
	DefaultTickInterval      = server.DefaultTickInterval
	DefaultReadBufferSize    = server.DefaultReadBufferSize
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

var (
	_ loop.Backend   = Backend{}
	_ loop.EnvReader = Backend{}
)

func init() { loop.Register(Backend{}) }

// Name returns "io_uring".
func (Backend) Name() string { return "io_uring" }

// New creates a server with cfg (server.New). It creates every loop's ring
// (disabled until its loop thread enables it, IORING_SETUP_R_DISABLED,
// because a SINGLE_ISSUER ring belongs to the thread that enables it),
// buffer ring and eventfd at once, so that resource errors surface here;
// nothing is accepted until Serve. Stop releases them even if Serve never
// ran: each loop aborts its connections (OnClose(c, nil) each, once the
// kernel confirms the close) and ends.
func (b Backend) New(cfg loop.Config) (loop.Server, error) {
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
	s, err := server.New(cfg, server.Options{Name: "io_uring", AcceptBackoff: b.AcceptBackoff},
		func(s *server.Server[*eventLoop], idx int) (*eventLoop, error) { return newEventLoop(s, b, idx) })
	if err != nil {
		return nil, err
	}
	return s, nil
}
