package epoll_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/epoll"
	"github.com/asyncd/asyncd/loop/looptest"
	"github.com/asyncd/asyncd/loop/socket"
)

func TestConformance(t *testing.T) {
	looptest.Run(t, epoll.Backend{})
}

// TestConformanceSleepingInEpollWait runs the suite on the fallback used
// when the runtime cannot poll the epoll descriptor: loops sleep in
// epoll_wait instead of parking on the netpoller.
func TestConformanceSleepingInEpollWait(t *testing.T) {
	old := epoll.SetNetpollWait(false)
	t.Cleanup(func() { epoll.SetNetpollWait(old) })
	looptest.Run(t, epoll.Backend{})
}

func TestBackendName(t *testing.T) {
	var b epoll.Backend
	if b.Name() != "epoll" {
		t.Errorf("Name = %q", b.Name())
	}
	if err := b.Probe(); err != nil {
		t.Errorf("Probe on Linux = %v", err)
	}
}

// hooks is a minimal Handler for the epoll-specific tests: line echo unless
// a hook says otherwise.
type hooks struct {
	read   func(c loop.Conn, in []byte) int
	wake   func(c loop.Conn)
	closed chan error
}

func (h *hooks) OnOpen(loop.Conn) {}
func (h *hooks) OnRead(c loop.Conn, in []byte) int {
	if h.read != nil {
		return h.read(c, in)
	}
	n := bytes.LastIndexByte(in, '\n') + 1
	if n > 0 {
		c.Write(in[:n])
	}
	return n
}
func (h *hooks) OnDrained(loop.Conn) {}
func (h *hooks) OnWake(c loop.Conn) {
	if h.wake != nil {
		h.wake(c)
	}
}
func (h *hooks) OnClose(_ loop.Conn, err error) {
	if h.closed != nil {
		h.closed <- err
	}
}
func (h *hooks) OnTick(int, time.Time) {}

// serve starts a one-loop server for h on a fresh loopback listener.
func serve(tb testing.TB, b epoll.Backend, h loop.Handler) (addr string, srv loop.Server) {
	tb.Helper()
	f, err := socket.Listen("tcp4", "127.0.0.1:0", false, 4096)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	ap, err := socket.FileAddrPort(f)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err = b.New(loop.Config{Loops: 1, Handler: h,
		Listeners: []loop.Listener{{File: f, Addr: ap.String(), Loop: -1}}})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	tb.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return ap.String(), srv
}

func TestNewErrors(t *testing.T) {
	ln, err := socket.Listen("tcp4", "127.0.0.1:0", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	notListening, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer notListening.Close()
	h := &hooks{}
	tests := []struct {
		name string
		cfg  loop.Config
	}{
		{"no loops", loop.Config{Handler: h}},
		{"no handler", loop.Config{Loops: 1}},
		{"loop out of range", loop.Config{Loops: 1, Handler: h, Listeners: []loop.Listener{{File: ln, Loop: 1}}}},
		{"loop below -1", loop.Config{Loops: 1, Handler: h, Listeners: []loop.Listener{{File: ln, Loop: -2}}}},
		{"not a socket", loop.Config{Loops: 1, Handler: h, Listeners: []loop.Listener{{File: notListening, Loop: -1}}}},
		{"nil file", loop.Config{Loops: 1, Handler: h, Listeners: []loop.Listener{{Loop: -1}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if srv, err := (epoll.Backend{}).New(tc.cfg); err == nil {
				srv.Stop()
				t.Fatal("New succeeded")
			} else {
				t.Log(err)
			}
		})
	}
}

func TestDetachWithPendingOutput(t *testing.T) {
	got := make(chan error, 1)
	h := &hooks{read: func(c loop.Conn, in []byte) int {
		c.Write(make([]byte, 8<<20)) // more than the kernel takes at once
		_, _, err := c.Detach()
		got <- err
		return len(in)
	}}
	addr, _ := serve(t, epoll.Backend{}, h)
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x\n"))
	if err := <-got; !errors.Is(err, loop.ErrOutputPending) {
		t.Fatalf("Detach = %v, want ErrOutputPending", err)
	}
}

func TestCloseTimeouts(t *testing.T) {
	tests := []struct {
		name    string
		out     int   // bytes written before Close
		wantErr error // OnClose error
	}{
		// The client neither reads nor closes: draining 8 MiB stalls.
		{"drain stalls", 8 << 20, loop.ErrDrainTimeout},
		// Output sent; the client never closes: lingering ends in time.
		{"linger expires", 3, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &hooks{closed: make(chan error, 1), read: func(c loop.Conn, in []byte) int {
				c.Write(make([]byte, tc.out))
				c.Close()
				return len(in)
			}}
			addr, srv := serve(t, epoll.Backend{LingerTimeout: 200 * time.Millisecond}, h)
			c, err := net.Dial("tcp4", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("x\n"))
			select {
			case err := <-h.closed:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("OnClose err = %v, want %v", err, tc.wantErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("connection not closed by the linger timeout")
			}
			if n := srv.Conns()[0]; n != 0 {
				t.Errorf("Conns = %d after close", n)
			}
		})
	}
}

// rawDial connects with plain syscalls so that the client allocates nothing
// on the Go heap (benchmarks count allocations process-wide).
func rawDial(tb testing.TB, addr string) int {
	tb.Helper()
	return rawDialer(tb, addr)()
}

// rawDialer resolves addr once and returns a dial function that does not
// allocate.
func rawDialer(tb testing.TB, addr string) func() int {
	tb.Helper()
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		tb.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	return func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(err)
		}
		if err := unix.Connect(fd, sa); err != nil {
			tb.Fatal(err)
		}
		return fd
	}
}

