package accesslog

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
)

const benchRequest = "GET /api/v1/items?id=42&sort=desc HTTP/1.1\r\nHost: example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
	"Referer: https://example.com/page\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\nX-Request-Id: 7f3c9a\r\n\r\n"

// BenchmarkObserve measures Observe alone (rendering a line into a shard
// and handing full buffers to the writer, which discards them), on the
// loop, with a real request's Ctx. allocs/op must be 0.
func BenchmarkObserve(b *testing.B) {
	formats := []struct {
		name   string
		format string
		json   bool
	}{
		{"gunicorn-default", DefaultFormat, false},
		{"every-atom", `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(b)s "%(f)s" "%(a)s" %(T)s %(D)s %(M)s %(L)s %(p)s %({x-request-id}i)s %({content-type}o)s %({REMOTE_ADDR}e)s`, false},
		{"json", `%({x-request-id}i)s`, true},
	}
	be := enginetest.Backends(b)[0]
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			l, err := NewWriter(io.Discard, f.format, f.json, quiet)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			s := handlerServer(b, be, func(c *engine.Ctx) {
				c.SetContentType("application/json")
				c.WriteString(`{"ok":true}`)   //nolint:errcheck
				l.Observe(c, time.Millisecond) // warm the shard's buffers
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					l.Observe(c, 1234*time.Microsecond)
				}
				b.StopTimer()
			})
			if err := exchangeOK(s.Addr, benchRequest); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// quiet drops the drop warnings a loaded machine may cause mid-benchmark.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func exchangeOK(addr, raw string) error { return exchange(addr, raw, 10*time.Minute) }

// BenchmarkRequest measures whole requests over loopback, pipelined 32 at
// a time, with the access log off and on: the difference is what logging
// costs per request, end to end.
func BenchmarkRequest(b *testing.B) {
	be := enginetest.Backends(b)[0]
	for _, mode := range []string{"log-off", "log-on", "log-on-json"} {
		b.Run(mode, func(b *testing.B) {
			var obs engine.Observer
			if mode != "log-off" {
				l, err := NewWriter(io.Discard, DefaultFormat, mode == "log-on-json", quiet)
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				obs = l
			}
			h := engine.HandlerFunc(func(c *engine.Ctx) { c.WriteString("hello") }) //nolint:errcheck
			cfg := engine.Config{Router: enginetest.Router(b, &engine.Route{Path: "/", Handler: h}), Loops: 1, Observer: obs}
			s := enginetest.Start(b, be, cfg)
			c := s.Dial(b)
			pipelined(b, c, strings.Replace(benchRequest, "/api/v1/items", "/", 1), 32)
		})
	}
}

// pipelined sends b.N copies of req, depth at a time, and reads the
// responses, whose size it learns from the first one.
func pipelined(b *testing.B, c net.Conn, req string, depth int) {
	b.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	n, err := c.Read(buf)
	if err != nil {
		b.Fatal(err)
	}
	respLen := n // one small response arrives in one read on loopback
	batch := []byte(strings.Repeat(req, depth))
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += depth {
		k := min(depth, b.N-sent)
		if _, err := c.Write(batch[:k*len(req)]); err != nil {
			b.Fatal(err)
		}
		want := k * respLen
		for got := 0; got < want; {
			c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
			m, err := c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			got += m
		}
	}
}
