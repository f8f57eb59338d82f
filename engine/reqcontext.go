package engine

import (
	"context"
	"sync/atomic"
	"time"
)

// Context returns the request's context, created on first use. For a
// handler running off the loop, its Deadline is request_timeout's until
// the response starts (its head is sent: Flush, or a net/http body past
// 32 KiB) and none after; if request_timeout expires first, the context
// is cancelled with Err context.DeadlineExceeded and the client gets 503.
// It is cancelled with context.Canceled when the client goes away (or
// stops reading for send_timeout), when the server stops, and when the
// request ends. A handler on the loop (worker_class sync) has no deadline:
// request_timeout cannot interrupt it.
func (c *Ctx) Context() context.Context {
	h := &c.off
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reqCtx == nil {
		h.reqCtx = newRequestContext(h.deadline, h.sentStatus != 0 || c.hijacked)
		h.hasCtx.Store(true)
		if h.cause != nil {
			// Asked for after the request was orphaned: done already.
			h.reqCtx.end(h.cause)
		}
	}
	return h.reqCtx
}

// endContext cancels the request's context, if one was asked for, with
// err. Call it under off.mu.
func (c *Ctx) endContext(err error) {
	if c.off.reqCtx != nil {
		c.off.reqCtx.end(err)
	}
}

// responseStarted lifts request_timeout's deadline from the request's
// context: the response started (or the connection was hijacked). Call it
// under off.mu.
func (c *Ctx) responseStarted() {
	if c.off.reqCtx != nil {
		c.off.reqCtx.started.Store(true)
	}
}

// requestContext is the context.Context of one request (Ctx.Context). It
// is its own type for one reason: request_timeout bounds only the wait for
// the response to start, so its deadline is lifted once the response
// starts (a stream, an SSE feed or a long download then runs as long as
// its client reads), and no context of the standard library can drop a
// deadline. Everything else is a standard cancel context's:
//
//   - Done and Value are inner's, so context.WithCancel, WithTimeout and
//     AfterFunc on it attach to inner the standard way (no goroutine per
//     derived context) and are cancelled with it;
//   - Err is the cause it was cancelled with: context.DeadlineExceeded
//     when request_timeout expired before the response started,
//     context.Canceled when the client left (or send_timeout gave up on
//     it), the server stopped or the request ended. A context derived
//     from it reports context.Canceled (the standard library gives
//     children that error), with context.Cause the same as this Err.
//
// It never refers to the pooled Ctx: a handler may keep it after Serve
// returns, and it then reports Canceled.
type requestContext struct {
	inner  context.Context
	cancel context.CancelCauseFunc
	// deadline is request_timeout's, set on the loop before the handler
	// runs; zero when none applies (an inline handler, request_timeout 0).
	deadline time.Time
	// started is set, by the handler's goroutine under Ctx.off.mu, once the
	// response started (its head went to the loop) or the connection was
	// hijacked: from then on the deadline no longer applies.
	started atomic.Bool
}

func newRequestContext(deadline time.Time, started bool) *requestContext {
	r := &requestContext{deadline: deadline}
	r.inner, r.cancel = context.WithCancelCause(context.Background())
	r.started.Store(started)
	return r
}

// Deadline reports request_timeout's deadline until the response starts,
// and none after: work done after that point is not bounded by it.
func (r *requestContext) Deadline() (time.Time, bool) {
	if r.deadline.IsZero() || r.started.Load() {
		return time.Time{}, false
	}
	return r.deadline, true
}

// Done implements context.Context.
func (r *requestContext) Done() <-chan struct{} { return r.inner.Done() }

// Err implements context.Context: nil, context.DeadlineExceeded or
// context.Canceled.
func (r *requestContext) Err() error {
	if r.inner.Err() == nil {
		return nil
	}
	return context.Cause(r.inner)
}

// Value implements context.Context; the request context carries no values
// of its own.
func (r *requestContext) Value(key any) any { return r.inner.Value(key) }

func (r *requestContext) String() string { return "asyncd.requestContext" }

// end cancels the context with err (context.DeadlineExceeded or
// context.Canceled); the first call wins.
func (r *requestContext) end(err error) { r.cancel(err) }
