package uring

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/internal/server"
	"github.com/asyncd/asyncd/loop/looptest"
	"github.com/asyncd/asyncd/loop/socket"
	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

// Missing from giouring v2023 (include/uapi/linux/io_uring.h, Linux 6.8):
// IORING_REGISTER_PBUF_STATUS and struct io_uring_buf_status, which report
// the kernel's head of a provided-buffer ring. Only tests need them.
const ioringRegisterPbufStatus = 26

type ioUringBufStatus struct {
	bufGroup uint32
	head     uint32
	resv     [8]uint32
}

// availableBufs returns how many provided buffers the kernel can pick: the
// tail the loop published minus the kernel's head. Call it on the loop
// thread (a SINGLE_ISSUER ring refuses io_uring_register elsewhere).
func (l *eventLoop) availableBufs() (int, error) {
	st := ioUringBufStatus{bufGroup: bufGroup}
	if _, errno := l.ring.Register(l.ring.RingFd(), ioringRegisterPbufStatus, unsafe.Pointer(&st), 1); errno != 0 {
		return 0, fmt.Errorf("IORING_REGISTER_PBUF_STATUS: %w", errno)
	}
	return int(uint16(l.bufs.br.Tail - uint16(st.head))), nil
}

func TestUserDataRoundTrip(t *testing.T) {
	tests := []struct {
		kind      opKind
		gen, slot uint32
		wantGen   uint32
	}{
		{kindRecv, 1, 0, 1},
		{kindSend, genMask, 1<<32 - 1, genMask},
		{kindClose, genMask + 5, 7, 4}, // generations wrap at 24 bits
		{kindWake, 0, 0, 0},
	}
	for _, tc := range tests {
		ud := userData(tc.kind, tc.gen, tc.slot)
		if udKind(ud) != tc.kind || udGen(ud) != tc.wantGen || udSlot(ud) != tc.slot {
			t.Errorf("userData(%d,%d,%d) = %#x decodes to (%d,%d,%d)", tc.kind, tc.gen, tc.slot, ud,
				udKind(ud), udGen(ud), udSlot(ud))
		}
		if ud == ^uint64(0) {
			t.Errorf("userData(%d,%d,%d) is giouring's reserved timeout user_data", tc.kind, tc.gen, tc.slot)
		}
	}
	// The same slot under two generations never gives the same user_data:
	// a completion of the old connection cannot be taken for the new one.
	if userData(kindRecv, 1, 3) == userData(kindRecv, 2, 3) {
		t.Error("user_data ignores the generation")
	}
}

// sqeReuseByte is the send buffer of TestSQESlotReuse: heap memory, which
// the GC does not move while the kernel reads it.
var sqeReuseByte = []byte{'x'}

// TestSQESlotReuse runs the backend's SEND, SHUTDOWN, POLL_ADD and CLOSE
// through the same SQ slot (a one-entry ring), as a busy loop's ring does
// once it wraps: no request may inherit a field of the slot's previous one.
// A SHUTDOWN or CLOSE with a stale msg_flags or poll mask fails with EINVAL,
// which left connections open (no FIN after the response) and leaked their
// descriptors.
func TestSQESlotReuse(t *testing.T) {
	runtime.LockOSThread() // SINGLE_ISSUER: submissions from this thread only
	defer runtime.UnlockOSThread()
	ring, _, err := newRing(1, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ring.QueueExit()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	closed := false
	defer func() {
		if !closed {
			unix.Close(fds[0])
		}
	}()
	steps := []struct {
		name string
		prep func(*giouring.SubmissionQueueEntry)
		want func(res int32) bool
	}{
		{"send", func(e *giouring.SubmissionQueueEntry) {
			e.PrepareSend(fds[0], uintptr(unsafe.Pointer(&sqeReuseByte[0])), 1, unix.MSG_NOSIGNAL)
		}, func(res int32) bool { return res == 1 }},
		{"shutdown after send", func(e *giouring.SubmissionQueueEntry) {
			e.PrepareShutdown(fds[0], unix.SHUT_WR)
		}, func(res int32) bool { return res == 0 }},
		{"poll", func(e *giouring.SubmissionQueueEntry) {
			e.PreparePollAdd(fds[0], unix.POLLERR|unix.POLLHUP|unix.POLLOUT)
		}, func(res int32) bool { return res > 0 }},
		{"close after poll", func(e *giouring.SubmissionQueueEntry) {
			e.PrepareClose(fds[0])
		}, func(res int32) bool { return res == 0 }},
	}
	for i, st := range steps {
		sqe := ring.GetSQE()
		if sqe == nil {
			t.Fatalf("%s: no free SQE", st.name)
		}
		st.prep(sqe)
		sqe.UserData = uint64(i + 1)
		if _, err := ring.Submit(); err != nil {
			t.Fatalf("%s: submit: %v", st.name, err)
		}
		res, _, err := probeWait(ring)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !st.want(res) {
			t.Fatalf("%s: res %d (%v)", st.name, res, errnoOf(res))
		}
	}
	closed = true
	if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("descriptor still open after CLOSE: fcntl: %v", err)
	}
	// The peer got the byte, then the FIN.
	var b [4]byte
	if n, err := unix.Read(fds[1], b[:]); n != 1 || err != nil {
		t.Fatalf("peer read: %d, %v; want the sent byte", n, err)
	}
	if n, err := unix.Read(fds[1], b[:]); n != 0 || err != nil {
		t.Errorf("peer read: %d, %v; want EOF", n, err)
	}
}

