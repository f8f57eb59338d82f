package engine

import (
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
)

// memConn is an in-memory loop.Conn for unit tests and benchmarks: it
// records writes and state changes instead of touching a socket.
type memConn struct {
	ctx     any
	out     []byte
	writes  int
	paused  bool
	resumes int
	closed  bool
	aborted bool
	wakes   atomic.Int32
	pending int // pretend unsent output
	// input pretends bytes wait in the socket, unread (InputPending).
	input bool
}

func (m *memConn) Write(p []byte)             { m.out = append(m.out, p...); m.writes++ }
func (m *memConn) OutboundBuffered() int      { return m.pending }
func (m *memConn) PauseRead()                 { m.paused = true }
func (m *memConn) ResumeRead()                { m.paused = false; m.resumes++ }
func (m *memConn) Close()                     { m.closed = true }
func (m *memConn) Abort()                     { m.closed, m.aborted = true, true }
func (m *memConn) InputPending() bool         { return m.input }
func (m *memConn) Wake() bool                 { m.wakes.Add(1); return !m.closed }
func (m *memConn) SetContext(v any)           { m.ctx = v }
func (m *memConn) Context() any               { return m.ctx }
func (m *memConn) RemoteAddr() netip.AddrPort { return memRemote }
func (m *memConn) LocalAddr() netip.AddrPort  { return memLocal }

var (
	memRemote = netip.MustParseAddrPort("127.0.0.1:40000")
	memLocal  = netip.MustParseAddrPort("127.0.0.1:8000")
)

func (m *memConn) Loop() int { return 0 }
func (m *memConn) Fd() int   { return -1 }
func (m *memConn) Detach() (*os.File, []byte, error) {
	return nil, nil, loop.ErrClosed
}

var _ loop.Conn = (*memConn)(nil)

func newTestEngine(tb testing.TB, cfg Config, routes ...*Route) *Engine {
	tb.Helper()
	r, err := NewRouter(routes)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Router = r
	if cfg.Loops == 0 {
		cfg.Loops = 1
	}
	e, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

var hello = []byte("Hello, World!")

func plaintext(c *Ctx) {
	c.SetContentType("text/plain")
	c.Write(hello) //nolint:errcheck
}

func TestMemPipelineOneWrite(t *testing.T) {
	e := newTestEngine(t, Config{ServerHeader: "asyncd"}, &Route{Path: "/", Handler: HandlerFunc(plaintext)})
	m := &memConn{}
	e.OnOpen(m)
	req := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	in := []byte(req + req + req + req)
	n := e.OnRead(m, in)
	if n != len(in) {
		t.Fatalf("consumed %d of %d", n, len(in))
	}
	if m.writes != 1 {
		t.Fatalf("4 pipelined requests from one read took %d writes, want 1", m.writes)
	}
	if got := countOf(m.out, "HTTP/1.1 200 OK\r\n"); got != 4 {
		t.Fatalf("got %d responses:\n%s", got, m.out)
	}
}

func TestMemPartialHead(t *testing.T) {
	e := newTestEngine(t, Config{}, &Route{Path: "/", Handler: HandlerFunc(plaintext)})
	m := &memConn{}
	e.OnOpen(m)
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n")
	// Feed one byte more each time, as a backend keeping the unconsumed
	// prefix would.
	for i := 1; i < len(req); i++ {
		if n := e.OnRead(m, req[:i]); n != 0 {
			t.Fatalf("consumed %d of an incomplete head of %d bytes", n, i)
		}
	}
	if n := e.OnRead(m, req); n != len(req) {
		t.Fatalf("consumed %d of %d", n, len(req))
	}
	if countOf(m.out, "200 OK") != 1 {
		t.Fatalf("response: %q", m.out)
	}
}

func TestMemBackPressurePauses(t *testing.T) {
	e := newTestEngine(t, Config{OutputBufferLimit: 1024}, &Route{Path: "/", Handler: HandlerFunc(plaintext)})
	m := &memConn{}
	e.OnOpen(m)
	req := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	var in []byte
	for i := 0; i < 100; i++ {
		in = append(in, req...)
	}
	m.pending = 2048 // the client is not reading
	n := e.OnRead(m, in)
	if n != 0 || !m.paused {
		t.Fatalf("with output over the limit the engine consumed %d bytes, paused=%v", n, m.paused)
	}
	m.pending = 0
	e.OnDrained(m)
	if m.paused || m.resumes == 0 {
		t.Fatalf("OnDrained did not resume reading")
	}
}

func countOf(b []byte, s string) int {
	n := 0
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			n++
		}
	}
	return n
}

// BenchmarkPlaintext serves the plaintext route through the engine over an
// in-memory connection: parse, route, handler, serialize. It must report
// 0 allocs/op.
func BenchmarkPlaintext(b *testing.B) {
	e := newTestEngine(b, Config{ServerHeader: "asyncd"}, &Route{Path: "/plaintext", Handler: HandlerFunc(plaintext)})
	m := &memConn{}
	e.OnOpen(m)
	e.OnTick(0, time.Now())
	req := []byte("GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		m.out = m.out[:0]
		if e.OnRead(m, req) != len(req) {
			b.Fatal("not consumed")
		}
	}
}

// BenchmarkPipelined16 serves 16 pipelined requests per read.
func BenchmarkPipelined16(b *testing.B) {
	e := newTestEngine(b, Config{ServerHeader: "asyncd"}, &Route{Path: "/plaintext", Handler: HandlerFunc(plaintext)})
	m := &memConn{}
	e.OnOpen(m)
	one := "GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
	var req []byte
	for i := 0; i < 16; i++ {
		req = append(req, one...)
	}
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		m.out = m.out[:0]
		if e.OnRead(m, req) != len(req) {
			b.Fatal("not consumed")
		}
	}
}

// BenchmarkPipelined16Served is BenchmarkPipelined16 as `asyncd` serves it
// to bench/wrk/pipeline.lua: the default forwarded_allow_ips (127.0.0.1,
// the client's address here) and secure_scheme_headers, and the headers
// that script sends. It must report 0 allocs/op.
func BenchmarkPipelined16Served(b *testing.B) {
	p, err := ParseProxies([]string{"127.0.0.1"}, map[string]string{
		"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"})
	if err != nil {
		b.Fatal(err)
	}
	e := newTestEngine(b, Config{ServerHeader: "asyncd", KeepAlive: 2 * time.Second, Proxies: &p},
		&Route{Path: "/plaintext", Handler: HandlerFunc(plaintext)})
	m := &memConn{}
	e.OnOpen(m)
	e.OnTick(0, time.Now())
	one := "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" +
		"Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n" +
		"Connection: keep-alive\r\n\r\n"
	req := []byte(strings.Repeat(one, 16))
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		m.out = m.out[:0]
		if e.OnRead(m, req) != len(req) {
			b.Fatal("not consumed")
		}
	}
	if countOf(m.out, "200 OK") != 16 {
		b.Fatalf("responses: %q", m.out)
	}
}
