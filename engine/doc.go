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
// connection's loop goroutine. A request runs on the loop goroutine
// (inline) or, under Config.Dispatch OffLoop or for a blocking route, on
// another goroutine chosen by an Executor; its response always goes back
// to the socket through the loop. A Ctx belongs to one goroutine at a
// time; what the loop and an off-loop handler share is one handoff
// (handoff.go), and every field of Ctx, conn, loopState and Engine says
// which goroutine may touch it.
//
// Files, one concern each:
//
//	engine.go      Engine, Config, the Executor and Observer interfaces
//	loopstate.go   the engine's state for one loop
//	conn.go        a connection's request cycle: phases and their transitions, process, dispatch, finish
//	router.go      the routing table, and routing a request
//	reqbody.go     request bodies: buffered, or streamed through a pipe (bodypipe.go); 100 Continue
//	ctx.go         Ctx: the request a handler sees, and running the handler
//	response.go    the response builder, and serializing a response
//	stream.go      streamed responses (Flush)
//	handoff.go     the hand-off between the loop and an off-loop handler: launch, complete, orphan, hijack
//	reqcontext.go  the request's context.Context
//	answers.go     the engine's own answers and refusals
//	timeouts.go    OnTick and every timer
//	forwarded.go   forwarding headers from trusted proxies
//	proxyheader.go the PROXY protocol
//	nethttp.go     the net/http adapter
//	ascii.go       comparisons of header bytes
package engine
