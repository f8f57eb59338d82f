package engine

import (
	"strings"
	"testing"
	"time"
)

// proxyEngine is a one-loop engine with proxy_protocol auto, the memConn's
// peer (127.0.0.1) allowed, serving plaintext at /plaintext.
func proxyEngine(tb testing.TB) *Engine {
	tb.Helper()
	pp, err := ParseProxyProtocol("auto", []string{"127.0.0.1"})
	if err != nil {
		tb.Fatal(err)
	}
	return newTestEngine(tb, Config{ServerHeader: "asyncd", ProxyProtocol: pp},
		&Route{Path: "/plaintext", Handler: HandlerFunc(plaintext)})
}

var plainReq = []byte("GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")

// TestProxyHeaderIncremental feeds a header and a request one byte more
// at a time, as a backend presents input that arrives in pieces: nothing
// is consumed until the header is whole, then the header and the request
// are consumed at once and the address is the header's.
func TestProxyHeaderIncremental(t *testing.T) {
	hdr := "PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\n"
	in := []byte(hdr + string(plainReq))
	e := proxyEngine(t)
	m := &memConn{}
	e.OnOpen(m)
	for n := 1; n < len(hdr); n++ {
		if got := e.OnRead(m, in[:n]); got != 0 {
			t.Fatalf("%d bytes of the header: consumed %d", n, got)
		}
		if len(m.out) != 0 || m.closed {
			t.Fatalf("%d bytes: answered %q", n, m.out)
		}
	}
	if got := e.OnRead(m, in); got != len(in) {
		t.Fatalf("whole input: consumed %d of %d", got, len(in))
	}
	if !strings.HasPrefix(string(m.out), "HTTP/1.1 200 ") {
		t.Fatalf("response %q", m.out)
	}
	c := m.ctx.(*conn)
	if got := c.lc.RemoteAddr().String(); got != "203.0.113.7:51000" {
		t.Fatalf("remote %s", got)
	}
	if got := c.lc.LocalAddr().String(); got != "198.51.100.1:443" {
		t.Fatalf("local %s", got)
	}
	// A second header on the same connection is an ordinary bad request.
	m.out = m.out[:0]
	e.OnRead(m, []byte(hdr))
	if !strings.HasPrefix(string(m.out), "HTTP/1.1 400 ") || !m.closed {
		t.Fatalf("second header: %q closed=%v", m.out, m.closed)
	}
}

// BenchmarkPlaintextProxied serves requests on a connection that began
// with a PROXY header: after the header the hot path is the same, and must
// report 0 allocs/op.
func BenchmarkPlaintextProxied(b *testing.B) {
	e := proxyEngine(b)
	m := &memConn{}
	e.OnOpen(m)
	e.OnTick(0, time.Now())
	hdr := []byte("PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\n")
	if e.OnRead(m, hdr) != len(hdr) {
		b.Fatal("header not consumed")
	}
	b.SetBytes(int64(len(plainReq)))
	b.ReportAllocs()
	for b.Loop() {
		m.out = m.out[:0]
		if e.OnRead(m, plainReq) != len(plainReq) {
			b.Fatal("not consumed")
		}
	}
}
