package looptest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
)

// testLogger sends backend logs to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, nil))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

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

// asyncConn is per-connection state of the async handler below.
type asyncConn struct {
	mu      sync.Mutex
	results []string
	busy    bool
}

// asyncHandler answers "ASYNC x" lines from another goroutine via Wake, one
// request at a time, pausing reads while one is in flight (as the engine
// does), and echoes other lines.
func asyncHandler(h *handler) {
	h.onOpen = func(c loop.Conn) { st(c).v = &asyncConn{} }
	h.onRead = func(c loop.Conn, in []byte) int {
		a := st(c).v.(*asyncConn)
		if a.busy {
			h.t.Errorf("OnRead while a request is in flight and reads are paused")
			return 0
		}
		consumed := 0
		for {
			rest := in[consumed:]
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				return consumed
			}
			line := string(rest[:i])
			consumed += i + 1
			if arg, ok := strings.CutPrefix(line, "ASYNC "); ok {
				a.busy = true
				c.PauseRead()
				go func() {
					time.Sleep(time.Millisecond)
					a.mu.Lock()
					a.results = append(a.results, arg+"\n")
					a.mu.Unlock()
					if !c.Wake() {
						h.t.Errorf("Wake on an open connection returned false")
					}
				}()
				return consumed // leave the pipelined rest for ResumeRead
			}
			c.Write([]byte(line + "\n"))
		}
	}
	h.onWake = func(c loop.Conn) {
		a := st(c).v.(*asyncConn)
		a.mu.Lock()
		res := a.results
		a.results = nil
		a.mu.Unlock()
		for _, r := range res {
			c.Write([]byte(r))
		}
		if len(res) > 0 {
			a.busy = false
			c.ResumeRead()
		}
	}
}

func testWriteFromWake(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	asyncHandler(h)
	s := start(t, b, h, setup{loops: 2})
	c := s.dial(t)
	write(t, c, "ASYNC one\n")
	expect(t, c, "one\n")
	// Pipelined: the rest is left unconsumed while each request is in
	// flight, and ResumeRead re-delivers it without new input.
	write(t, c, "ASYNC a\nplain\nASYNC b\nASYNC c\nlast\n")
	expect(t, c, "a\nplain\nb\nc\nlast\n")
}

func testWakeConcurrent(t *testing.T, b loop.Backend) {
	const goroutines, each = 16, 200
	h := newHandler(t)
	var calls atomic.Int64
	var lastSeen atomic.Int64
	h.onWake = func(c loop.Conn) { lastSeen.Store(calls.Load()) }
	s := start(t, b, h, setup{loops: 2})
	c := s.dial(t)
	sc := s.nextOpen(t)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				calls.Add(1)
				if !sc.Wake() {
					t.Errorf("Wake returned false on an open connection")
					return
				}
			}
		}()
	}
	wg.Wait()
	// Every Wake is followed by an OnWake that starts after it.
	waitFor(t, "an OnWake after the last Wake", func() bool { return lastSeen.Load() == goroutines*each })
	if w := st(sc).wakes.Load(); w < 1 || w > goroutines*each {
		t.Errorf("OnWake called %d times for %d Wakes", w, goroutines*each)
	}
	write(t, c, "still\n")
	expect(t, c, "still\n")
}

func testWakeMerged(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	block, release := make(chan struct{}), make(chan struct{})
	h.onRead = func(c loop.Conn, in []byte) int {
		if string(in) == "BLOCK\n" {
			close(block)
			<-release // hold the loop while Wakes pile up
			return len(in)
		}
		return echoLines(c, in)
	}
	s := start(t, b, h, setup{})
	c := s.dial(t)
	sc := s.nextOpen(t)
	write(t, c, "BLOCK\n")
	<-block
	for i := 0; i < 100; i++ {
		if !sc.Wake() {
			t.Fatal("Wake returned false on an open connection")
		}
	}
	close(release)
	waitFor(t, "OnWake", func() bool { return st(sc).wakes.Load() >= 1 })
	time.Sleep(short)
	if w := st(sc).wakes.Load(); w != 1 {
		t.Errorf("100 Wakes while the loop was busy gave %d OnWake calls, want 1 (merged)", w)
	}
}

