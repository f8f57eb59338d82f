// Package looptest is the conformance suite that every loop.Backend
// (loop/epoll, loop/uring) must pass: Run drives a backend over real
// loopback TCP and unix sockets with a small line-framed test handler and
// checks the behaviour the engine relies on (partial consumption, pipelining,
// wake-ups, back-pressure, lingering close and the prompt EOF after it,
// detach, accept back-off under EMFILE, shutdown).
//
// Beyond each test's own assertions, the test handler checks the threading
// contract on every callback: callbacks of one loop never overlap (neither
// concurrently nor nested: a backend must not call OnClose from inside Abort),
// OnOpen comes first, nothing follows OnClose, and c.Loop() is in range.
//
// The cases are grouped by concern: echo.go (data in and out), wake.go,
// pause.go (back-pressure), close.go and closeeof.go, detach.go,
// lifecycle.go (StopAccepting, Stop, Conns, ticks), emfile.go,
// heldinput.go and sharedlistener.go; looptest.go holds Run, the test
// handler and the client helpers.
//
// It owns no production code and must not be imported outside tests.
package looptest

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/socket"
)

// Generous bounds: "must happen" waits use long, "must not happen" windows
// use short. Neither is a performance threshold.
const (
	long  = 10 * time.Second
	short = 300 * time.Millisecond
)

type testCase struct {
	name string
	fn   func(t *testing.T, b loop.Backend)
}

