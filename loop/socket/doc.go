// Package socket holds the socket-level pieces that asyncd's event-loop
// backends (loop/epoll, loop/uring) share: creating and adopting listening
// sockets, accepting without allocating, converting raw socket addresses to
// netip.AddrPort, classifying accept errors, a size-classed byte-buffer pool
// for per-connection leftover input and pending output, a log rate limiter,
// and reading a socket's pending error.
//
// It owns no event loop and no connection state, and knows nothing of the
// engine or HTTP: it must not import loop/epoll, loop/uring, the engine or any
// handler code. Keep its API small: both backends depend on it.
package socket
