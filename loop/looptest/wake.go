package looptest

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
)

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
