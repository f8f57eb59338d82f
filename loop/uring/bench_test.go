package uring_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/socket"
	"github.com/asyncd/asyncd/loop/uring"
)

// benchEcho answers every complete line with the same line, in one Write per
// OnRead, as the engine batches its responses. It allocates nothing.
type benchEcho struct{}

func (benchEcho) OnOpen(loop.Conn) {}
func (benchEcho) OnRead(c loop.Conn, in []byte) int {
	end := bytes.LastIndexByte(in, '\n') + 1
	if end > 0 {
		c.Write(in[:end])
	}
	return end
}
func (benchEcho) OnDrained(loop.Conn)      {}
func (benchEcho) OnWake(loop.Conn)         {}
func (benchEcho) OnClose(loop.Conn, error) {}
func (benchEcho) OnTick(int, time.Time)    {}

func startBench(b *testing.B, loops int) netip.AddrPort {
	b.Helper()
	f, err := socket.Listen("tcp4", "127.0.0.1:0", false, 1024)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	ap, err := socket.FileAddrPort(f)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := uring.Backend{}.New(loop.Config{Loops: loops, Handler: benchEcho{},
		Listeners: []loop.Listener{{File: f, Addr: ap.String(), Loop: -1}}})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	b.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return ap
}

// rawClient is a blocking loopback client on bare syscalls, so that the
// benchmark's allocation count is the server's.
type rawClient struct{ fd int }

func dialRaw(b *testing.B, ap netip.AddrPort) rawClient {
	b.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		b.Fatal(err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	return rawClient{fd}
}

// roundTrip writes req and reads len(req) bytes back into resp.
func (c rawClient) roundTrip(req, resp []byte) error {
	if _, err := unix.Write(c.fd, req); err != nil {
		return err
	}
	for got := 0; got < len(req); {
		n, err := unix.Read(c.fd, resp[got:len(req)])
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("EOF after %d bytes", got)
		}
		got += n
	}
	return nil
}

func request(size, lines int) []byte {
	line := bytes.Repeat([]byte("x"), size-1)
	line = append(line, '\n')
	return bytes.Repeat(line, lines)
}

// BenchmarkEcho measures one connection's request/response round trip over
// loopback: one multishot-recv completion, one OnRead, one send. allocs/op
// counts the whole process (the client uses bare syscalls): the hot path
// must allocate nothing.
func BenchmarkEcho(b *testing.B) {
	for _, tc := range []struct {
		name        string
		size, lines int
	}{
		{"64B", 64, 1},
		{"4KiB", 4096, 1},
		{"pipelined16x64B", 64, 16},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := dialRaw(b, startBench(b, 1))
			req := request(tc.size, tc.lines)
			resp := make([]byte, len(req))
			for range 100 { // warm the pools and the connection
				if err := c.roundTrip(req, resp); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := c.roundTrip(req, resp); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if !bytes.Equal(resp, req) {
				b.Fatal("echo mismatch")
			}
		})
	}
}

// BenchmarkEchoParallel runs concurrent connections over two loops.
func BenchmarkEchoParallel(b *testing.B) {
	ap := startBench(b, 2)
	req := request(64, 1)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := dialRaw(b, ap)
		resp := make([]byte, len(req))
		for pb.Next() {
			if err := c.roundTrip(req, resp); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
