package socket

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPendingError: a healthy socket reports io.EOF (a plain hang-up), one
// the peer reset reports the reset, over a real loopback connection.
func TestPendingError(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := client.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	pending := func() (got error) {
		if err := raw.Control(func(fd uintptr) { got = PendingError(int(fd)) }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := pending(); got != io.EOF {
		t.Fatalf("healthy socket: %v, want io.EOF", got)
	}
	server.(*net.TCPConn).SetLinger(0) // close sends RST
	server.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := pending()
		if errors.Is(got, unix.ECONNRESET) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reset socket: %v, want ECONNRESET", got)
		}
		time.Sleep(time.Millisecond)
	}
}
