package looptest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
)

func testLingeringClose(t *testing.T, b loop.Backend) {
	const size = 4 << 20
	h := newHandler(t)
	resp := bytes.Repeat([]byte("r"), size)
	h.onOpen = func(c loop.Conn) {
		syscall.SetsockoptInt(c.Fd(), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 64<<10)
	}
	h.onRead = func(c loop.Conn, in []byte) int {
		if bytes.HasPrefix(in, []byte("BYE\n")) {
			c.Write(resp)
			c.Close()
			c.Write([]byte("after close")) // must be a no-op
			return 4                       // the rest stays unread
		}
		return echoLines(c, in)
	}
	s := start(t, b, h, setup{})
	c := dialTo(t, s.network, s.addr, 64<<10)
	// The request is followed by bytes the server never reads: closing with
	// them unread would make the kernel send RST and drop the response tail.
	junk := bytes.Repeat([]byte("j"), 1<<20)
	write(t, c, "BYE\n")
	go func() {
		c.SetWriteDeadline(time.Now().Add(long))
		c.Write(junk) // blocks until the server lingers; errors are fine
	}()
	time.Sleep(short) // let output queue up behind a client that is not reading
	c.SetReadDeadline(time.Now().Add(long))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("after %d of %d response bytes: %v (want the whole response, then EOF)", len(got), size, err)
	}
	if len(got) != size {
		t.Fatalf("got %d response bytes, want %d", len(got), size)
	}
	c.Close()
	if e := s.nextClose(t); e.err != nil {
		t.Errorf("OnClose err = %v, want nil after Close", e.err)
	}
	waitFor(t, "Conns back to 0", func() bool { return s.totalConns() == 0 })
}

func testCloseIdempotent(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	h.onRead = func(c loop.Conn, in []byte) int {
		c.Write([]byte("bye\n"))
		c.Close()
		c.Close()
		c.PauseRead()
		c.ResumeRead()
		if _, _, err := c.Detach(); !errors.Is(err, loop.ErrClosed) {
			h.t.Errorf("Detach after Close: %v, want loop.ErrClosed", err)
		}
		c.Abort() // after Close: at most closes sooner; OnClose still once
		return len(in)
	}
	s := start(t, b, h, setup{})
	c := s.dial(t)
	write(t, c, "x\n")
	expectEnd(t, c)
	s.nextClose(t)
	time.Sleep(short)
	if n := h.closes.Load(); n != 1 {
		t.Errorf("OnClose called %d times, want 1", n)
	}
}

func testAbort(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	h.onRead = func(c loop.Conn, in []byte) int {
		if string(in) == "ABORT\n" {
			c.Write(bytes.Repeat([]byte("z"), 1<<20)) // dropped, mostly
			c.Abort()
			c.Abort()
			c.Write([]byte("x"))
			c.Close()
			if _, _, err := c.Detach(); !errors.Is(err, loop.ErrClosed) {
				h.t.Errorf("Detach after Abort: %v, want loop.ErrClosed", err)
			}
			return len(in)
		}
		return echoLines(c, in)
	}
	s := start(t, b, h, setup{})
	c := dialTo(t, s.network, s.addr, 16<<10)
	sc := s.nextOpen(t)
	write(t, c, "ABORT\n")
	e := s.nextClose(t)
	if e.c != sc || e.err != nil {
		t.Errorf("OnClose(%v) after Abort, want nil error for the aborted conn", e.err)
	}
	expectEnd(t, c)
	if sc.Wake() {
		t.Errorf("Wake after Abort returned true")
	}
	waitFor(t, "Conns back to 0", func() bool { return s.totalConns() == 0 })
	time.Sleep(short)
	if n := h.closes.Load(); n != 1 {
		t.Errorf("OnClose called %d times, want 1", n)
	}
}

func testPeerReset(t *testing.T, b loop.Backend) {
	tests := []struct {
		name  string
		pause bool // reset while reads are paused
	}{{"reading", false}, {"paused", true}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t)
			h.onRead = func(c loop.Conn, in []byte) int {
				n := echoLines(c, in)
				if tc.pause {
					c.PauseRead()
				}
				return n
			}
			s := start(t, b, h, setup{})
			c := s.dial(t)
			write(t, c, "hi\n")
			expect(t, c, "hi\n")
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			e := s.nextClose(t)
			if !errors.Is(e.err, syscall.ECONNRESET) {
				t.Errorf("OnClose err = %v, want ECONNRESET", e.err)
			}
			waitFor(t, "Conns back to 0", func() bool { return s.totalConns() == 0 })
		})
	}
}

func testPeerEOF(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	seen := make(chan string, 4)
	h.onRead = func(c loop.Conn, in []byte) int {
		seen <- string(in)
		return echoLines(c, in)
	}
	s := start(t, b, h, setup{})
	c := s.dial(t)
	write(t, c, "last\npartial")
	c.(*net.TCPConn).CloseWrite()
	if got := <-seen; got != "last\npartial" {
		t.Errorf("OnRead got %q", got)
	}
	e := s.nextClose(t)
	if !errors.Is(e.err, io.EOF) {
		t.Errorf("OnClose err = %v, want io.EOF", e.err)
	}
	waitFor(t, "Conns back to 0", func() bool { return s.totalConns() == 0 })
}

func testManyResets(t *testing.T, b loop.Backend) {
	n := 10000
	const workers = 8
	h := newHandler(t)
	s := start(t, b, h, setup{loops: 2})
	var wg sync.WaitGroup
	var dialErrs atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				c, err := net.DialTimeout("tcp4", s.addr, long)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				c.(*net.TCPConn).SetLinger(0)
				if i%2 == 0 {
					c.Write([]byte("x\n"))
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	if e := dialErrs.Load(); e > 0 {
		t.Errorf("%d of %d dials failed", e, n)
	}
	waitFor(t, "every connection accepted and closed", func() bool {
		return s.totalConns() == 0 && h.opens.Load() == int64(n)-dialErrs.Load()
	})
	waitFor(t, "every OnClose", func() bool { return h.closes.Load() == h.opens.Load() })
	t.Logf("%d connections opened and reset", n)
}
