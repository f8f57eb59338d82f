// Package engine is asyncd's HTTP/1.1 connection engine and handler API.
//
// It turns the bytes a loop backend delivers into requests for handlers, and
// handlers' responses back into bytes, the same way for every backend. It owns
// keep-alive, pipelining, request bodies, error answers, timeouts,
// back-pressure and draining, and it defines what a handler sees: Ctx, Handler
// and the net/http adapter.
//
// It must not touch sockets or event loops (that is package loop and its
// backends), must not parse request bytes itself (that is package httpparse),
// and knows nothing of configuration files or the process model (packages
// config, worker and supervisor). Handlers are registered by name in package
// plugins; the engine only sees the Handler interface.
//
// Threading: every method of the engine's loop.Handler runs on the
// connection's loop goroutine. A request runs on the loop goroutine (inline)
// or, when the route's Dispatch says so, on another goroutine chosen by an
// Executor; its response always goes back to the socket through the loop.
package engine
