package engine_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// observed is what a recording Observer copied out of one Ctx (the Ctx
// itself is only valid during Observe).
type observed struct {
	method, target, proto, path, query string
	ua, remote                         string
	status                             int
	body, bytes                        int64
	routed                             bool
	took                               time.Duration
}

func (o observed) String() string {
	return fmt.Sprintf("%q %q %q %d body=%d bytes=%d ua=%q remote=%s routed=%v took=%s",
		o.method, o.target, o.proto, o.status, o.body, o.bytes, o.ua, o.remote, o.routed, o.took)
}

// recorder is an engine.Observer that keeps a copy of every observation.
type recorder struct {
	mu  sync.Mutex
	got []observed
}

func (r *recorder) Observe(c *engine.Ctx, took time.Duration) {
	o := observed{
		method: string(c.Method()), target: string(c.Target()), proto: c.Proto(),
		path: string(c.Path()), query: string(c.Query()), ua: string(c.Header("User-Agent")),
		status: c.Status(), body: c.BodyBytesSent(), bytes: c.BytesSent(),
		routed: c.Route() != nil, took: took,
	}
	if ap := c.RemoteAddr(); ap.IsValid() {
		o.remote = ap.Addr().String()
	}
	r.mu.Lock()
	r.got = append(r.got, o)
	r.mu.Unlock()
}

// take waits until at least n observations arrived, waits a little more
// to catch a duplicate, and returns them all, emptying the recorder.
func (r *recorder) take(t *testing.T, n int) []observed {
	t.Helper()
	count := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.got)
	}
	if !enginetest.Eventually(5*time.Second, func() bool { return count() >= n }) {
		t.Fatalf("%d observations, want %d", count(), n)
	}
	time.Sleep(50 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// one takes exactly one observation.
func (r *recorder) one(t *testing.T) observed {
	t.Helper()
	got := r.take(t, 1)
	if len(got) != 1 {
		t.Fatalf("%d observations, want exactly 1: %v", len(got), got)
	}
	return got[0]
}

// waitCancelled blocks until the request is cancelled (the client left,
// request_timeout) or 20 s pass.
func waitCancelled(c *engine.Ctx) {
	select {
	case <-c.Context().Done():
	case <-time.After(20 * time.Second):
	}
}

// flushThenWait streams "part1;", then waits until the request is
// cancelled: its response is cut short after its head went out.
var flushThenWait = engine.HandlerFunc(func(c *engine.Ctx) {
	c.WriteString("part1;") //nolint:errcheck
	if c.Flush() != nil {
		return
	}
	waitCancelled(c)
	c.WriteString("never") //nolint:errcheck
})

// flood streams 32 KiB chunks until a write fails: a response without
// end, for a client that stops reading.
var flood = engine.HandlerFunc(func(c *engine.Ctx) {
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for {
		if _, err := c.Write(chunk); err != nil || c.Flush() != nil {
			return
		}
	}
})

// observeRoutes: /hello (GET only), /echo (any method, reads its body),
// /stream (three flushed parts), /slow (off the loop until cancelled),
// /cut (flushThenWait) and /flood (flood).
func observeRoutes(t *testing.T) *engine.Router {
	return enginetest.Router(t,
		&engine.Route{Path: "/hello", Methods: []string{"GET"}, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			c.WriteString("Hello, World!") //nolint:errcheck
		})},
		&engine.Route{Path: "/echo", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			c.Write(c.Body()) //nolint:errcheck
		})},
		&engine.Route{Path: "/stream", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			for _, part := range []string{"one;", "two;", "three;"} {
				c.WriteString(part) //nolint:errcheck
				if c.Flush() != nil {
					return
				}
			}
		})},
		&engine.Route{Path: "/slow", Blocking: true, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			waitCancelled(c)
			c.WriteString("late") //nolint:errcheck
		})},
		&engine.Route{Path: "/cut", Blocking: true, Handler: flushThenWait},
		&engine.Route{Path: "/flood", Blocking: true, Handler: flood},
	)
}

func startObserved(t *testing.T, b loop.Backend, mod func(*engine.Config)) (*enginetest.Server, *recorder) {
	rec := &recorder{}
	cfg := engine.Config{Router: observeRoutes(t), Loops: 2, Executor: goExec{}, Observer: rec,
		KeepAlive: 5 * time.Second, HeaderTimeout: 5 * time.Second, BodyTimeout: 5 * time.Second}
	cfg.Limits.MaxBodySize = 1 << 10
	if mod != nil {
		mod(&cfg)
	}
	return enginetest.Start(t, b, cfg), rec
}

