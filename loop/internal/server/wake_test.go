package server

import (
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

type testConn struct {
	id int
	cw ConnWake
}

// eventfdCount reads (and so resets) the eventfd's counter; 0 when it was
// not signalled.
func eventfdCount(t *testing.T, fd int) uint64 {
	t.Helper()
	var b [8]byte
	n, err := unix.Read(fd, b[:])
	if err == unix.EAGAIN {
		return 0
	}
	if err != nil || n != 8 {
		t.Fatalf("read eventfd: %d, %v", n, err)
	}
	return uint64(b[0]) | uint64(b[1])<<8
}

// TestWakeQueue: wakes of one connection merge until the loop claims them,
// the eventfd is written once per Take, commands accumulate, a killed
// connection is neither queued nor claimed, and nothing is accepted once
// the queue is closed.
func TestWakeQueue(t *testing.T) {
	var w WakeQueue[*testConn]
	if err := w.Open(); err != nil {
		t.Fatal(err)
	}
	a, b, dead := &testConn{id: 1}, &testConn{id: 2}, &testConn{id: 3}
	dead.cw.Kill()

	for range 3 {
		if !w.Wake(a, &a.cw) {
			t.Fatal("Wake(a) = false on an open queue")
		}
	}
	if !w.Wake(b, &b.cw) {
		t.Fatal("Wake(b) = false")
	}
	if w.Wake(dead, &dead.cw) {
		t.Fatal("Wake of a killed connection = true")
	}
	w.Command(CmdStopAccepting)
	w.Command(CmdStop)
	if !w.Pending() {
		t.Fatal("Pending = false after wakes")
	}
	if n := eventfdCount(t, w.FD()); n != 1 {
		t.Fatalf("eventfd written %d times, want once until Take", n)
	}

	cmds, batch := w.Take()
	if cmds != CmdStopAccepting|CmdStop {
		t.Errorf("commands = %b, want both", cmds)
	}
	if len(batch) != 2 || batch[0] != a || batch[1] != b {
		t.Fatalf("batch = %v, want [a b] (merged wakes)", batch)
	}
	if w.Pending() {
		t.Error("Pending = true after Take")
	}
	// A Wake after Take but before the claim stays merged: the connection
	// is still queued.
	if !w.Wake(a, &a.cw) {
		t.Fatal("Wake(a) during the batch = false")
	}
	b.cw.Kill() // closed before the loop got to it
	if !a.cw.Claim() || b.cw.Claim() {
		t.Error("Claim: want a due, b (killed) skipped")
	}
	// After the claim a new Wake queues a again and signals again.
	if !w.Wake(a, &a.cw) {
		t.Fatal("Wake(a) after the claim = false")
	}
	w.Done(batch)
	if n := eventfdCount(t, w.FD()); n != 1 {
		t.Fatalf("eventfd written %d times after Take, want once", n)
	}
	if _, batch := w.Take(); len(batch) != 1 || batch[0] != a {
		t.Fatalf("second batch = %v, want [a]", batch)
	}

	w.Close()
	c := &testConn{id: 4}
	if w.Wake(c, &c.cw) {
		t.Error("Wake after Close = true")
	}
	w.Command(CmdStop) // a no-op, and must not write to a closed descriptor
	w.Close()          // idempotent
}

// TestWakeQueueConcurrent: wakes from many goroutines each reach the loop
// (run with -race).
func TestWakeQueueConcurrent(t *testing.T) {
	var w WakeQueue[*testConn]
	if err := w.Open(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	conns := make([]*testConn, 64)
	for i := range conns {
		conns[i] = &testConn{id: i}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range conns[g*8 : g*8+8] {
				w.Wake(c, &c.cw)
			}
		}()
	}
	wg.Wait()
	_, batch := w.Take()
	seen := map[int]bool{}
	for _, c := range batch {
		if !c.cw.Claim() {
			t.Errorf("conn %d queued but not claimable", c.id)
		}
		seen[c.id] = true
	}
	if len(seen) != len(conns) || len(batch) != len(conns) {
		t.Errorf("%d distinct of %d queued, want each of %d once", len(seen), len(batch), len(conns))
	}
}