func testWakeClosed(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	s := start(t, b, h, setup{})
	a := s.dial(t)
	sa := s.nextOpen(t)
	write(t, a, "x\n")
	expect(t, a, "x\n")
	a.Close()
	if e := s.nextClose(t); e.c != sa {
		t.Fatalf("OnClose for an unexpected connection")
	}
	if sa.Wake() {
		t.Errorf("Wake on a closed connection returned true")
	}
	// A new connection likely reuses the descriptor; a Wake on the old
	// Conn must never reach it.
	bc := s.dial(t)
	sb := s.nextOpen(t)
	t.Logf("old fd %d, new fd %d", st(sa).fd, st(sb).fd)
	if sa.Wake() {
		t.Errorf("Wake on a closed connection returned true after its fd was reused")
	}
	write(t, bc, "y\n")
	expect(t, bc, "y\n")
	time.Sleep(short)
	if w := st(sb).wakes.Load(); w != 0 {
		t.Errorf("new connection got %d OnWake calls from the old connection's Wake", w)
	}
}

func testPauseRead(t *testing.T, b loop.Backend) {
	const readBuf = 16 << 10
	h := newHandler(t)
	var (
		phase     atomic.Int32 // 0 first read, 1 paused, 2 resumed
		firstIn   atomic.Int64
		consumed  atomic.Int64
		pausedRds atomic.Int64
	)
	h.onRead = func(c loop.Conn, in []byte) int {
		switch phase.Load() {
		case 0:
			firstIn.Store(int64(len(in)))
			phase.Store(1)
			c.PauseRead()
			return 0 // keep everything: the leftover must stay bounded
		case 1:
			pausedRds.Add(1)
			return 0
		}
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

	// Write until the kernel pushes back: the server must not read on.
	written := fillSocket(t, c, 'p', 256<<20)
	t.Logf("client blocked after %d bytes", written)
	if got := pausedRds.Load(); got != 0 {
		t.Errorf("OnRead called %d times while paused", got)
	}
	if m := firstIn.Load(); m <= 0 || m > readBuf {
		t.Errorf("OnRead got %d bytes before pausing, want (0, %d]: the server buffers more than one read", m, readBuf)
	}

	// Resume: everything written arrives, nothing lost or duplicated.
	if !sc.Wake() {
		t.Fatal("Wake returned false")
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	e := s.nextClose(t)
	if !errors.Is(e.err, io.EOF) {
		t.Errorf("OnClose err = %v, want io.EOF", e.err)
	}
	if got := consumed.Load(); got != written {
		t.Errorf("server consumed %d bytes, client wrote %d", got, written)
	}
}

func testResumeRedelivers(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	seen := make(chan string, 16)
	var step atomic.Int32
	h.onRead = func(c loop.Conn, in []byte) int {
		seen <- string(in)
		if step.Add(1) == 1 {
			c.PauseRead()
		}
		return echoLines(c, in)
	}
	h.onWake = func(c loop.Conn) { c.ResumeRead() }
	s := start(t, b, h, setup{})
	c := s.dial(t)
	sc := s.nextOpen(t)
	next := func(want string) {
		t.Helper()
		select {
		case got := <-seen:
			if got != want {
				t.Fatalf("OnRead got %q, want %q", got, want)
			}
		case <-time.After(long):
			t.Fatalf("no OnRead (want %q)", want)
		}
	}
	write(t, c, "abc")
	next("abc") // and pauses
	sc.Wake()   // ResumeRead after pause: leftover again, no new input
	next("abc")
	sc.Wake() // ResumeRead while not paused: leftover again too
	next("abc")
	write(t, c, "d\n")
	next("abcd\n")
	expect(t, c, "abcd\n")
	sc.Wake() // nothing buffered: no OnRead
	time.Sleep(short)
	select {
	case got := <-seen:
		t.Errorf("OnRead %q without buffered input", got)
	default:
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

func testDetach(t *testing.T, b loop.Backend) {
	tests := []struct {
		name   string
		fromOn string // callback that detaches
	}{{"fromOnRead", "read"}, {"fromOnWake", "wake"}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t)
			took := make(chan error, 1)
			takeOver := func(c loop.Conn, drop int) {
				f, unread, err := c.Detach()
				if err != nil {
					took <- err
					return
				}
				if c.Wake() {
					h.t.Errorf("Wake after Detach returned true")
				}
				go func() { // the handler owns the socket now
					defer f.Close()
					nc, err := net.FileConn(f)
					if err != nil {
						took <- err
						return
					}
					defer nc.Close()
					if _, err := fmt.Fprintf(nc, "detached:%s\n", unread[drop:]); err != nil {
						took <- err
						return
					}
					took <- nil
					io.Copy(nc, nc)
				}()
			}
			h.onRead = func(c loop.Conn, in []byte) int {
				if !bytes.HasPrefix(in, []byte("DETACH\n")) {
					if st(c).v != nil {
						return 0
					}
					return echoLines(c, in)
				}
				if tc.fromOn == "read" {
					// During OnRead, unread is all of in: nothing is
					// consumed until OnRead returns.
					takeOver(c, len("DETACH\n"))
					return 0
				}
				st(c).v = true
				c.PauseRead()
				return len("DETACH\n")
			}
			h.onWake = func(c loop.Conn) { takeOver(c, 0) }
			s := start(t, b, h, setup{})
			c := s.dial(t)
			sc := s.nextOpen(t)
			write(t, c, "hi\n")
			expect(t, c, "hi\n")
			write(t, c, "DETACH\nextra")
			if tc.fromOn == "wake" {
				waitFor(t, "the request", func() bool { return st(sc).reads.Load() >= 2 })
				sc.Wake()
			}
			if err := <-took; err != nil {
				t.Fatalf("take-over: %v", err)
			}
			expect(t, c, "detached:extra\n")
			write(t, c, "more")
			expect(t, c, "more")
			waitFor(t, "Conns back to 0", func() bool { return s.totalConns() == 0 })
			c.Close()
			time.Sleep(short)
			if n := h.closes.Load(); n != 0 {
				t.Errorf("OnClose called %d times for a detached connection", n)
			}
		})
	}
}

func testStopAccepting(t *testing.T, b loop.Backend) {
	const loops = 2
	h := newHandler(t)
	s := start(t, b, h, setup{loops: loops, pinned: true})
	var old []net.Conn
	var olds []loop.Conn
	for _, addr := range append([]string{s.addr}, s.pinned...) {
		c := dialTo(t, "tcp4", addr, 0)
		write(t, c, "a\n")
		expect(t, c, "a\n")
		old = append(old, c)
		olds = append(olds, s.nextOpen(t))
	}
	s.srv.StopAccepting()
	// Round-trip a Wake through every loop so that each has seen the
	// command, then give stragglers a moment.
	for _, sc := range olds {
		before := st(sc).wakes.Load()
		sc.Wake()
		waitFor(t, "OnWake", func() bool { return st(sc).wakes.Load() > before })
	}
	time.Sleep(50 * time.Millisecond)
	opens := h.opens.Load()
	for _, addr := range append([]string{s.addr}, s.pinned...) {
		c := dialTo(t, "tcp4", addr, 0) // the kernel still completes it
		write(t, c, "new\n")
		expectSilence(t, c)
	}
	if n := h.opens.Load(); n != opens {
		t.Errorf("%d connections accepted after StopAccepting", n-opens)
	}
	for _, c := range old {
		write(t, c, "still\n")
		expect(t, c, "still\n")
	}
	if n := s.totalConns(); n != len(old) {
		t.Errorf("Conns = %d, want %d", n, len(old))
	}
}

func testStop(t *testing.T, b loop.Backend) {
	const n = 6
	h := newHandler(t)
	f, err := socketListen()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h.loops, h.inCb = 2, make([]atomic.Int32, 2)
	addr := fileAddr(t, f)
	srv, err := b.New(loop.Config{Loops: 2, Handler: h, Logger: testLogger(t),
		Listeners: []loop.Listener{{File: f, Addr: addr, Loop: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	var cs []net.Conn
	for range n {
		c := dialTo(t, "tcp4", addr, 0)
		write(t, c, "a\n")
		expect(t, c, "a\n")
		cs = append(cs, c)
	}
	srv.Stop()
	srv.Stop() // idempotent
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Stop = %v, want nil", err)
		}
	case <-time.After(long):
		t.Fatal("Serve did not return after Stop")
	}
	if h.closes.Load() != n {
		t.Errorf("OnClose called %d times, want %d", h.closes.Load(), n)
	}
	for i, c := range srv.Conns() {
		if c != 0 {
			t.Errorf("loop %d has %d conns after Stop", i, c)
		}
	}
	for _, c := range cs {
		expectEnd(t, c)
	}
	// The caller's listener survives Stop: a new server can adopt it.
	h2 := newHandler(t)
	s2 := &server{h: h2, network: "tcp4", addr: addr}
	h2.loops, h2.inCb = 1, make([]atomic.Int32, 1)
	srv2, err := b.New(loop.Config{Loops: 1, Handler: h2, Logger: testLogger(t),
		Listeners: []loop.Listener{{File: f, Addr: addr, Loop: -1}}})
	if err != nil {
		t.Fatalf("New with the same listener after Stop: %v", err)
	}
	s2.srv = srv2
	go func() { done <- srv2.Serve() }()
	c := s2.dial(t)
	write(t, c, "again\n")
	expect(t, c, "again\n")
	srv2.Stop()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}

	// Stop before Serve releases everything; Serve then returns nil.
	srv3, err := b.New(loop.Config{Loops: 1, Handler: newHandler(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv3.Stop()
	go func() { done <- srv3.Serve() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Stop = %v", err)
		}
	case <-time.After(long):
		t.Fatal("Serve after Stop did not return")
	}
}

func testConns(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	s := start(t, b, h, setup{loops: 2, pinned: true})
	var cs []net.Conn
	for _, addr := range []string{s.pinned[0], s.pinned[0], s.pinned[1]} {
		c := dialTo(t, "tcp4", addr, 0)
		write(t, c, "a\n")
		expect(t, c, "a\n")
		cs = append(cs, c)
	}
	if got := fmt.Sprint(s.srv.Conns()); got != "[2 1]" {
		t.Errorf("Conns = %s, want [2 1]", got)
	}
	cs[0].Close()
	waitFor(t, "Conns [1 1]", func() bool { return fmt.Sprint(s.srv.Conns()) == "[1 1]" })
}

func testTick(t *testing.T, b loop.Backend) {
	const loops, tick = 2, 20 * time.Millisecond
	h := newHandler(t)
	var mu sync.Mutex
	last := make([]time.Time, loops)
	count := make([]int, loops)
	maxGap := make([]time.Duration, loops)
	h.onTick = func(l int, now time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if !last[l].IsZero() {
			if now.Before(last[l]) {
				t.Errorf("loop %d: tick time went back", l)
			}
			maxGap[l] = max(maxGap[l], now.Sub(last[l]))
		}
		last[l] = now
		count[l]++
	}
	s := start(t, b, h, setup{loops: loops, tick: tick})
	waitFor(t, "10 ticks on every loop", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return count[0] >= 10 && count[1] >= 10
	})
	s.srv.Stop()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("ticks %v, max gaps %v", count, maxGap)
	for l, g := range maxGap {
		if g > 50*tick { // generous: only catches a loop that sleeps on
			t.Errorf("loop %d: %v between ticks with TickInterval %v", l, g, tick)
		}
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

// fillSocket writes 64 KiB chunks of b to c until a write blocks for short
// (the kernel pushes back because the server stopped reading) and returns
// the bytes written; more than limit without blocking fails the test.
func fillSocket(t *testing.T, c net.Conn, b byte, limit int64) int64 {
	t.Helper()
	chunk := bytes.Repeat([]byte{b}, 64<<10)
	var written int64
	for {
		c.SetWriteDeadline(time.Now().Add(short))
		n, err := c.Write(chunk)
		written += int64(n)
		if isTimeout(err) {
			return written
		}
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		if written > limit {
			t.Fatalf("wrote %d bytes without blocking: reading was not paused", written)
		}
	}
}
