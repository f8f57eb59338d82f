package engine

import (
	"testing"
	"time"
)

// The drain's idle close, driven with the loop's clock by hand: a loop
// gives the engine its time only at ticks, and a loop that could not run
// for a while (CPU starved, an inline handler holding it) serves what
// arrived meanwhile before its next tick.

// drainIdleEngine is an engine on one loop whose clock starts at t0, with
// one connection that served a request.
func drainIdleEngine(t *testing.T, t0 time.Time) (*Engine, *memConn) {
	t.Helper()
	e := newTestEngine(t, Config{KeepAlive: time.Hour}, &Route{Path: "/", Handler: HandlerFunc(plaintext)})
	e.OnTick(0, t0)
	m := &memConn{}
	e.OnOpen(m)
	return e, m
}

var keepAliveReq = []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")

// TestDrainIdleAfterStall: a response sent after the loop could not run
// for 2 s (its last tick 2 s old) leaves the connection idle for a moment
// only; the tick that follows must not close it under the client's next
// request, as a drain measuring idleness from that stale tick did.
func TestDrainIdleAfterStall(t *testing.T) {
	t0 := time.Now()
	e, m := drainIdleEngine(t, t0)
	e.OnRead(m, keepAliveReq) // at t0+2s; the loop's clock still says t0
	if countOf(m.out, "200 OK") != 1 || m.closed {
		t.Fatalf("response before the drain: %q closed=%v", m.out, m.closed)
	}
	e.Drain()
	now := t0.Add(2 * time.Second)
	e.OnTick(0, now)
	if m.closed {
		t.Fatalf("the drain closed a connection that answered a moment ago, as if idle since the last tick")
	}
	e.OnTick(0, now.Add(DefaultDrainIdle+200*time.Millisecond))
	if !m.closed {
		t.Errorf("a connection seen idle for DrainIdle was not closed")
	}
}

// TestDrainIdleLeavesArrivedInput: a connection idle for DrainIdle whose
// next request has reached the server, unread (the loop ticks before it
// reads what came while it could not run), is not closed: the request is
// read and answered at the loop's next poll.
func TestDrainIdleLeavesArrivedInput(t *testing.T) {
	t0 := time.Now()
	e, m := drainIdleEngine(t, t0)
	e.OnRead(m, keepAliveReq)
	e.Drain()
	e.OnTick(0, t0.Add(100*time.Millisecond)) // seen idle
	m.input = true                            // the next request is in the socket
	e.OnTick(0, t0.Add(2*time.Second))
	if m.closed {
		t.Fatalf("the drain closed a connection whose next request had arrived")
	}
	m.input = false // the loop polls and reads it
	m.out = nil
	e.OnRead(m, keepAliveReq)
	if countOf(m.out, "200 OK") != 1 || countOf(m.out, "Connection: close") != 1 {
		t.Errorf("the request that had arrived: %q, want 200 with Connection: close", m.out)
	}
}
