package engine

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// fieldObserver reads what the access log reads of a Ctx, allocating
// nothing, and counts the observations.
type fieldObserver struct {
	n    int
	sink int
}

func (o *fieldObserver) Observe(c *Ctx, took time.Duration) {
	o.n++
	o.sink += len(c.Method()) + len(c.Target()) + len(c.Path()) + len(c.Proto()) + c.Status() +
		int(c.BodyBytesSent()+c.BytesSent()) + len(c.Header("User-Agent")) + int(took) + int(c.RemoteAddr().Port())
}

// refusals are the engine's own refusals of one request, each driven on a
// memConn: parser rejections, a PROXY refusal, a header timeout.
var refusals = []struct {
	name  string
	proxy bool   // the connection must start with a PROXY header
	in    string // what the client sends
	tick  bool   // the answer is a header timeout (OnTick)
}{
	{name: "malformed request line", in: "GARBAGE\r\n\r\n"},
	{name: "bad header after a good line", in: "GET /x?y=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\nBad Header: x\r\n\r\n"},
	{name: "no PROXY header", proxy: true, in: "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "header timeout", in: "GET /x HTTP/1.1\r\nHost: h\r\n", tick: true},
}

// refuse runs one refusal on m's connection, then reopens the connection
// in place (OnOpen would allocate a new conn, which is the accept's cost,
// not the refusal's).
func refuse(e *Engine, m *memConn, in []byte, tick bool, now time.Time) {
	c := m.ctx.(*conn)
	m.out = m.out[:0]
	e.OnRead(m, in)
	if tick {
		c.deadline = now.Add(-time.Millisecond)
		c.l.lastScan = time.Time{}
		e.OnTick(0, now)
	}
	if !m.closed || c.phase != phaseClosing {
		panic("the refusal did not close the connection")
	}
	m.closed = false
	c.phase = phaseIdle
	c.deadline = time.Time{}
	if c.ctx != nil {
		c.ctx.parser.Reset()
	}
	c.proxy = e.proxyOpen(m)
}

func refusalEngine(tb testing.TB, proxy bool, obs Observer) (*Engine, *memConn) {
	cfg := Config{ServerHeader: "asyncd", Observer: obs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if proxy {
		pp, err := ParseProxyProtocol("v1", []string{"127.0.0.1"})
		if err != nil {
			tb.Fatal(err)
		}
		cfg.ProxyProtocol = pp
	}
	e := newTestEngine(tb, cfg, &Route{Path: "/x", Handler: HandlerFunc(plaintext)})
	m := &memConn{}
	e.OnOpen(m)
	return e, m
}

// TestRefusalAllocatesNothing: answering and observing a refused request
// allocates nothing once the loop's error-log budget for the second (10
// lines) is spent, so a flood of bad requests costs no garbage. Each
// refusal is observed exactly once.
func TestRefusalAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop Ctx values: allocation counts mean nothing")
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			obs := &fieldObserver{}
			e, m := refusalEngine(t, r.proxy, obs)
			now := time.Now()
			in := []byte(r.in)
			for i := 0; i < 20; i++ { // spend the log budget
				refuse(e, m, in, r.tick, now)
			}
			if obs.n != 20 {
				t.Fatalf("20 refusals, %d observations", obs.n)
			}
			if a := testing.AllocsPerRun(100, func() { refuse(e, m, in, r.tick, now) }); a != 0 {
				t.Errorf("%v allocations per refusal, want 0", a)
			}
		})
	}
}

// BenchmarkRefusal measures one refusal: parse (or time out), answer,
// observe, close. allocs/op must be 0.
func BenchmarkRefusal(b *testing.B) {
	for _, r := range refusals {
		b.Run(r.name, func(b *testing.B) {
			e, m := refusalEngine(b, r.proxy, &fieldObserver{})
			now := time.Now()
			in := []byte(r.in)
			for i := 0; i < 20; i++ {
				refuse(e, m, in, r.tick, now)
			}
			b.ReportAllocs()
			for b.Loop() {
				refuse(e, m, in, r.tick, now)
			}
		})
	}
}

// TestRouterAnswersAllocateNothing: the router's 404 and 405 and the
// answer to OPTIONS * are observed once each and allocate nothing, as a
// routed request does.
func TestRouterAnswersAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop Ctx values: allocation counts mean nothing")
	}
	for _, in := range []string{
		"GET /nope HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /get HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		obs := &fieldObserver{}
		e := newTestEngine(t, Config{ServerHeader: "asyncd", Observer: obs},
			// Methods whose Allow line is too long for a stack buffer.
			&Route{Path: "/get", Methods: []string{"GET", "PUT", "PATCH", "DELETE", "OPTIONS"}, Handler: HandlerFunc(plaintext)})
		m := &memConn{}
		e.OnOpen(m)
		req := []byte(in)
		serve := func() {
			m.out = m.out[:0]
			if e.OnRead(m, req) != len(req) || m.closed {
				panic("not served on a kept-alive connection")
			}
		}
		serve()
		if a := testing.AllocsPerRun(100, serve); a != 0 {
			t.Errorf("%q: %v allocations per answer, want 0", in, a)
		}
		if obs.n != 102 {
			t.Errorf("%q: %d observations for 102 answers", in, obs.n)
		}
	}
}
