// Package loop defines the contract between asyncd's event-loop backends
// (loop/epoll, loop/uring) and the connection engine that sits on top of them.
//
// A backend owns sockets, readiness or completion events, input and output
// buffering, accept, and the loop goroutines. It knows nothing of HTTP: it
// hands bytes to a Handler and sends the bytes the Handler writes. The engine
// owns everything HTTP. This package must not import the engine, the parser
// or any handler code: bytes flow loop -> engine -> loop, never the other way.
//
// Backends register by name (Register, from an init function, as
// database/sql drivers do; package loop/standard imports asyncd's own), and
// the serving process, the supervisor and the command line find them
// through the registry (Lookup, Names, Choose), never by importing one.
//
// Threading contract: every Handler method for a connection is called on that
// connection's loop goroutine, never concurrently with another callback of the
// same loop. Conn methods must be called on the loop goroutine too, except
// Wake, which is safe from any goroutine.
package loop

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"time"
)

// Conn is one accepted connection as the engine sees it.
type Conn interface {
	// Write sends p, or copies what the kernel does not take at once into the
	// connection's output queue; the caller may reuse p as soon as Write
	// returns. Each call may cost a syscall (epoll) or a submission (io_uring),
	// so callers batch: the engine writes everything one read produced at once.
	// Writing to a closed connection is a no-op.
	Write(p []byte)

	// OutboundBuffered reports the bytes written but not yet taken by the
	// kernel. The engine compares it with its per-connection limit.
	OutboundBuffered() int

	// PauseRead stops reading from the socket (the kernel's receive window
	// then pushes back on the client) until ResumeRead. Input already buffered
	// stays buffered and is not delivered while paused.
	PauseRead()

	// ResumeRead re-enables reading and, even if reading was not paused,
	// arranges for Handler.OnRead to be called soon on the loop with any input
	// already buffered. The engine uses it to continue with pipelined requests
	// it left unconsumed while a request was in flight.
	ResumeRead()

	// Close closes the connection once the queued output has been sent (or
	// after the backend's linger limit); Handler.OnClose follows. Reading stops
	// at once. Close is idempotent.
	Close()

	// Abort closes the connection now, dropping queued output.
	Abort()

	// InputPending reports whether input has arrived that OnRead was not
	// given yet: held by the backend, or still in the socket's receive
	// queue. A connection the engine would close as idle is not idle then:
	// its client's next request is already here.
	InputPending() bool

	// Wake arranges for Handler.OnWake to be called on the loop goroutine.
	// It is the only Conn method that is safe from any goroutine. Several Wake
	// calls before the loop runs may be merged into one OnWake. It returns
	// false if the connection is already closed.
	Wake() bool

	// Detach removes the connection from the loop without closing it and
	// returns its socket and any input that was read but not consumed. The
	// loop forgets the connection (no OnClose follows); the caller owns the
	// file. It is how a handler takes a connection over (Hijack, WebSocket).
	Detach() (f *os.File, unread []byte, err error)

	// SetContext and Context hold the engine's per-connection state.
	SetContext(v any)
	Context() any

	// RemoteAddr and LocalAddr are the socket's peers. For a unix socket
	// they are the zero AddrPort.
	RemoteAddr() netip.AddrPort
	LocalAddr() netip.AddrPort

	// Loop is the index of the loop that owns the connection, in [0, Loops).
	Loop() int

	// Fd is the socket's descriptor, for socket options and tests.
	Fd() int
}

// Handler receives a backend's events. All calls for a loop happen on that
// loop's goroutine.
type Handler interface {
	// OnOpen is called once for each accepted connection before any read.
	OnOpen(c Conn)

	// OnRead is called with all input buffered for c and not yet consumed
	// (new bytes appended to what earlier calls left). It returns how many
	// bytes from the front of in it consumed; the backend keeps the rest and
	// presents it again, with more input appended, on the next call. in is
	// only valid during the call. A handler that cannot make progress on the
	// remaining bytes returns without consuming them; it must PauseRead if it
	// does not want more input.
	OnRead(c Conn, in []byte) (consumed int)

	// OnDrained is called when queued output that had exceeded what the
	// kernel took at once has been fully sent, so that a paused connection
	// can continue.
	OnDrained(c Conn)

	// OnWake is called after Conn.Wake, on the loop goroutine.
	OnWake(c Conn)

	// OnClose is called once when the connection is closed, by either side.
	// err is nil for an orderly close by the server, io.EOF when the peer
	// closed, or the socket error.
	OnClose(c Conn, err error)

	// OnTick is called on each loop at least every Config.TickInterval, for
	// timeouts and per-loop housekeeping. now is the loop's current time.
	OnTick(loop int, now time.Time)
}

// Listener is one listening socket handed to a backend. The backend uses it
// but does not own it: closing the file at shutdown closes only the serving
// process's copy, so a supervisor that holds the original keeps the socket
// (and its accept queue) alive for the next generation.
type Listener struct {
	// File is the listening socket. It must be a SOCK_STREAM socket in
	// listening state; the backend sets it non-blocking.
	File *os.File
	// Addr is the bind address as configured, for logs ("127.0.0.1:8000",
	// "unix:/run/asyncd.sock", "fd://3").
	Addr string
	// Unix reports a unix-domain socket.
	Unix bool
	// Loop pins the listener to one loop (a SO_REUSEPORT group member);
	// -1 lets every loop accept from it.
	Loop int
}

// Config configures a backend server.
type Config struct {
	// Loops is the number of event loops (>= 1).
	Loops int
	// Listeners are the sockets to accept from.
	Listeners []Listener
	// Handler receives the events.
	Handler Handler
	// TickInterval is the longest gap between OnTick calls (default 100ms).
	TickInterval time.Duration
	// ReadBufferSize is the size of one read (default 64 KiB).
	ReadBufferSize int
	// Logger receives accept errors and other loop-level events.
	Logger *slog.Logger
	// LockOSThread pins each loop goroutine to an OS thread.
	LockOSThread bool
}

// Server is a running backend.
type Server interface {
	// Serve runs the loops until Stop; it returns nil after Stop, or the
	// error that ended a loop.
	Serve() error
	// StopAccepting stops taking new connections on every listener (without
	// closing the supervisor's socket). Connections already open carry on.
	StopAccepting()
	// Stop closes every connection and ends Serve. It does not wait for
	// output to drain: the engine drains before it calls Stop.
	Stop()
	// Conns reports the number of open connections per loop.
	Conns() []int
}

// Backend creates servers of one kind.
type Backend interface {
	// Name is the backend's config name ("epoll", "io_uring").
	Name() string
	// Probe reports why the backend cannot run on this machine, or nil.
	Probe() error
	// New creates a server; it does not start accepting until Serve.
	New(cfg Config) (Server, error)
}

// Errors a backend reports through the contract.
var (
	// ErrClosed is returned by Detach on a closed connection.
	ErrClosed = errors.New("loop: connection closed")

	// ErrOutputPending is returned by Detach while written output is still
	// queued or being sent: the engine waits for OnDrained and detaches
	// then, so that no bytes are lost or reordered on the handed-over
	// socket.
	ErrOutputPending = errors.New("loop: output still pending")

	// ErrDrainTimeout is passed to OnClose when a closing connection's
	// queued output made no progress for the backend's linger timeout and
	// the connection was dropped.
	ErrDrainTimeout = errors.New("loop: close: output not drained in time")
)