func TestProbeMissingOpcode(t *testing.T) {
	saved := requiredOps
	t.Cleanup(func() { requiredOps = saved })
	requiredOps = append(append(requiredOps[:0:0], saved...), struct {
		op   uint8
		name string
	}{250, "IORING_OP_FROM_THE_FUTURE"})
	err := Backend{}.Probe()
	if err == nil {
		t.Fatal("Probe succeeded although an opcode is unsupported")
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "IORING_OP_FROM_THE_FUTURE") {
		t.Errorf("Probe error %q does not name the missing opcode or wrap ErrUnavailable", err)
	}
}

func TestSetupErrorNamesTheReason(t *testing.T) {
	tests := []struct {
		err         error
		want        string
		unavailable bool
	}{
		{unix.ENOSYS, "CONFIG_IO_URING", true},
		{unix.EPERM, "kernel.io_uring_disabled", true},
		{unix.EINVAL, "too old", true},
		{unix.ENOMEM, "RLIMIT_MEMLOCK", false},
	}
	for _, tc := range tests {
		err := setupError(tc.err)
		if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.err) {
			t.Errorf("setupError(%v) = %q, want it to wrap the errno and mention %q", tc.err, err, tc.want)
		}
		if got := errors.Is(err, ErrUnavailable); got != tc.unavailable {
			t.Errorf("setupError(%v): errors.Is(ErrUnavailable) = %v, want %v", tc.err, got, tc.unavailable)
		}
	}
	// EPERM with io_uring enabled by sysctl points at seccomp, and quotes
	// the sysctl's actual value.
	if v := ioUringDisabled(); v == "0" {
		if err := setupError(unix.EPERM); !strings.Contains(err.Error(), "seccomp") {
			t.Errorf("setupError(EPERM) with kernel.io_uring_disabled=0 = %q, want a seccomp hint", err)
		}
	}
}

// echoHandler answers each complete line with the same line.
type echoHandler struct{}

func (echoHandler) OnOpen(loop.Conn) {}
func (echoHandler) OnRead(c loop.Conn, in []byte) int {
	end := bytes.LastIndexByte(in, '\n') + 1
	if end > 0 {
		c.Write(in[:end])
	}
	return end
}
func (echoHandler) OnDrained(loop.Conn)      {}
func (echoHandler) OnWake(loop.Conn)         {}
func (echoHandler) OnClose(loop.Conn, error) {}
func (echoHandler) OnTick(int, time.Time)    {}

// serve starts a backend server on a fresh loopback listener; it is stopped
// at the end of the test.
func serve(t *testing.T, b Backend, cfg loop.Config) (*server.Server[*eventLoop], string) {
	t.Helper()
	f, err := socket.Listen("tcp4", "127.0.0.1:0", false, 1024)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ap, err := socket.FileAddrPort(f)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listeners = []loop.Listener{{File: f, Addr: ap.String(), Loop: -1}}
	if cfg.Loops == 0 {
		cfg.Loops = 1
	}
	ls, err := b.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- ls.Serve() }()
	t.Cleanup(func() {
		ls.Stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Stop")
		}
	})
	return ls.(*server.Server[*eventLoop]), ap.String()
}

func echoOnce(t *testing.T, addr, msg string) {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo: got %q, %v; want %q", got, err, msg)
	}
}