// rawExchange sends raw on a new connection and reads everything until the
// server closes it: the bytes, and the response parsed from them.
func rawExchange(t *testing.T, s *enginetest.Server, raw string) ([]byte, *http.Response, []byte) {
	t.Helper()
	c := s.Dial(t)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	wire, err := io.ReadAll(c)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("%q: %v after %q", raw, err, wire)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(wire)), nil)
	if err != nil {
		t.Fatalf("%q: response %q: %v", raw, wire, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return wire, resp, body
}

// TestObserveEngineAnswers: every answer the engine gives itself (router,
// parser, framing) is observed exactly once, with what is known of the
// request: its request line only if the parser accepted it, the fields
// parsed before a bad one, the status, the body and wire bytes sent.
func TestObserveEngineAnswers(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, rec := startObserved(t, b, nil)
		const close = "Connection: close\r\n"
		cases := []struct {
			name, raw string
			status    int
			// the request line as observed: method, target, proto; "" when
			// it did not parse
			method, target, proto string
			ua                    string
		}{
			{"404", "GET /nope?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua/1\r\n" + close + "\r\n", 404,
				"GET", "/nope?x=1", "HTTP/1.1", "ua/1"},
			{"405", "POST /hello HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n" + close + "\r\n", 405,
				"POST", "/hello", "HTTP/1.1", ""},
			{"400 malformed request line", "GARBAGE\r\n\r\n", 400, "", "", "", ""},
			{"400 request line with two spaces", "GET  /hello HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", "", "", ""},
			{"400 target refused after the line split", "GET /a[b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", "", "", ""},
			{"400 bad header after a good line", "GET /hello?q=2 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua/2\r\n" +
				"Bad Header: x\r\n\r\n", 400, "GET", "/hello?q=2", "HTTP/1.1", "ua/2"},
			{"400 no Host", "GET /hello HTTP/1.1\r\n\r\n", 400, "GET", "/hello", "HTTP/1.1", ""},
			{"413", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4096\r\n\r\n", 413, "POST", "/echo", "HTTP/1.1", ""},
			{"414", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: h\r\n\r\n", 414, "", "", "", ""},
			{"431", "GET /hello HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 9000) + "\r\n\r\n", 431,
				"GET", "/hello", "HTTP/1.1", ""},
			{"501 transfer coding", "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
				"POST", "/echo", "HTTP/1.1", ""},
			{"501 CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501, "CONNECT", "h:443", "HTTP/1.1", ""},
			{"505", "GET /hello HTTP/2.0\r\nHost: h\r\n\r\n", 505, "", "", "", ""},
			{"417", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\n", 417,
				"POST", "/echo", "HTTP/1.1", ""},
			{"400 bad chunk", "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
				"POST", "/echo", "HTTP/1.1", ""},
			{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n" + close + "\r\n", 200, "OPTIONS", "*", "HTTP/1.1", ""},
		}
		// The body's framing broke after the route matched.
		routed := map[string]bool{"400 bad chunk": true}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				wire, resp, body := rawExchange(t, s, tc.raw)
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				o := rec.one(t)
				if o.status != tc.status || o.method != tc.method || o.target != tc.target || o.proto != tc.proto ||
					o.ua != tc.ua || o.remote != "127.0.0.1" || o.routed != routed[tc.name] {
					t.Errorf("observed %v\nwant %q %q %q %d ua=%q remote=127.0.0.1 routed=%v",
						o, tc.method, tc.target, tc.proto, tc.status, tc.ua, routed[tc.name])
				}
				if o.body != int64(len(body)) || o.bytes != int64(len(wire)) {
					t.Errorf("observed body=%d bytes=%d; the client got a %d-byte body in %d bytes",
						o.body, o.bytes, len(body), len(wire))
				}
			})
		}
	})
}

