package engine_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/epoll"
	"github.com/asyncd/asyncd/loop/uring"
)

// BenchmarkNetHTTPAdapterTCP serves examples/dbapi's users API without its
// database (engine.UsersMuxForBench) over loopback TCP from plain net/http
// and from asyncd's adapter, inline (sync) and off the loop (async, a
// channel-fed goroutine pool: the elastic pool's fast path) on each
// backend, to clients in the same process that reuse their buffers
// (allocations are the server's). conns=1 is one keep-alive connection,
// request after request: every response ends in an idle server, so each
// request pays the full park-and-wake path. conns=64 keeps 64 connections
// busy, closer to wrk's load. cpu-ns/op is the process's user+system CPU
// (client included, the same client for every server) per request:
//
//	go test -run '^$' -bench NetHTTPAdapterTCP -benchmem ./engine/
func BenchmarkNetHTTPAdapterTCP(b *testing.B) {
	req := []byte(engine.BenchUsersRequest)
	servers := []struct {
		name  string
		start func(b *testing.B) string // returns the address
	}{
		{"nethttp", startNetHTTP},
		{"asyncd-sync-epoll", asyncdServer(epoll.Backend{}, false)},
		{"asyncd-async-epoll", asyncdServer(epoll.Backend{}, true)},
		{"asyncd-sync-uring", asyncdServer(uring.Backend{}, false)},
		{"asyncd-async-uring", asyncdServer(uring.Backend{}, true)},
	}
	for _, conns := range []int{1, 64} {
		for _, s := range servers {
			b.Run(fmt.Sprintf("conns=%d/%s", conns, s.name), func(b *testing.B) {
				addr := s.start(b)
				clients := make(chan *rawClient, conns)
				for range conns {
					clients <- dialRaw(b, addr)
				}
				b.ReportAllocs()
				cpu0 := processCPU()
				b.ResetTimer()
				if conns == 1 {
					c := <-clients
					for range b.N {
						c.roundTrip(b, req)
					}
				} else {
					b.SetParallelism((conns + 1) / 2) // GOMAXPROCS 2 on the CI machine
					b.RunParallel(func(pb *testing.PB) {
						c := <-clients
						for pb.Next() {
							c.roundTrip(b, req)
						}
					})
				}
				b.StopTimer()
				b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func startNetHTTP(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: engine.UsersMuxForBench(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func asyncdServer(backend loop.Backend, offLoop bool) func(b *testing.B) string {
	return func(b *testing.B) string {
		if err := backend.Probe(); err != nil {
			b.Skipf("backend %s cannot run here: %v", backend.Name(), err)
		}
		cfg := engine.Config{
			Router: enginetest.Router(b, &engine.Route{Path: "/users/", Handler: engine.HTTPHandler(engine.UsersMuxForBench())}),
			Loops:  1, ServerHeader: "asyncd", MaxInflight: 1000,
			KeepAlive: 90 * time.Second, HeaderTimeout: 10 * time.Second,
		}
		if offLoop {
			cfg.Dispatch, cfg.Executor = engine.OffLoop, engine.NewTaskPoolForBench(b, 256)
		}
		return enginetest.Start(b, backend, cfg).Addr
	}
}

// rawClient sends a request and reads its response (Content-Length
// framed) into a buffer it reuses, allocating nothing.
type rawClient struct {
	c   net.Conn
	buf []byte
}

func dialRaw(b *testing.B, addr string) *rawClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &rawClient{c: c, buf: make([]byte, 4096)}
}

var (
	headEnd       = []byte("\r\n\r\n")
	contentLength = []byte("\r\nContent-Length: ")
	status200     = []byte("HTTP/1.1 200 ")
)

func (r *rawClient) roundTrip(b *testing.B, req []byte) {
	if _, err := r.c.Write(req); err != nil {
		b.Fatal(err)
	}
	n := 0
	for {
		m, err := r.c.Read(r.buf[n:])
		if err != nil {
			b.Fatalf("read: %v after %q", err, r.buf[:n])
		}
		n += m
		end := bytes.Index(r.buf[:n], headEnd)
		if end < 0 {
			continue
		}
		i := bytes.Index(r.buf[:end+2], contentLength)
		if i < 0 || !bytes.HasPrefix(r.buf, status200) {
			b.Fatalf("response: %q", r.buf[:n])
		}
		v := r.buf[i+len(contentLength):]
		v = v[:bytes.IndexByte(v, '\r')]
		cl, err := strconv.Atoi(string(v)) // no allocation: the compiler converts in place
		if err != nil {
			b.Fatalf("Content-Length %q", v)
		}
		if n >= end+4+cl {
			if n > end+4+cl {
				b.Fatalf("more than one response: %q", r.buf[:n])
			}
			return
		}
	}
}

// processCPU is the process's user+system CPU time so far, in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
