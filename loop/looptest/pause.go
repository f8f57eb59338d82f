package looptest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
)

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