// TestObserveTimeouts: header and body timeouts (408), request_timeout
// (503) and send_timeout (a streamed response cut short) are observed
// exactly once, and
// a connection closed without a response (idle timeout, client EOF, a
// client gone before its answer) is not observed at all.
func TestObserveTimeouts(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out real timeouts, seconds on each backend; make test runs it")
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		const ht, rt, st = 300 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond
		s, rec := startObserved(t, b, func(cfg *engine.Config) {
			cfg.HeaderTimeout, cfg.BodyTimeout, cfg.RequestTimeout, cfg.KeepAlive = ht, ht, rt, ht
			cfg.SendTimeout = st
		})
		check := func(t *testing.T, o observed, method, target string, status int, minTook time.Duration) {
			t.Helper()
			if o.method != method || o.target != target || o.status != status || o.remote != "127.0.0.1" {
				t.Errorf("observed %v, want %q %q %d", o, method, target, status)
			}
			if o.took < minTook {
				t.Errorf("took %s, want at least %s", o.took, minTook)
			}
		}
		t.Run("408 header timeout after the request line", func(t *testing.T) {
			wire, resp, body := rawExchange(t, s, "GET /hello?slow=1 HTTP/1.1\r\nHost: h\r\n")
			if resp.StatusCode != 408 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			o := rec.one(t)
			check(t, o, "GET", "/hello?slow=1", 408, ht/2)
			if o.path != "/hello" || o.query != "slow=1" || o.proto != "HTTP/1.1" {
				t.Errorf("path %q query %q proto %q", o.path, o.query, o.proto)
			}
			if o.body != int64(len(body)) || o.bytes != int64(len(wire)) {
				t.Errorf("body=%d bytes=%d, client got %d in %d", o.body, o.bytes, len(body), len(wire))
			}
		})
		t.Run("408 header timeout inside the request line", func(t *testing.T) {
			if _, resp, _ := rawExchange(t, s, "GET /hel"); resp.StatusCode != 408 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			check(t, rec.one(t), "", "", 408, ht/2)
		})
		t.Run("408 body timeout", func(t *testing.T) {
			raw := "POST /echo HTTP/1.1\r\nHost: h\r\nUser-Agent: slow-body\r\nContent-Length: 10\r\n\r\nabc"
			if _, resp, _ := rawExchange(t, s, raw); resp.StatusCode != 408 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			o := rec.one(t)
			check(t, o, "POST", "/echo", 408, 0)
			if o.ua != "slow-body" || !o.routed {
				t.Errorf("observed %v: want the parsed head's fields and route", o)
			}
		})
		t.Run("503 request timeout", func(t *testing.T) {
			wire, resp, body := rawExchange(t, s, "HEAD /slow HTTP/1.1\r\nHost: h\r\nUser-Agent: ua/503\r\n\r\n")
			if resp.StatusCode != 503 || len(body) != 0 {
				t.Fatalf("status %d, body %q", resp.StatusCode, body)
			}
			o := rec.one(t)
			check(t, o, "HEAD", "/slow", 503, rt/2)
			if o.ua != "ua/503" || o.body != 0 || o.bytes != int64(len(wire)) || !o.routed {
				t.Errorf("observed %v; client got %d bytes", o, len(wire))
			}
		})
		t.Run("streamed response cut by send_timeout", func(t *testing.T) {
			c := s.Dial(t)
			io.WriteString(c, "GET /flood HTTP/1.1\r\nHost: h\r\n\r\n") //nolint:errcheck
			// Read nothing until the server gives up on this client.
			o := rec.one(t)
			c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
			wire, err := io.ReadAll(c)
			if err != nil && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("read: %v", err)
			}
			if !bytes.HasPrefix(wire, []byte("HTTP/1.1 200 ")) || bytes.HasSuffix(wire, []byte("0\r\n\r\n")) {
				t.Fatalf("got %d bytes ending %q: want the head and part of the body, then a close", len(wire), wire[max(0, len(wire)-16):])
			}
			check(t, o, "GET", "/flood", 200, st)
			// What went out includes what was queued for the client when
			// it was dropped: at least what the client got.
			if o.body <= 0 || o.bytes < int64(len(wire)) {
				t.Errorf("observed body=%d bytes=%d, the client got %d bytes", o.body, o.bytes, len(wire))
			}
		})
		t.Run("no response, no observation", func(t *testing.T) {
			c := s.Dial(t)
			c.Close() // client EOF before a byte
			c = s.Dial(t)
			if !enginetest.WaitClosed(c, 5*time.Second) { // idle (keep-alive) timeout
				t.Fatal("idle connection not closed")
			}
			c = s.Dial(t)
			io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n") //nolint:errcheck
			time.Sleep(50 * time.Millisecond)
			c.Close() // gone before its answer
			// A request answered on a connection that then idles out: one.
			c = s.Dial(t)
			io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n") //nolint:errcheck
			if !enginetest.WaitClosed(c, 5*time.Second) {
				t.Fatal("keep-alive connection not closed")
			}
			time.Sleep(rt + ht)
			got := rec.take(t, 1)
			if len(got) != 1 || got[0].target != "/hello" || got[0].status != 200 {
				t.Fatalf("observed %v, want only GET /hello", got)
			}
		})
	})
}

