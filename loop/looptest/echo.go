package looptest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
)

func testEcho(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	s := start(t, b, h, setup{})
	c := s.dial(t)
	sc := s.nextOpen(t)
	write(t, c, "hello\n")
	expect(t, c, "hello\n")

	// Addresses and identity as the engine sees them.
	cl := netip.MustParseAddrPort(c.LocalAddr().String())
	if got := st(sc).remote; got != cl {
		t.Errorf("RemoteAddr = %v, want %v", got, cl)
	}
	if got, want := st(sc).local.String(), s.addr; got != want {
		t.Errorf("LocalAddr = %v, want %v", got, want)
	}
	if st(sc).loop != 0 || st(sc).fd <= 0 {
		t.Errorf("Loop=%d Fd=%d", st(sc).loop, st(sc).fd)
	}
	if st(sc) == nil {
		t.Errorf("Context does not return what SetContext stored")
	}
	// Lines split across writes, several in one.
	write(t, c, "a\nb")
	expect(t, c, "a\n")
	write(t, c, "c\n")
	expect(t, c, "bc\n")
}

func testManyConnsLoops(t *testing.T, b loop.Backend) {
	const loops, n, rounds = 3, 60, 5
	h := newHandler(t)
	h.onRead = func(c loop.Conn, in []byte) int {
		if string(in) == "WHICH\n" {
			c.Write(fmt.Appendf(nil, "%d\n", c.Loop()))
			return len(in)
		}
		return echoLines(c, in)
	}
	s := start(t, b, h, setup{loops: loops, pinned: true})

	// Pinned listeners are served by their loop only.
	for i, addr := range s.pinned {
		for range 3 {
			c := dialTo(t, "tcp4", addr, 0)
			write(t, c, "WHICH\n")
			expect(t, c, fmt.Sprintf("%d\n", i))
			c.Close()
		}
	}
	waitFor(t, "pinned conns closed", func() bool { return s.totalConns() == 0 })

	// Many clients on the shared listener, concurrently.
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = s.dial(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(time.Now().Add(long))
			for r := range rounds {
				msg := fmt.Sprintf("conn %d round %d\n", i, r)
				if _, err := io.WriteString(c, msg); err != nil {
					errs <- err
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
					errs <- fmt.Errorf("conn %d: got %q, %v; want %q", i, got, err, msg)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.totalConns(); got != n {
		t.Errorf("Conns total = %d (%v), want %d", got, s.srv.Conns(), n)
	}
	if got := len(s.srv.Conns()); got != loops {
		t.Errorf("len(Conns()) = %d, want %d", got, loops)
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "Conns back to 0", func() bool { return s.totalConns() == 0 })
	if o, c := h.opens.Load(), h.closes.Load(); o != c || o != n+3*loops {
		t.Errorf("opens=%d closes=%d, want %d each", o, c, n+3*loops)
	}
}

func testPartialConsumption(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	seen := make(chan string, 16)
	h.onRead = func(c loop.Conn, in []byte) int {
		seen <- string(in)
		return echoLines(c, in)
	}
	s := start(t, b, h, setup{})
	c := s.dial(t)
	steps := []struct{ send, wantIn, wantOut string }{
		{"hel", "hel", ""},
		{"lo\nwor", "hello\nwor", "hello\n"},
		{"ld\n", "world\n", "world\n"},
		{"x\ny\nz", "x\ny\nz", "x\ny\n"},
		{"\n", "z\n", "z\n"},
	}
	for _, step := range steps {
		write(t, c, step.send)
		select {
		case got := <-seen:
			if got != step.wantIn {
				t.Fatalf("after sending %q OnRead got %q, want %q", step.send, got, step.wantIn)
			}
		case <-time.After(long):
			t.Fatalf("no OnRead after sending %q", step.send)
		}
		if step.wantOut != "" {
			expect(t, c, step.wantOut)
		}
	}
}

func testPipelining(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	var writes atomic.Int64
	h.onRead = func(c loop.Conn, in []byte) int {
		writes.Add(1)
		return echoLines(c, in)
	}
	s := start(t, b, h, setup{})
	c := s.dial(t)
	req := "GET a\nGET b\nGET c\n"
	write(t, c, req)
	// The handler batches all answers of one OnRead into one Write: they
	// arrive in one segment, so one read returns all of them.
	c.SetReadDeadline(time.Now().Add(long))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != req {
		t.Fatalf("one read returned %q, %v; want %q", buf[:n], err, req)
	}
	if w := writes.Load(); w != 1 {
		t.Errorf("OnRead called %d times for one pipelined write, want 1", w)
	}
}

func testLargeOutput(t *testing.T, b loop.Backend) {
	const size = 8 << 20
	h := newHandler(t)
	var afterWrite, afterWake atomic.Int64
	afterWake.Store(-1)
	payload := make([]byte, size/2)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	h.onOpen = func(c loop.Conn) {
		// Small kernel buffers, so that most of the output stays queued.
		syscall.SetsockoptInt(c.Fd(), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 16<<10)
	}
	h.onRead = func(c loop.Conn, in []byte) int {
		if string(in) == "BIG\n" {
			c.Write(payload)
			c.Write(payload)
			afterWrite.Store(int64(c.OutboundBuffered()))
			return len(in)
		}
		return echoLines(c, in)
	}
	h.onWake = func(c loop.Conn) { afterWake.Store(int64(c.OutboundBuffered())) }
	s := start(t, b, h, setup{})
	c := dialTo(t, s.network, s.addr, 16<<10)
	sc := s.nextOpen(t)
	write(t, c, "BIG\n")
	waitFor(t, "the write", func() bool { return afterWrite.Load() > 0 })
	time.Sleep(short) // the client is not reading
	sc.Wake()
	waitFor(t, "OnWake", func() bool { return afterWake.Load() >= 0 })
	ob := afterWake.Load()
	t.Logf("OutboundBuffered: %d after Write, %d later, of %d", afterWrite.Load(), ob, size)
	if ob <= 0 || ob > size || afterWrite.Load() > size {
		t.Fatalf("OutboundBuffered = %d (after Write %d), want in (0, %d]", ob, afterWrite.Load(), size)
	}
	if ob < size/2 {
		t.Errorf("OutboundBuffered = %d: the kernel took more than half of %d bytes despite small buffers", ob, size)
	}
	if d := h.drained.Load(); d != 0 {
		t.Errorf("OnDrained called %d times before the client read", d)
	}
	got := readFull(t, c, size)
	for i := 0; i < size; i += size / 2 {
		if !bytes.Equal(got[i:i+size/2], payload) {
			t.Fatalf("output corrupted in half starting at %d", i)
		}
	}
	waitFor(t, "OnDrained", func() bool { return h.drained.Load() == 1 })
	afterWake.Store(-1)
	sc.Wake()
	waitFor(t, "OnWake", func() bool { return afterWake.Load() >= 0 })
	if ob := afterWake.Load(); ob != 0 {
		t.Errorf("OutboundBuffered = %d after OnDrained", ob)
	}
	write(t, c, "ok\n")
	expect(t, c, "ok\n")
	if d := h.drained.Load(); d != 1 {
		t.Errorf("OnDrained called %d times, want 1", d)
	}
}

func testUnixSocket(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	s := start(t, b, h, setup{unix: tempSocketPath(t)})
	c := s.dial(t)
	sc := s.nextOpen(t)
	write(t, c, "over unix\n")
	expect(t, c, "over unix\n")
	if st(sc).remote.IsValid() || st(sc).local.IsValid() {
		t.Errorf("unix conn addresses = %v, %v; want zero", st(sc).remote, st(sc).local)
	}
	c.Close()
	if e := s.nextClose(t); !errors.Is(e.err, io.EOF) {
		t.Errorf("OnClose err = %v, want io.EOF", e.err)
	}
}
