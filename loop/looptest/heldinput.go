package looptest

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
)

// testHeldInputBounded: once a connection was paused and resumed, a client
// that sends faster than the handler consumes must be held back by the
// socket, not by the backend buffering its input in user space. The gap
// between what the client wrote and what OnRead consumed is bounded by the
// kernel's socket buffers plus a few reads; a backend that keeps receiving
// while it presents one read per round lets it grow without bound (io_uring's
// multishot receive did).
func testHeldInputBounded(t *testing.T, b loop.Backend) {
	const (
		readBuf = 16 << 10
		bound   = 48 << 20 // socket buffers (a few MiB on loopback) plus slack
		total   = 256 << 20
	)
	h := newHandler(t)
	var (
		phase    atomic.Int32 // 0 first read, 1 paused, 2 resumed
		consumed atomic.Int64
	)
	h.onRead = func(c loop.Conn, in []byte) int {
		switch phase.Load() {
		case 0:
			phase.Store(1)
			c.PauseRead()
			return 0
		case 1:
			return 0
		}
		time.Sleep(100 * time.Microsecond) // a handler slower than the client
		consumed.Add(int64(len(in)))
		return len(in)
	}
	h.onWake = func(c loop.Conn) {
		phase.Store(2)
		c.ResumeRead()
	}
	s := start(t, b, h, setup{readBuf: readBuf})
	c := s.dial(t)
	sc := s.nextOpen(t)

	// Fill the socket while paused, then resume and keep flooding.
	chunk := bytes.Repeat([]byte("f"), 64<<10)
	written := fillSocket(t, c, 'f', total)
	if !sc.Wake() {
		t.Fatal("Wake returned false")
	}
	maxGap := int64(0)
	end := time.Now().Add(2 * time.Second)
	for time.Now().Before(end) && written < total {
		c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Write(chunk)
		written += int64(n)
		if err != nil && !isTimeout(err) {
			t.Fatalf("write: %v", err)
		}
		if gap := written - consumed.Load(); gap > maxGap {
			maxGap = gap
		}
		if maxGap > bound {
			break
		}
	}
	t.Logf("wrote %d bytes, consumed %d, max gap %d", written, consumed.Load(), maxGap)
	if maxGap > bound {
		t.Errorf("written but not consumed reached %d bytes (> %d): the backend buffers input in user space instead of leaving it in the socket", maxGap, bound)
	}
	c.Close()
	s.nextClose(t)
}
