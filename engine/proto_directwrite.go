package engine

// PROTOTYPE (issue 19, examples/dbapi/PROFILE.md): an off-loop handler's
// response written to the socket from the handler's goroutine, with no
// wake back to the loop. Off unless PROTO_DIRECT_WRITE=1, for A/B
// measurements with one binary; a later change redoes it properly.
//
// Known holes, acceptable for a measurement and not for production:
//   - the epoll backend closes a socket before OnClose orphans its Ctx, so
//     a handler finishing in that window writes to a closed descriptor,
//     whose number an accept in the same loop pass may have reused: the
//     backend must offer a write that is safe against its close;
//   - the access log's duration runs until the loop reconciles the request
//     (the connection's next event or the next 100 ms scan), and a client
//     that leaves first is not observed at all.
//
// The loop hands the socket to the handler only when nothing else can
// write to it meanwhile: no output pending or batched, a complete body,
// no 100 Continue owed. The handler writes the whole response, or gives
// what the kernel did not take to the loop with a Wake as before. Without
// the Wake the loop finishes the request (counters, observer, Ctx back to
// the pool, keep-alive) when it next looks at the connection: its next
// request (process), its close (OnClose), or the 100 ms scan (OnTick). The
// handler still wakes the loop when input is held behind the request or
// other connections wait for capacity, which the loop must act on at once.

import (
	"os"
	"syscall"
	"unsafe"
)

var protoDirectWrite = os.Getenv("PROTO_DIRECT_WRITE") == "1"

// markDirect decides, on the loop at dispatch, whether x's handler may
// write its response itself.
func (c *conn) markDirect(x *Ctx) {
	x.direct = protoDirectWrite && len(c.l.out) == 0 && c.lc.OutboundBuffered() == 0 &&
		x.pipe == nil && !x.expect100 && c.lc.Fd() >= 0
	if x.direct {
		x.fd = c.lc.Fd()
	}
}

// writeDirect writes x's serialized response from the handler's goroutine,
// under x.mu, and reports whether the loop needs no wake for it.
func (x *Ctx) writeDirect(c *conn) bool {
	if !x.direct || x.closeAfter || x.hijacked || x.streaming || x.wantWake || c.l.waitingN.Load() > 0 {
		return false
	}
	// A raw write, as the loop's own (loop/epoll/rawsys.go): the socket is
	// non-blocking, and a write through syscall.Write would announce a
	// blocking call, so the runtime could take the P away while x.mu is
	// held and the goroutine then wait for a P with the loop blocked on
	// x.mu behind it.
	r, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(x.fd),
		uintptr(unsafe.Pointer(unsafe.SliceData(x.wbuf))), uintptr(len(x.wbuf)))
	n := int(r)
	if errno != 0 {
		n = 0
	}
	c.l.bytesOut.Add(uint64(n))
	if n == len(x.wbuf) {
		x.wbuf = x.wbuf[:0]
		x.written = true
		return true
	}
	x.wbuf = x.wbuf[:copy(x.wbuf, x.wbuf[n:])] // the rest goes through the loop
	return false
}

// reconcileDirect finishes, on the loop, a request whose handler wrote its
// response itself, and reports whether it did. held says input waits
// behind the request: a handler not done yet must then wake the loop.
func (c *conn) reconcileDirect(held bool) bool {
	x := c.ctx
	if x == nil || !x.direct || c.phase != phaseRunning {
		return false
	}
	x.mu.Lock()
	written := x.written && x.state == ctxDone
	if !written && held {
		x.wantWake = true
	}
	x.mu.Unlock()
	if !written {
		return false
	}
	l := c.l
	l.inflight--
	c.finish(x, false)
	l.admitWaiting()
	l.publishInflight()
	return true
}