func rawRoundTrip(tb testing.TB, fd int, req, resp []byte) {
	if _, err := unix.Write(fd, req); err != nil {
		tb.Fatal(err)
	}
	for got := 0; got < len(resp); {
		n, err := unix.Read(fd, resp[got:])
		if err != nil || n == 0 {
			tb.Fatalf("read: %d, %v", n, err)
		}
		got += n
	}
}

// TestSteadyStateAllocs proves the hot path allocates nothing: a
// request/response round trip, one with a partial request left over, and a
// Wake/OnWake cycle.
func TestSteadyStateAllocs(t *testing.T) {
	var woken chan struct{}
	h := &hooks{wake: func(loop.Conn) { woken <- struct{}{} }}
	addr, _ := serve(t, epoll.Backend{}, h)
	fd := rawDial(t, addr)
	defer unix.Close(fd)
	req := bytes.Repeat([]byte("r"), 63)
	req = append(req, '\n')
	resp := make([]byte, len(req))
	first, second := []byte("line\npartial-"), []byte("rest\n")
	resp1, resp2 := make([]byte, len("line\n")), make([]byte, len("partial-rest\n"))
	tests := []struct {
		name string
		fn   func()
	}{
		{"round trip", func() { rawRoundTrip(t, fd, req, resp) }},
		// "partial-" is kept in a pooled buffer until "rest\n" arrives.
		{"leftover", func() {
			rawRoundTrip(t, fd, first, resp1)
			rawRoundTrip(t, fd, second, resp2)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn() // warm up buffers and pools
			if a := testing.AllocsPerRun(200, tc.fn); a != 0 {
				t.Errorf("%v allocations per %s", a, tc.name)
			}
		})
	}
	t.Run("wake", func(t *testing.T) {
		var sc loop.Conn
		got := make(chan loop.Conn, 1)
		h.read = func(c loop.Conn, in []byte) int { got <- c; return len(in) }
		rawRoundTrip(t, fd, []byte("who\n"), nil)
		sc = <-got
		woken = make(chan struct{}, 1)
		fn := func() {
			sc.Wake()
			<-woken
		}
		fn()
		if a := testing.AllocsPerRun(200, fn); a != 0 {
			t.Errorf("%v allocations per Wake/OnWake", a)
		}
	})
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(byteSize(size), func(b *testing.B) {
			addr, _ := serve(b, epoll.Backend{}, &hooks{})
			fd := rawDial(b, addr)
			defer unix.Close(fd)
			req := bytes.Repeat([]byte("r"), size-1)
			req = append(req, '\n')
			resp := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				rawRoundTrip(b, fd, req, resp)
			}
		})
	}
}

// BenchmarkParallelConns runs round trips on many connections over two
// loops; each client goroutine keeps one request outstanding.
func BenchmarkParallelConns(b *testing.B) {
	f, err := socket.Listen("tcp4", "127.0.0.1:0", true, 4096)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ap, _ := socket.FileAddrPort(f)
	srv, err := (epoll.Backend{}).New(loop.Config{Loops: 2, Handler: &hooks{},
		Listeners: []loop.Listener{{File: f, Addr: ap.String(), Loop: -1}}})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	defer func() { srv.Stop(); <-done }()
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		fd := rawDial(b, ap.String())
		defer unix.Close(fd)
		req, resp := []byte("0123456789abcdef\n"), make([]byte, 17)
		for pb.Next() {
			rawRoundTrip(b, fd, req, resp)
		}
	})
}

// BenchmarkIdleConnMemory reports the Go heap the backend holds per idle
// keep-alive connection (after one request), and the allocations per
// accepted connection. Clients are raw sockets: nothing on the Go heap.
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 2000
	addr, srv := serve(b, epoll.Backend{}, &hooks{})
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fds := make([]int, n)
		req, resp := []byte("hi\n"), make([]byte, 3)
		dial := rawDialer(b, addr)
		b.StartTimer()
		for i := range fds {
			fds[i] = dial()
			rawRoundTrip(b, fds[i], req, resp)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := srv.Conns()[0]; got != n {
			b.Fatalf("Conns = %d, want %d", got, n)
		}
		perConn := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)-int64(n*8)) / n // minus the fds slice
		b.ReportMetric(perConn, "heapB/idleconn")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/conn")
		for _, fd := range fds {
			unix.Close(fd)
		}
		for srv.Conns()[0] != 0 {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
	}
}

func byteSize(n int) string {
	if n >= 1024 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
