package looptest

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
)

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