func TestSetupFlagsFallback(t *testing.T) {
	const (
		bogus = 1 << 31 // no such IORING_SETUP_* flag: the kernel says EINVAL
		best  = giouring.SetupSubmitAll | giouring.SetupCoopTaskrun | giouring.SetupTaskrunFlag |
			giouring.SetupSingleIssuer | giouring.SetupDeferTaskrun
	)
	tests := []struct {
		name     string
		attempts []uint32
		want     uint32 // flags the loops end up with
		wantErr  bool
	}{
		{"best flags", setupAttempts, best, false},
		{"first set refused", []uint32{best | bogus, giouring.SetupSubmitAll | giouring.SetupCoopTaskrun}, giouring.SetupSubmitAll | giouring.SetupCoopTaskrun, false},
		{"down to no flags", []uint32{best | bogus, bogus, 0}, 0, false},
		{"nothing accepted", []uint32{bogus}, 0, true},
	}
	saved := setupAttempts
	t.Cleanup(func() { setupAttempts = saved })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setupAttempts = tc.attempts
			if tc.wantErr {
				_, err := Backend{}.New(loop.Config{Loops: 1, Handler: echoHandler{}})
				if err == nil || !errors.Is(err, ErrUnavailable) || !errors.Is(err, unix.EINVAL) {
					t.Fatalf("New = %v, want an ErrUnavailable EINVAL error", err)
				}
				return
			}
			s, addr := serve(t, Backend{}, loop.Config{Loops: 2, Handler: echoHandler{}})
			for _, l := range s.Loops {
				if l.flags != tc.want {
					t.Errorf("loop %d set up with flags %#x, want %#x", l.idx, l.flags, tc.want)
				}
			}
			for i := range 4 {
				echoOnce(t, addr, fmt.Sprintf("over flags %#x, %d\n", tc.want, i))
			}
		})
	}
}

// TestConformanceWithoutModernFlags runs the whole backend suite on a ring
// set up without SINGLE_ISSUER, DEFER_TASKRUN, COOP_TASKRUN or SUBMIT_ALL:
// what the fallback gives on kernels 5.19 to 6.0, where completions are
// posted whenever the kernel likes rather than only inside io_uring_enter.
func TestConformanceWithoutModernFlags(t *testing.T) {
	saved := setupAttempts
	t.Cleanup(func() { setupAttempts = saved })
	setupAttempts = []uint32{0}
	looptest.Run(t, Backend{})
}

// churnHandler serves "size seed mode\n" requests with size bytes of a
// pattern derived from seed, then keeps the connection (mode k), aborts it
// right after the write (mode a: the send is in flight when it is
// cancelled) or closes it (mode c: lingering close after the send).
type churnHandler struct {
	opens, closes atomic.Int64
	onTick        atomic.Pointer[func(l int)]
}

func pattern(seed, i int) byte { return byte(seed*31 + i*7 + i>>8) }

func (h *churnHandler) OnOpen(loop.Conn) { h.opens.Add(1) }
func (h *churnHandler) OnRead(c loop.Conn, in []byte) int {
	end := bytes.IndexByte(in, '\n')
	if end < 0 {
		return 0
	}
	var size, seed int
	var mode string
	if _, err := fmt.Sscanf(string(in[:end]), "%d %d %s", &size, &seed, &mode); err != nil {
		c.Abort()
		return len(in)
	}
	out := make([]byte, size)
	for i := range out {
		out[i] = pattern(seed, i)
	}
	// In pieces, so that some of the output is queued behind a send in
	// flight.
	for len(out) > 0 {
		n := min(len(out), 100<<10)
		c.Write(out[:n])
		out = out[n:]
	}
	switch mode {
	case "a":
		c.Abort()
	case "c":
		c.Close()
	}
	return end + 1
}
func (h *churnHandler) OnDrained(loop.Conn)      {}
func (h *churnHandler) OnWake(loop.Conn)         {}
func (h *churnHandler) OnClose(loop.Conn, error) { h.closes.Add(1) }
func (h *churnHandler) OnTick(l int, _ time.Time) {
	if f := h.onTick.Load(); f != nil {
		(*f)(l)
	}
}