// Run runs the conformance suite against b as subtests of t. It fails (it
// does not skip) if b.Probe reports the backend unusable: a caller that may
// run where the backend is unavailable decides that itself, visibly.
func Run(t *testing.T, b loop.Backend) {
	if os.Getenv(childEnv) != "" {
		// Re-executed as the EMFILE server: only that subtest runs (the
		// parent passed -test.run), the rest must not touch the limit.
		t.Run("EMFILE", func(t *testing.T) { testEMFILE(t, b) })
		return
	}
	if err := b.Probe(); err != nil {
		t.Fatalf("backend %s cannot run here: %v", b.Name(), err)
	}
	tests := []testCase{
		{"Echo", testEcho},
		{"ManyConnsLoops", testManyConnsLoops},
		{"PartialConsumption", testPartialConsumption},
		{"Pipelining", testPipelining},
		{"WriteFromWake", testWriteFromWake},
		{"WakeConcurrent", testWakeConcurrent},
		{"WakeMerged", testWakeMerged},
		{"WakeClosed", testWakeClosed},
		{"PauseRead", testPauseRead},
		{"ResumeRedelivers", testResumeRedelivers},
		{"LargeOutput", testLargeOutput},
		{"LingeringClose", testLingeringClose},
		{"CloseEOF", testCloseEOF},
		{"CloseIdempotent", testCloseIdempotent},
		{"Abort", testAbort},
		{"PeerReset", testPeerReset},
		{"PeerEOF", testPeerEOF},
		{"Detach", testDetach},
		{"StopAccepting", testStopAccepting},
		{"Stop", testStop},
		{"Conns", testConns},
		{"Tick", testTick},
		{"UnixSocket", testUnixSocket},
		{"EMFILE", testEMFILE},
		{"ManyResets", testManyResets},
		{"HeldInputBounded", testHeldInputBounded},
		{"SharedListenerStuck", testSharedListenerStuck},
		{"LocalAddrWildcard", testLocalAddrWildcard},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

// cstate is the test handler's per-connection record (Conn.SetContext).
type cstate struct {
	id     int64
	closed bool
	// Captured in OnOpen: Conn methods other than Wake belong to the loop
	// goroutine, so tests read these instead.
	remote, local netip.AddrPort
	fd, loop      int
	wakes         atomic.Int64
	reads         atomic.Int64
	v             any // test-specific, loop goroutine only
}

func st(c loop.Conn) *cstate {
	s, _ := c.Context().(*cstate)
	return s
}

type closeEvent struct {
	c   loop.Conn
	err error
}

// handler is the test Handler: optional hooks per test over a default
// line-echo protocol, plus the contract checks listed in the package doc.
// Hooks are set before the server starts and run on loop goroutines.
type handler struct {
	t     testing.TB
	loops int
	inCb  []atomic.Int32

	onOpen    func(c loop.Conn)
	onRead    func(c loop.Conn, in []byte) int
	onWake    func(c loop.Conn)
	onDrained func(c loop.Conn)
	onClose   func(c loop.Conn, err error)
	onTick    func(loop int, now time.Time)

	ids                           atomic.Int64
	opens, closes, wakes, drained atomic.Int64
	opened                        chan loop.Conn
	closed                        chan closeEvent
}

func newHandler(t testing.TB) *handler {
	return &handler{t: t, opened: make(chan loop.Conn, 1<<16), closed: make(chan closeEvent, 1<<16)}
}

func (h *handler) enter(c loop.Conn, loopIdx int, what string) *cstate {
	if loopIdx < 0 || loopIdx >= h.loops {
		h.t.Errorf("%s: loop index %d out of range [0,%d)", what, loopIdx, h.loops)
		return nil
	}
	if n := h.inCb[loopIdx].Add(1); n != 1 {
		h.t.Errorf("%s: callbacks on loop %d overlap (concurrent or nested)", what, loopIdx)
	}
	if c == nil {
		return nil
	}
	s := st(c)
	if s == nil && what != "OnOpen" {
		h.t.Errorf("%s before OnOpen", what)
	}
	if s != nil && s.closed {
		h.t.Errorf("%s after OnClose (conn %d)", what, s.id)
	}
	return s
}

func (h *handler) exit(loopIdx int) {
	if loopIdx >= 0 && loopIdx < h.loops {
		h.inCb[loopIdx].Add(-1)
	}
}

func (h *handler) OnOpen(c loop.Conn) {
	if s := h.enter(c, c.Loop(), "OnOpen"); s != nil {
		h.t.Errorf("OnOpen twice for conn %d", s.id)
	}
	defer h.exit(c.Loop())
	c.SetContext(&cstate{id: h.ids.Add(1), remote: c.RemoteAddr(), local: c.LocalAddr(), fd: c.Fd(), loop: c.Loop()})
	h.opens.Add(1)
	if h.onOpen != nil {
		h.onOpen(c)
	}
	select {
	case h.opened <- c:
	default:
	}
}

func (h *handler) OnRead(c loop.Conn, in []byte) int {
	s := h.enter(c, c.Loop(), "OnRead")
	defer h.exit(c.Loop())
	if len(in) == 0 {
		h.t.Errorf("OnRead with no input")
	}
	if s != nil {
		s.reads.Add(1)
	}
	if h.onRead != nil {
		return h.onRead(c, in)
	}
	return echoLines(c, in)
}

func (h *handler) OnDrained(c loop.Conn) {
	h.enter(c, c.Loop(), "OnDrained")
	defer h.exit(c.Loop())
	h.drained.Add(1)
	if h.onDrained != nil {
		h.onDrained(c)
	}
}

func (h *handler) OnWake(c loop.Conn) {
	s := h.enter(c, c.Loop(), "OnWake")
	defer h.exit(c.Loop())
	h.wakes.Add(1)
	if s != nil {
		s.wakes.Add(1)
	}
	if h.onWake != nil {
		h.onWake(c)
	}
}

func (h *handler) OnClose(c loop.Conn, err error) {
	s := h.enter(c, c.Loop(), "OnClose")
	defer h.exit(c.Loop())
	if s != nil {
		s.closed = true
	}
	h.closes.Add(1)
	if h.onClose != nil {
		h.onClose(c, err)
	}
	select {
	case h.closed <- closeEvent{c, err}:
	default:
	}
}

func (h *handler) OnTick(loopIdx int, now time.Time) {
	h.enter(nil, loopIdx, "OnTick")
	defer h.exit(loopIdx)
	if h.onTick != nil {
		h.onTick(loopIdx, now)
	}
}

// echoLines answers every complete line of in with the same line, in one
// Write (as the engine batches), and consumes only complete lines.
func echoLines(c loop.Conn, in []byte) int {
	end := bytes.LastIndexByte(in, '\n') + 1
	if end > 0 {
		c.Write(in[:end])
	}
	return end
}

// setup describes the server a test needs.
type setup struct {
	loops   int
	tick    time.Duration
	readBuf int
	pinned  bool   // one extra listener pinned to each loop
	unix    string // listen on this unix path instead of TCP
	// file, if set, is served instead of a new listener (the caller
	// closes it), with fileLoop as its Loop.
	file     *os.File
	fileLoop int
}

// server is a started backend server with its listeners.
type server struct {
	srv     loop.Server
	h       *handler
	network string
	addr    string   // shared (Loop -1) listener
	pinned  []string // pinned[i] is served by loop i
}

func start(t *testing.T, b loop.Backend, h *handler, s setup) *server {
	t.Helper()
	if s.loops == 0 {
		s.loops = 1
	}
	h.loops = s.loops
	h.inCb = make([]atomic.Int32, s.loops)
	srv := &server{h: h, network: "tcp4"}
	cfg := loop.Config{
		Loops: s.loops, Handler: h, TickInterval: s.tick, ReadBufferSize: s.readBuf,
		Logger: testLogger(t),
	}
	listen := func(network, addr string, loopIdx int) string {
		f, err := socket.Listen(network, addr, false, 1024)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() }) // after the server's cleanup (LIFO)
		a := addr
		if network != "unix" {
			ap, err := socket.FileAddrPort(f)
			if err != nil {
				t.Fatal(err)
			}
			a = ap.String()
		}
		cfg.Listeners = append(cfg.Listeners, loop.Listener{File: f, Addr: a, Unix: network == "unix", Loop: loopIdx})
		return a
	}
	switch {
	case s.file != nil:
		srv.addr = fileAddr(t, s.file)
		cfg.Listeners = append(cfg.Listeners, loop.Listener{File: s.file, Addr: srv.addr, Loop: s.fileLoop})
	case s.unix != "":
		srv.network = "unix"
		srv.addr = listen("unix", s.unix, -1)
	default:
		srv.addr = listen("tcp4", "127.0.0.1:0", -1)
	}
	if s.pinned {
		for i := 0; i < s.loops; i++ {
			srv.pinned = append(srv.pinned, listen("tcp4", "127.0.0.1:0", i))
		}
	}
	ls, err := b.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.srv = ls
	done := make(chan error, 1)
	go func() { done <- ls.Serve() }()
	t.Cleanup(func() {
		ls.Stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(long):
			t.Errorf("Serve did not return within %v of Stop", long)
		}
	})
	return srv
}

