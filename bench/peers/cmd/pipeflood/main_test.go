package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/asyncd/asyncd/bench/peers/internal/procmem"
)

// serve runs handle on every connection accepted on a loopback listener.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}

// TestFlood floods in-process servers of three behaviours; this process's
// own tree is the measured server.
func TestFlood(t *testing.T) {
	base, err := procmem.TreeRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan [][]byte, 1)
	tests := []struct {
		name       string
		handle     func(net.Conn)
		cap        int64
		wantCapped bool
		wantClosed bool
	}{
		{
			name: "back-pressure (net/http)",
			handle: func(c net.Conn) {
				l := &oneConn{c: c, done: make(chan struct{})}
				srv := &http.Server{
					Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
						_, _ = w.Write([]byte("Hello, World!"))
					}),
					ConnState: func(_ net.Conn, s http.ConnState) {
						if s == http.StateClosed {
							close(l.done)
						}
					},
				}
				_ = srv.Serve(l)
			},
			cap: base + 1<<30,
		},
		{
			name: "queues without bound",
			handle: func(c net.Conn) {
				var q [][]byte
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						hold <- q // keep it reachable until the sample saw it
						return
					}
					// Three bytes of answer per byte read, never written;
					// written into, so the pages are resident.
					q = append(q, bytes.Repeat(buf[:n], 3))
				}
			},
			cap:        base + 32<<20,
			wantCapped: true,
		},
		{
			name: "closes the connection",
			handle: func(c net.Conn) {
				_, _ = io.CopyN(io.Discard, c, 1<<20)
				_ = c.(*net.TCPConn).SetLinger(0) // reset, so the writer fails fast
			},
			cap:        base + 1<<30,
			wantClosed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, tt.handle)
			res, err := Flood(context.Background(), Config{
				Addr: addr, PID: os.Getpid(), Path: "/plaintext",
				Duration: 2 * time.Second, Interval: 50 * time.Millisecond,
				SndBuf: 1 << 20, Cap: tt.cap,
			})
			select {
			case <-hold:
			default:
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Capped != tt.wantCapped || res.ServerClosed != tt.wantClosed {
				t.Fatalf("capped=%v closed=%v (%s), want %v %v", res.Capped, res.ServerClosed, res.WriteError, tt.wantCapped, tt.wantClosed)
			}
			if res.Requests == 0 || res.RSSPeak < res.RSSBaseline {
				t.Fatalf("implausible result %+v", res)
			}
			if tt.wantCapped && res.RSSPeak <= tt.cap {
				t.Fatalf("capped but peak %d <= cap %d", res.RSSPeak, tt.cap)
			}
			if !tt.wantClosed && len(res.Samples) == 0 {
				t.Fatal("no RSS sample taken")
			}
		})
	}
}

// oneConn is a net.Listener that yields one connection, then blocks until
// that connection's server goroutine is done.
type oneConn struct {
	c    net.Conn
	used bool
	done chan struct{}
}

func (l *oneConn) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}
func (l *oneConn) Close() error   { return nil }
func (l *oneConn) Addr() net.Addr { return l.c.LocalAddr() }
