package looptest

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/socket"
)

// The supervisor hands the same listening sockets to every generation, so
// during a reload two servers accept from one socket, and the old one may
// be draining, stuck in a handler, or stopped (SIGSTOP). A server must
// never take a connection's wake-up without accepting it: in the kernel,
// an exclusive waiter (EPOLLEXCLUSIVE, and io_uring's accept, whose
// internal poll is always exclusive) that is woken stops the wake-up there,
// so a waiter whose loop cannot run starves every other server of the
// connection until the next one arrives (issue 17).

// testSharedListenerStuck: server A accepts from a listener, then its loop
// blocks in a handler (as a loop running a slow inline handler, or a
// stopped process, would); server B starts on the same listener. Each new
// connection, one at a time, must be answered by B. Then A stops
// accepting while still blocked (a draining generation that cannot run
// yet): once unblocked it must accept nothing more.
func testSharedListenerStuck(t *testing.T, b loop.Backend) {
	for _, tc := range []struct {
		name string
		loop int
	}{
		{"pinned", 0},  // reuse_port: a listener per loop
		{"shared", -1}, // every loop of a server accepts from it
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := socketListen()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() }) // after the servers' cleanups
			addr := fileAddr(t, f)

			blocked := make(chan struct{})
			release := make(chan struct{})
			ha := newHandler(t)
			ha.onRead = func(c loop.Conn, in []byte) int {
				if string(in) == "block\n" {
					close(blocked)
					<-release
				}
				return echoLines(c, in)
			}
			a := start(t, b, ha, setup{file: f, fileLoop: tc.loop})
			var released atomic.Bool
			unblock := func() {
				if released.CompareAndSwap(false, true) {
					close(release)
				}
			}
			t.Cleanup(unblock) // before a's Stop (cleanups run last first)

			first := dialTo(t, "tcp4", addr, 0)
			write(t, first, "block\n")
			select {
			case <-blocked:
			case <-time.After(long):
				t.Fatalf("server A did not read the first connection within %v", long)
			}

			hb := newHandler(t)
			start(t, b, hb, setup{file: f, fileLoop: tc.loop})
			// One connection at a time, no other traffic: nothing but the
			// connection itself wakes a server for it.
			probe := func(n int) {
				t.Helper()
				for range n {
					c := dialTo(t, "tcp4", addr, 0)
					write(t, c, "ping\n")
					expect(t, c, "ping\n") // within long: answered by B
					c.Close()
				}
			}
			probe(3)
			if n := ha.opens.Load(); n != 1 {
				t.Errorf("server A, blocked, accepted %d connections, want 1", n)
			}

			a.srv.StopAccepting() // A draining, still blocked
			probe(2)
			unblock()
			expect(t, first, "block\n")
			// A acts on StopAccepting now; whatever arrives later is B's.
			probe(3)
			if n := ha.opens.Load(); n != 1 {
				t.Errorf("server A accepted %d connections, want 1 (the first)", n)
			}
			if n := hb.opens.Load(); n != 8 {
				t.Errorf("server B accepted %d connections, want 8", n)
			}
		})
	}
}

// testLocalAddrWildcard: from a listener on a wildcard address, a
// connection's LocalAddr is the address the client reached, not 0.0.0.0
// (backends share one copy per address: socket.LocalAddrs).
func testLocalAddrWildcard(t *testing.T, b loop.Backend) {
	f, err := socket.Listen("tcp4", "0.0.0.0:0", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // after the server's cleanup
	s := start(t, b, newHandler(t), setup{file: f, fileLoop: -1})
	ap, err := socket.FileAddrPort(f)
	if err != nil {
		t.Fatal(err)
	}
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port())
	for range 2 {
		c := dialTo(t, "tcp4", want.String(), 0)
		write(t, c, "a\n")
		expect(t, c, "a\n")
		if got := st(s.nextOpen(t)).local; got != want {
			t.Errorf("LocalAddr = %v, want %v", got, want)
		}
	}
}