// TestMemoryLifetimeUnderChurn checks the rule that memory handed to the
// kernel stays valid until its completion: many connections receive large
// responses written in pieces, are aborted with sends in flight, closed, or
// reset by the client mid-response, while another goroutine keeps the GC
// running and fills fresh allocations with a poison byte. A send buffer freed
// or reused too early would put poison (or another response) on the wire; a
// receive buffer returned twice or never would show in the buffer ring's
// accounting, which is checked on the loop thread at the end along with the
// loops' slot tables and in-flight counts.
func TestMemoryLifetimeUnderChurn(t *testing.T) {
	conns, workers := 240, 8
	if raceEnabled {
		conns = 80
	}
	h := &churnHandler{}
	// Tiny receive buffers and a tiny buffer ring: requests span several
	// buffers and the ring runs dry (ENOBUFS) under load.
	b := Backend{BufferRingEntries: 8, LingerTimeout: time.Second}
	s, addr := serve(t, b, loop.Config{Loops: 2, Handler: h, ReadBufferSize: 512, TickInterval: 10 * time.Millisecond})

	stop := make(chan struct{})
	var poisoner sync.WaitGroup
	poisoner.Add(1)
	go func() {
		defer poisoner.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			runtime.GC()
			for range 16 {
				p := make([]byte, 64<<10)
				for i := range p {
					p[i] = 0xEE
				}
				_ = p
			}
		}
	}()

	sizes := []int{1, 700, 64 << 10, 300 << 10, 1 << 20}
	// One deadline for every client: a stuck server fails the test in
	// bounded time.
	deadline := time.Now().Add(15 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < conns; i += workers {
				if err := churnClient(addr, i, sizes[i%len(sizes)], deadline); err != nil {
					errs <- fmt.Errorf("conn %d: %w", i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	poisoner.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	deadline = time.Now().Add(10 * time.Second)
	for h.closes.Load() != h.opens.Load() || total(s.Conns()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("opens %d, closes %d, Conns %v after the clients finished", h.opens.Load(), h.closes.Load(), s.Conns())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if h.opens.Load() != int64(conns) {
		t.Errorf("opened %d connections, want %d", h.opens.Load(), conns)
	}

	// Loop-side accounting, read on each loop's thread (OnTick).
	type report struct {
		loop, avail, inflight, live int
		err                         error
	}
	reports := make(chan report, 2*len(s.Loops))
	var once [2]atomic.Bool
	onTick := func(i int) {
		if !once[i].CompareAndSwap(false, true) {
			return
		}
		l := s.Loops[i]
		avail, err := l.availableBufs()
		live := 0
		for _, c := range l.conns {
			if c != nil {
				live++
			}
		}
		reports <- report{i, avail, l.inflight, live, err}
	}
	h.onTick.Store(&onTick)
	for range s.Loops {
		select {
		case r := <-reports:
			wantInflight := 1 + len(s.Loops[r.loop].listeners) // the eventfd poll and the listener polls
			switch {
			case r.err != nil:
				t.Errorf("loop %d: %v", r.loop, r.err)
			case r.avail != b.BufferRingEntries:
				t.Errorf("loop %d: %d of %d provided buffers available to the kernel", r.loop, r.avail, b.BufferRingEntries)
			}
			if r.inflight != wantInflight || r.live != 0 {
				t.Errorf("loop %d: %d requests in flight (want %d), %d live connection slots (want 0)",
					r.loop, r.inflight, wantInflight, r.live)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no tick report from a loop")
		}
	}
}

func total(n []int) int {
	s := 0
	for _, v := range n {
		s += v
	}
	return s
}

// churnClient runs one connection of TestMemoryLifetimeUnderChurn, choosing
// its mode from i.
func churnClient(addr string, i, size int, deadline time.Time) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	if i%3 == 0 {
		// A small receive window keeps the server's sends partial and in
		// flight for longer.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
			})
		}
	}
	nc, err := d.Dial("tcp4", addr)
	if err != nil {
		return err
	}
	c := nc.(*net.TCPConn)
	defer c.Close()
	c.SetDeadline(deadline)
	check := func(got []byte, seed int) error {
		for j, v := range got {
			if v != pattern(seed, j) {
				return fmt.Errorf("byte %d of response (seed %d) is %#x, want %#x", j, seed, v, pattern(seed, j))
			}
		}
		return nil
	}
	mode := "kacr"[i%4]
	switch mode {
	case 'k': // keep-alive: several full responses
		for r := range 3 {
			seed := i*10 + r
			fmt.Fprintf(c, "%d %d k\n", size, seed)
			got := make([]byte, size)
			if _, err := io.ReadFull(c, got); err != nil {
				return fmt.Errorf("keep-alive response %d: %w", r, err)
			}
			if err := check(got, seed); err != nil {
				return err
			}
		}
	case 'a': // server aborts with the send in flight: a correct prefix
		fmt.Fprintf(c, "%d %d a\n", size, i)
		got, _ := io.ReadAll(c) // EOF or reset
		if len(got) > size {
			return fmt.Errorf("aborted response has %d bytes, more than %d", len(got), size)
		}
		return check(got, i)
	case 'c': // server closes after the send: the whole response, then EOF
		fmt.Fprintf(c, "%d %d c\n", size, i)
		got, err := io.ReadAll(c)
		if err != nil || len(got) != size {
			return fmt.Errorf("closed response: %d of %d bytes, %v", len(got), size, err)
		}
		return check(got, i)
	case 'r': // client resets mid-response
		fmt.Fprintf(c, "%d %d k\n", size, i)
		got := make([]byte, size/2)
		if _, err := io.ReadFull(c, got); err != nil {
			return fmt.Errorf("first half before reset: %w", err)
		}
		if err := check(got, i); err != nil {
			return err
		}
		c.SetLinger(0)
	}
	return nil
}

// TestDetachWhileStreaming detaches a connection from inside OnRead while
// the client keeps streaming: the multishot receive is still armed and has
// more input in flight, which Detach must collect (synchronous cancel and a
// scan of the completion ring) so that unread plus what the new owner reads
// is exactly the stream, byte for byte.
func TestDetachWhileStreaming(t *testing.T) {
	const total = 4 << 20
	taken := make(chan []byte, 1)
	files := make(chan *os.File, 1)
	failed := make(chan error, 1)
	h := &detachHandler{taken: taken, files: files, failed: failed}
	_, addr := serve(t, Backend{}, loop.Config{Loops: 1, Handler: h, ReadBufferSize: 4 << 10})
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stream := make([]byte, total)
	for i := range stream {
		stream[i] = byte(i*13 + i>>10)
	}
	writeErr := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		_, err := c.Write(stream)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		writeErr <- err
	}()
	var f *os.File
	select {
	case f = <-files:
	case err := <-failed:
		t.Fatalf("Detach: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no Detach")
	}
	defer f.Close()
	unread := <-taken
	nc, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	rest, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("reading the detached socket: %v", err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("client write: %v", err)
	}
	got := append(unread, rest...)
	if len(got) != total {
		t.Fatalf("unread %d + detached reads %d = %d bytes, want %d", len(unread), len(rest), len(got), total)
	}
	if i := firstDiff(got, stream); i >= 0 {
		t.Fatalf("stream differs at byte %d (unread had %d bytes)", i, len(unread))
	}
	t.Logf("unread %d bytes, detached socket read %d", len(unread), len(rest))
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// detachHandler detaches on the first OnRead once 64 KiB arrived, from
// inside OnRead, leaving everything unconsumed.
type detachHandler struct {
	taken  chan []byte
	files  chan *os.File
	failed chan error
	done   bool
}

func (h *detachHandler) OnOpen(loop.Conn) {}
func (h *detachHandler) OnRead(c loop.Conn, in []byte) int {
	if h.done {
		return len(in)
	}
	if len(in) < 64<<10 {
		return 0
	}
	h.done = true
	f, unread, err := c.Detach()
	if err != nil {
		h.failed <- err
		return 0
	}
	h.taken <- append([]byte(nil), unread...)
	h.files <- f
	return 0
}
func (h *detachHandler) OnDrained(loop.Conn)      {}
func (h *detachHandler) OnWake(loop.Conn)         {}
func (h *detachHandler) OnClose(loop.Conn, error) {}
func (h *detachHandler) OnTick(int, time.Time)    {}

// TestOneEnterPerRoundTrip: on a lone keep-alive connection, a request and
// its response cost the loop one io_uring_enter: the response's send (a
// first send, MSG_DONTWAIT) and the wait for the next request go in the
// same call, which waits for one completion more than the sends it
// submits. It took two before (the send's own completion ended the wait).
func TestOneEnterPerRoundTrip(t *testing.T) {
	s, addr := serve(t, Backend{}, loop.Config{Handler: echoHandler{}})
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func() {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			t.Fatal(err)
		}
		var b [5]byte
		if _, err := io.ReadFull(c, b[:]); err != nil || string(b[:]) != "ping\n" {
			t.Fatalf("echo: %q, %v", b[:], err)
		}
	}
	roundTrip() // accepted, receive armed
	const n = 200
	before := s.Loops[0].enters.Load()
	for range n {
		roundTrip()
	}
	// Ticks, signals (EINTR) and a GC may add a few; two per round trip
	// would be 2n.
	if got := s.Loops[0].enters.Load() - before; got > n*3/2 {
		t.Errorf("%d io_uring_enter calls for %d round trips, want about one each", got, n)
	}
}