// TestObserveStreamedBytes: a streamed response reports the body bytes it
// sent (chunk framing excluded) and every wire byte, whether it ends
// normally or the client leaves in the middle; pipelined responses each
// report their own bytes.
func TestObserveStreamedBytes(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, offLoop := range []bool{false, true} {
			t.Run(fmt.Sprintf("offloop=%v", offLoop), func(t *testing.T) {
				s, rec := startObserved(t, b, func(cfg *engine.Config) {
					if offLoop {
						cfg.Dispatch = engine.OffLoop
					}
				})
				wire, resp, body := rawExchange(t, s, "GET /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
				if string(body) != "one;two;three;" || resp.TransferEncoding[0] != "chunked" {
					t.Fatalf("body %q, %v", body, resp.TransferEncoding)
				}
				o := rec.one(t)
				if o.status != 200 || o.body != int64(len(body)) || o.bytes != int64(len(wire)) {
					t.Errorf("observed %v; the client got a %d-byte body in %d bytes", o, len(body), len(wire))
				}
				// HTTP/1.0: close-delimited, no framing at all.
				wire, _, body = rawExchange(t, s, "GET /stream HTTP/1.0\r\n\r\n")
				if o := rec.one(t); o.body != int64(len(body)) || o.bytes != int64(len(wire)) || len(body) != 14 {
					t.Errorf("HTTP/1.0: observed %v; the client got a %d-byte body in %d bytes", o, len(body), len(wire))
				}
				// Two pipelined requests: each observation has its own bytes.
				c := s.Dial(t)
				io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n") //nolint:errcheck
				c.SetReadDeadline(time.Now().Add(10 * time.Second))                                                                    //nolint:errcheck
				wire, _ = io.ReadAll(c)
				got := rec.take(t, 2)
				if len(got) != 2 || got[0].bytes+got[1].bytes != int64(len(wire)) || got[0].body != 13 || got[1].body != 13 {
					t.Errorf("pipelined: observed %v; the client got %d bytes", got, len(wire))
				}
			})
		}
		t.Run("client leaves mid-stream", func(t *testing.T) {
			s, rec := startObserved(t, b, nil)
			c := s.Dial(t)
			io.WriteString(c, "GET /cut HTTP/1.1\r\nHost: h\r\nUser-Agent: leaver\r\n\r\n") //nolint:errcheck
			c.SetReadDeadline(time.Now().Add(10 * time.Second))                             //nolint:errcheck
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("head: %v %v", resp, err)
			}
			part := make([]byte, 6)
			if _, err := io.ReadFull(resp.Body, part); err != nil || string(part) != "part1;" {
				t.Fatalf("first part %q: %v", part, err)
			}
			c.Close()
			o := rec.one(t)
			if o.status != 200 || o.target != "/cut" || o.ua != "leaver" || o.body != 6 || !o.routed {
				t.Errorf("observed %v, want GET /cut 200 with 6 body bytes", o)
			}
		})
	})
}

// TestObserveProxyRefusal: a connection refused at the PROXY protocol
// stage is observed once, with no request line and the socket's peer.
func TestObserveProxyRefusal(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		pp, err := engine.ParseProxyProtocol("v1", []string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		s, rec := startObserved(t, b, func(cfg *engine.Config) { cfg.ProxyProtocol = pp })
		for _, raw := range []string{"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n", "PROXY TCP4 1.2.3.4 x\r\n"} {
			wire, resp, body := rawExchange(t, s, raw)
			if resp.StatusCode != 400 {
				t.Fatalf("%q: status %d", raw, resp.StatusCode)
			}
			o := rec.one(t)
			if o.status != 400 || o.method != "" || o.target != "" || o.remote != "127.0.0.1" ||
				o.body != int64(len(body)) || o.bytes != int64(len(wire)) {
				t.Errorf("%q: observed %v", raw, o)
			}
		}
	})
}
