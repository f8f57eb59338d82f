// Package epoll is asyncd's epoll event-loop backend: a loop.Backend built
// directly on epoll(7), accept4(2), read(2) and write(2) via
// golang.org/x/sys/unix.
//
// It owns its loop goroutines, their epoll and eventfd descriptors, the
// accepted connection sockets, the per-loop read buffers and the
// per-connection leftover and pending buffers. It does not own the listening
// sockets it is handed (it duplicates them and closes only its duplicates) and
// knows nothing of HTTP: it must not import the engine, the parser or handler
// code. Socket-level pieces shared with loop/uring live in loop/socket; the
// server's lifecycle and the loops' wake queue in loop/internal/server.
// docs/design.md, "The epoll backend", describes the design.
//
// Files by concern: backend.go (Backend, New), eventloop.go (a loop's state,
// Run, event dispatch), wait.go (sleeping on the netpoller), rawsys.go (the
// raw system calls), accept.go, receive.go, send.go, close.go, timers.go,
// wake.go (wake-ups and commands), conn.go (loop.Conn, Detach).
package epoll

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/internal/server"
)

// Defaults for the zero values of Backend and loop.Config.
const (
	DefaultLingerTimeout  = server.DefaultLingerTimeout
	DefaultAcceptBackoff  = server.DefaultAcceptBackoff
	DefaultTickInterval   = server.DefaultTickInterval
	DefaultReadBufferSize = server.DefaultReadBufferSize
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

func init() { loop.Register(Backend{}) }

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

// New creates a server with cfg (server.New). Each loop's epoll and
// eventfd descriptors are created at once, so that resource errors surface
// here; nothing is accepted until Serve. Stop releases them even if Serve
// never ran. Only descriptors the backend opened are ever closed (its
// listener duplicates, epoll fds, eventfds, accepted sockets), never the
// caller's listener files.
func (b Backend) New(cfg loop.Config) (loop.Server, error) {
	if b.LingerTimeout <= 0 {
		b.LingerTimeout = DefaultLingerTimeout
	}
	if b.AcceptBackoff <= 0 {
		b.AcceptBackoff = DefaultAcceptBackoff
	}
	s, err := server.New(cfg, server.Options{Name: "epoll", AcceptBackoff: b.AcceptBackoff},
		func(s *server.Server[*eventLoop], idx int) (*eventLoop, error) { return newEventLoop(s, b, idx) })
	if err != nil {
		return nil, err
	}
	return s, nil
}