func (s *server) dial(t *testing.T) net.Conn { return dialTo(t, s.network, s.addr, 0) }

// dialTo connects; rcvbuf > 0 sets SO_RCVBUF before connect so that the
// advertised window stays small.
func dialTo(t testing.TB, network, addr string, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: long}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *server) totalConns() int {
	n := 0
	for _, c := range s.srv.Conns() {
		n += c
	}
	return n
}

// nextOpen returns the next connection the server opened.
func (s *server) nextOpen(t testing.TB) loop.Conn {
	t.Helper()
	select {
	case c := <-s.h.opened:
		return c
	case <-time.After(long):
		t.Fatalf("no OnOpen within %v", long)
		return nil
	}
}

// nextClose returns the next OnClose event.
func (s *server) nextClose(t testing.TB) closeEvent {
	t.Helper()
	select {
	case e := <-s.h.closed:
		return e
	case <-time.After(long):
		t.Fatalf("no OnClose within %v", long)
		return closeEvent{}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(long)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", long, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func write(t testing.TB, c net.Conn, s string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(long))
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

func readFull(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(long))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func expect(t testing.TB, c net.Conn, want string) {
	t.Helper()
	if got := string(readFull(t, c, len(want))); got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectSilence checks that nothing arrives on c for a short while.
func expectSilence(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(short))
	var b [64]byte
	n, err := c.Read(b[:])
	if n > 0 || !isTimeout(err) {
		t.Fatalf("expected no data, got %q, %v", b[:n], err)
	}
}

// expectEnd checks that the server ended the connection: EOF or reset.
func expectEnd(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(long))
	_, err := io.Copy(io.Discard, c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("expected EOF or reset, got %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func tempSocketPath(t *testing.T) string {
	// t.TempDir paths can exceed the 108-byte sun_path limit.
	dir, err := os.MkdirTemp("", "looptest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// testLogger sends backend logs to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, nil))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
