package engine_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// Side-by-side tests of the net/http adapter: the same http.Handler runs
// under net/http's own server and under asyncd (every backend, off the
// loop), each on a real socket, and what a client or the handler observes
// is compared.

// paritySrv is one server running the handler under test.
type paritySrv struct {
	name string
	addr string
}

// parityServers starts h under net/http and under asyncd with route's
// settings (its Path and Handler are set here), off the loop (blocking),
// as worker_class async runs it.
func parityServers(t *testing.T, h http.Handler, route engine.Route, mod func(*engine.Config)) []paritySrv {
	return parityServersOn(t, h, route, mod, false)
}

// parityServersOn is parityServers, with also asyncd running h on the
// loop (worker_class sync) when inline is set.
func parityServersOn(t *testing.T, h http.Handler, route engine.Route, mod func(*engine.Config), inline bool) []paritySrv {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	out := []paritySrv{{"net/http", ts.Listener.Addr().String()}}
	for _, b := range enginetest.Backends(t) {
		for _, blocking := range []bool{true, false} {
			if !blocking && !inline {
				continue
			}
			out = append(out, startParity(t, b, h, route, mod, blocking))
		}
	}
	return out
}

// startParity runs h under asyncd on backend b.
func startParity(t *testing.T, b loop.Backend, h http.Handler, route engine.Route, mod func(*engine.Config), blocking bool) paritySrv {
	r := route
	r.Path, r.Handler, r.Blocking = "/", engine.HTTPHandler(h), blocking
	cfg := engine.Config{Router: enginetest.Router(t, &r), Loops: 1, Executor: goExec{},
		KeepAlive: 5 * time.Second, HeaderTimeout: 5 * time.Second, BodyTimeout: 5 * time.Second}
	cfg.Limits.MaxBodySize = 1 << 20
	if mod != nil {
		mod(&cfg)
	}
	s := enginetest.Start(t, b, cfg)
	name := "asyncd/" + b.Name()
	if !blocking {
		name += "/on-loop"
	}
	return paritySrv{name, s.Addr}
}

// parityExchange sends raw on a new connection and returns everything the
// server sent until it closed the connection or went quiet.
func parityExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return string(got)
		}
	}
}

// sameAsNetHTTP runs observe against every server and reports where
// asyncd's observation differs from net/http's (srvs[0]).
func sameAsNetHTTP(t *testing.T, srvs []paritySrv, observe func(s paritySrv) string) {
	t.Helper()
	want := observe(srvs[0])
	for _, s := range srvs[1:] {
		if got := observe(s); got != want {
			t.Errorf("%s: %s\n  net/http: %s", s.name, got, want)
		}
	}
}

// dialGet sends a GET for path on a new connection (closed when the test
// ends) and returns its reader.
func dialGet(t *testing.T, addr, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
	return c, bufio.NewReader(c)
}

// bodyOf returns the body of the one response in raw, or raw itself.
func bodyOf(raw string) string {
	if _, b, ok := strings.Cut(raw, "\r\n\r\n"); ok {
		return b
	}
	return raw
}

// describeRequest is what a handler sees of its request, as one line; the
// server's own address reads "SERVER".
func describeRequest(r *http.Request) string {
	body, err := io.ReadAll(r.Body)
	ap, perr := netip.ParseAddrPort(r.RemoteAddr)
	remote := "unparsable " + r.RemoteAddr
	if perr == nil {
		remote = ap.Addr().String() + ":port"
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	keys := make([]string, 0, len(r.Header))
	for k, v := range r.Header {
		keys = append(keys, k+"="+strings.Join(v, ","))
	}
	slices.Sort(keys)
	return fmt.Sprintf("header=%v method=%s uri=%s url=%s path=%s host=%s proto=%s %d.%d close=%v cl=%d te=%v nobody=%v body=%q/%v trailer=%v tls=%v remote=%s local=%T server=%v",
		keys, r.Method, r.RequestURI, r.URL.String(), r.URL.Path, r.Host, r.Proto, r.ProtoMajor, r.ProtoMinor, r.Close,
		r.ContentLength, r.TransferEncoding, r.Body == http.NoBody, body, err, r.Trailer, r.TLS != nil,
		remote, local, srv != nil)
}

// TestParityRequest compares the request a handler sees: framing of
// bodiless, empty, sized and chunked requests (ContentLength, Body ==
// http.NoBody), RequestURI, Proto, URL, Host, RemoteAddr's form and the
// server's context values.
func TestParityRequest(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, describeRequest(r))
	})
	srvs := parityServersOn(t, h, engine.Route{}, nil, true)
	cases := []struct{ name, raw string }{
		{"GET without body", "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"},
		{"GET with Content-Length 0", "GET /a HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"POST sized", "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"},
		{"POST chunked with trailer", "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n"},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\nHost: h\r\n\r\n"},
		{"absolute form", "GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := bodyOf(parityExchange(t, srvs[0].addr, tc.raw))
			if !strings.HasPrefix(want, "header=") {
				t.Fatalf("net/http answered %q", want)
			}
			for _, s := range srvs[1:] {
				if got := bodyOf(parityExchange(t, s.addr, tc.raw)); got != want {
					t.Errorf("%s sees\n  %s\nnet/http sees\n  %s", s.name, got, want)
				}
			}
		})
	}
}

// TestParityURLBehindProxy: a trusted proxy's X-Forwarded-Proto leaves
// r.URL the request target, as net/http's server does (it was
// "https:///path": a scheme with no host); engine.RequestScheme has the
// verdict.
func TestParityURLBehindProxy(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Scheme", engine.RequestScheme(r))
		fmt.Fprintf(w, "url=%s scheme=%q host=%q xfp=%q", r.URL.String(), r.URL.Scheme, r.URL.Host, r.Header.Get("X-Forwarded-Proto"))
	})
	p, err := engine.ParseProxies([]string{"127.0.0.1"}, gunicornSchemeHeaders)
	if err != nil {
		t.Fatal(err)
	}
	srvs := parityServersOn(t, h, engine.Route{}, func(c *engine.Config) { c.Proxies = &p }, true)
	raw := "GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
	want := parityExchange(t, srvs[0].addr, raw)
	if !strings.Contains(want, "X-Scheme: http\r\n") {
		t.Errorf("net/http: RequestScheme is not http: %q", want)
	}
	for _, s := range srvs[1:] {
		got := parityExchange(t, s.addr, raw)
		if bodyOf(got) != bodyOf(want) {
			t.Errorf("%s: %s; net/http: %s", s.name, bodyOf(got), bodyOf(want))
		}
		if !strings.Contains(got, "X-Scheme: https\r\n") {
			t.Errorf("%s: RequestScheme is not https behind the trusted proxy: %q", s.name, got)
		}
	}
}

// TestParityWriteAfterClientLeft: a write to a client that left fails
// with an error matching syscall.EPIPE, as net/http's does.
func TestParityWriteAfterClientLeft(t *testing.T) {
	result := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		closed := w.(http.CloseNotifier).CloseNotify() //nolint:staticcheck // CloseNotify is part of the contract checked
		io.WriteString(w, "x")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		notified := false
		select {
		case notified = <-closed:
		case <-time.After(5 * time.Second):
		}
		var err error
		for i := 0; i < 1000 && err == nil; i++ {
			if _, err = w.Write(make([]byte, 64<<10)); err == nil {
				err = http.NewResponseController(w).Flush()
			}
			time.Sleep(time.Millisecond)
		}
		result <- fmt.Sprintf("ctx=%v closenotify=%v epipe=%v", r.Context().Err(), notified, errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed))
	})
	srvs := parityServers(t, h, engine.Route{}, nil)
	var want string
	for i, s := range srvs {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		c.Read(make([]byte, 512))
		c.Close()
		var got string
		select {
		case got = <-result:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: handler never finished", s.name)
		}
		if i == 0 {
			want = got
			if want != "ctx=context canceled closenotify=true epipe=true" {
				t.Fatalf("net/http: %s", want)
			}
		} else if got != want {
			t.Errorf("%s: %s; net/http: %s", s.name, got, want)
		}
	}
}

// TestParityTrailers: response trailers, declared in the Trailer header
// or set with http.TrailerPrefix, reach a net/http client's resp.Trailer,
// for a buffered response and a flushed one.
func TestParityTrailers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/declared", "/declared-flushed":
			w.Header().Set("Trailer", "X-Sum, X-Count")
			w.WriteHeader(200)
			io.WriteString(w, "body")
			if r.URL.Path == "/declared-flushed" {
				w.(http.Flusher).Flush()
				io.WriteString(w, "more")
			}
			w.Header().Set("X-Sum", "42")
			w.Header().Set("X-Count", "2")
		case "/prefix", "/prefix-flushed":
			io.WriteString(w, "body")
			if r.URL.Path == "/prefix-flushed" {
				w.(http.Flusher).Flush()
			}
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		case "/sized":
			w.Header().Set("Trailer", "X-Sum")
			w.Header().Set("Content-Length", "4")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "1")
		}
	})
	srvs := parityServersOn(t, h, engine.Route{}, nil, true)
	for _, path := range []string{"/declared", "/declared-flushed", "/prefix", "/prefix-flushed", "/sized"} {
		t.Run(path, func(t *testing.T) {
			sameAsNetHTTP(t, srvs, func(s paritySrv) string {
				resp, err := http.Get("http://" + s.addr + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return fmt.Sprintf("status=%d body=%s cl=%d te=%v trailer=%v header-trailer=%q", resp.StatusCode, b,
					resp.ContentLength, resp.TransferEncoding, resp.Trailer, resp.Header.Get("Trailer"))
			})
		})
	}
}

// TestParityResponseControllerNoops: clearing the deadlines and enabling
// full duplex succeed (common SSE code gives up when SetWriteDeadline
// fails).
func TestParityResponseControllerNoops(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		fmt.Fprintf(w, "write=%v read=%v duplex=%v", rc.SetWriteDeadline(time.Time{}), rc.SetReadDeadline(time.Time{}), rc.EnableFullDuplex())
	})
	srvs := parityServersOn(t, h, engine.Route{}, nil, true)
	for _, s := range srvs {
		resp, err := http.Get("http://" + s.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "write=<nil> read=<nil> duplex=<nil>" {
			t.Errorf("%s: %s", s.name, b)
		}
	}
}

// TestParityWriteDeadline: a stream whose client stops reading fails its
// write once the write deadline passes, with an error matching
// os.ErrDeadlineExceeded, and the client sees the response cut short.
func TestParityWriteDeadline(t *testing.T) {
	result := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		var err error
		for i := 0; i < 100000 && err == nil; i++ {
			if _, err = w.Write(make([]byte, 64<<10)); err == nil {
				err = rc.Flush()
			}
		}
		result <- fmt.Sprintf("deadline=%v", errors.Is(err, os.ErrDeadlineExceeded))
	})
	srvs := parityServers(t, h, engine.Route{}, nil)
	for _, s := range srvs {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n") // and read nothing
		select {
		case got := <-result:
			if got != "deadline=true" {
				t.Errorf("%s: %s", s.name, got)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s: the write never failed", s.name)
		}
		// The response is cut: reading on never finds its end.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			t.Errorf("%s: after %d bytes: %v (want the connection closed)", s.name, n, err)
		}
		c.Close()
	}
}

// streamRoute is a route that hands the handler its body as it arrives
// (request_buffering: false); net/http always does.
var streamRoute = engine.Route{StreamBody: true}

// TestParityRequestBodyAsItArrives: with request_buffering: false the
// handler reads the first part of a small body before the client sends
// the rest, sized or chunked; and a read waiting past SetReadDeadline
// fails with os.ErrDeadlineExceeded.
func TestParityRequestBodyAsItArrives(t *testing.T) {
	first := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		n, err := io.ReadFull(r.Body, buf)
		first <- string(buf[:n])
		if err != nil {
			fmt.Fprintf(w, "first read: %v", err)
			return
		}
		if r.URL.Path == "/deadline" {
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			_, err := r.Body.Read(buf)
			fmt.Fprintf(w, "deadline=%v", errors.Is(err, os.ErrDeadlineExceeded))
			return
		}
		rest, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "first=%s rest=%s err=%v", buf, rest, err)
	})
	srvs := parityServers(t, h, streamRoute, nil)
	cases := []struct{ name, head, part1, part2, want string }{
		{"sized", "POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nConnection: close\r\n\r\n", "hello", "world", "first=hello rest=world err=<nil>"},
		{"chunked", "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", "5\r\nhello\r\n", "5\r\nworld\r\n0\r\n\r\n", "first=hello rest=world err=<nil>"},
		{"read deadline", "POST /deadline HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nConnection: close\r\n\r\n", "hello", "", "deadline=true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range srvs {
				c, err := net.Dial("tcp", s.addr)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, tc.head+tc.part1)
				select {
				case got := <-first:
					if got != "hello" {
						t.Errorf("%s: first read %q", s.name, got)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%s: the handler did not see the first part before the rest was sent", s.name)
				}
				if tc.part2 != "" {
					io.WriteString(c, tc.part2)
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				b, _ := io.ReadAll(resp.Body)
				if string(b) != tc.want {
					t.Errorf("%s: %q, want %q", s.name, b, tc.want)
				}
				c.Close()
			}
		})
	}
}

// TestParityFullDuplex: after EnableFullDuplex a handler echoes each line
// of a chunked body as it arrives, its response interleaved with the
// request (request_buffering: false, as a body still arriving needs).
func TestParityFullDuplex(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(200)
		rc.Flush()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			fmt.Fprintf(w, "echo:%s\n", sc.Text())
			rc.Flush()
		}
	})
	srvs := parityServers(t, h, streamRoute, nil)
	for _, s := range srvs {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		lines := bufio.NewReader(resp.Body)
		for _, word := range []string{"one", "two", "three"} {
			fmt.Fprintf(c, "%x\r\n%s\n\r\n", len(word)+1, word)
			got, err := lines.ReadString('\n')
			if err != nil || got != "echo:"+word+"\n" {
				t.Fatalf("%s: got %q, %v after sending %q", s.name, got, err, word)
			}
		}
		io.WriteString(c, "0\r\n\r\n")
		if rest, err := io.ReadAll(lines); err != nil || len(rest) != 0 {
			t.Errorf("%s: end of response: %q, %v", s.name, rest, err)
		}
		c.Close()
	}
}

// TestParityConnectionHandling compares Expect: 100-continue, a handler's
// "Connection: close", MaxBytesReader and Hijack as a client sees them.
func TestParityConnectionHandling(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "got=%s", b)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/ignore":
			io.WriteString(w, "not read")
		case "/limit":
			_, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4))
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			}
		case "/hijack":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nraw:%d\n", brw.Reader.Buffered())
			brw.Flush()
			conn.Close()
		}
	})
	srvs := parityServers(t, h, engine.Route{}, nil)
	get := func(t *testing.T, s paritySrv, raw string, expect bool, limit int) []outcome {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		if expect {
			head, body, _ := strings.Cut(raw, "\r\n\r\n")
			io.WriteString(c, head+"\r\n\r\n")
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			br.ReadString('\n') // the blank line
			io.WriteString(c, body)
			raw = strings.TrimSpace(line)
			var out []outcome
			out = append(out, outcome{status: raw})
			return append(out, readAll(t, br, limit)...)
		}
		io.WriteString(c, raw)
		return readAll(t, br, limit)
	}
	cases := []struct {
		name, raw string
		expect    bool
		answer    bool // compare the answer only: net/http lingers for the body after it
	}{
		{"100-continue", "POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", true, false},
		{"100-continue never asked for", "POST /ignore HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", false, true},
		{"handler says close", "GET /close HTTP/1.1\r\nHost: h\r\n\r\nGET /close HTTP/1.1\r\nHost: h\r\n\r\n", false, false},
		{"MaxBytesReader", "POST /limit HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789", false, false},
		{"hijack", "GET /hijack HTTP/1.1\r\nHost: h\r\n\r\n", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := func(s paritySrv) string {
				limit := 0
				if tc.answer {
					limit = 1
				}
				return fmt.Sprint(get(t, s, tc.raw, tc.expect, limit))
			}
			want := seen(srvs[0])
			for _, s := range srvs[1:] {
				if got := seen(s); got != want {
					t.Errorf("%s: %s\n  net/http: %s", s.name, got, want)
				}
			}
		})
	}
}

// outcome is one response as a client sees it.
type outcome struct{ status, body, connection string }

// readAll reads responses until the connection closes, and says how it
// ended: "closed", or "open" when the server neither answered nor closed
// within the connection's deadline; with a limit, only that many responses.
func readAll(t *testing.T, br *bufio.Reader, limit int) (out []outcome) {
	for limit == 0 || len(out) < limit {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			end := "closed"
			if errors.Is(err, os.ErrDeadlineExceeded) {
				end = "open"
			}
			return append(out, outcome{status: end})
		}
		b, _ := io.ReadAll(resp.Body)
		conn := "keep-alive"
		if resp.Close {
			conn = "close"
		}
		out = append(out, outcome{resp.Status, string(b), conn})
	}
	return out
}

// TestParityAbortHandler: panic(http.ErrAbortHandler) before or after the
// response began leaves the client without a complete response and with
// the connection closed, as net/http does. (What arrives before the close
// differs: asyncd sends what the handler wrote, cut short; net/http drops
// what it still buffered. docs/design.md, "Panics and aborts".)
func TestParityAbortHandler(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sized":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "0123456789")
		case "/chunked":
			io.WriteString(w, "0123456789")
		case "/flushed":
			io.WriteString(w, "0123456789")
			w.(http.Flusher).Flush()
		}
		panic(http.ErrAbortHandler)
	})
	srvs := parityServersOn(t, h, engine.Route{}, nil, true)
	for _, path := range []string{"/first", "/sized", "/chunked", "/flushed"} {
		t.Run(path, func(t *testing.T) {
			for _, s := range srvs {
				_, br := dialGet(t, s.addr, path)
				complete := false
				if resp, err := http.ReadResponse(br, nil); err == nil {
					_, err = io.ReadAll(resp.Body)
					complete = err == nil
				}
				_, err := br.ReadByte()
				if complete || err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("%s: complete response %v, then %v (want none, then the connection closed)", s.name, complete, err)
				}
			}
		})
	}
}

// TestParityBodyNotAllowed: a write to a 204 or 304 response fails with
// http.ErrBodyNotAllowed; one to a HEAD response succeeds, and sets the
// Content-Length a GET would have. The client sees no body either way.
func TestParityBodyNotAllowed(t *testing.T) {
	written := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		}
		n, err := io.WriteString(w, "hello")
		written <- fmt.Sprintf("n=%d err=%v", n, err)
	})
	srvs := parityServersOn(t, h, engine.Route{}, nil, true)
	for _, tc := range []struct{ method, path string }{{"GET", "/204"}, {"GET", "/304"}, {"HEAD", "/head"}} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			sameAsNetHTTP(t, srvs, func(s paritySrv) string {
				req, _ := http.NewRequest(tc.method, "http://"+s.addr+tc.path, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return fmt.Sprintf("status=%d cl=%d body=%q handler: %s", resp.StatusCode, resp.ContentLength, b, <-written)
			})
		})
	}
}

// TestParityBodyReadAfterClose: a read of a closed request body fails
// with http.ErrBodyReadAfterClose, sized or chunked.
func TestParityBodyReadAfterClose(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := make([]byte, 2)
		n, err := io.ReadFull(r.Body, first)
		cerr := r.Body.Close()
		_, rerr := r.Body.Read(make([]byte, 1))
		fmt.Fprintf(w, "first=%q/%v close=%v then=%v", first[:n], err, cerr, rerr)
	})
	srvs := parityServersOn(t, h, engine.Route{}, nil, true)
	for _, raw := range []string{
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
	} {
		want := bodyOf(parityExchange(t, srvs[0].addr, raw))
		for _, s := range srvs[1:] {
			if got := bodyOf(parityExchange(t, s.addr, raw)); got != want {
				t.Errorf("%s: %s\n  net/http: %s", s.name, got, want)
			}
		}
	}
}

// TestParityRequestTrailer: a chunked request's declared trailer names
// are in r.Trailer before the body is read, the Trailer field leaves
// r.Header, and the values arrive once the body was read to its end, for
// a body streamed as it arrives (request_buffering: false) and one
// buffered whole.
func TestParityRequestTrailer(t *testing.T) {
	first := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before := fmt.Sprint(r.Trailer)
		buf := make([]byte, 3)
		_, err := io.ReadFull(r.Body, buf)
		first <- struct{}{}
		rest, err2 := io.ReadAll(r.Body)
		fmt.Fprintf(w, "before=%s header=%q body=%s%s/%v/%v after=%v", before, r.Header.Values("Trailer"), buf, rest, err, err2, r.Trailer)
	})
	head := "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n"
	const part1, part2 = "3\r\nabc\r\n", "3\r\ndef\r\n0\r\nX-Sum: 9\r\nX-Extra: 1\r\n\r\n"
	for _, tc := range []struct {
		name  string
		route engine.Route
	}{{"streamed", streamRoute}, {"buffered", engine.Route{}}} {
		t.Run(tc.name, func(t *testing.T) {
			srvs := parityServersOn(t, h, tc.route, nil, true)
			var want string
			for i, s := range srvs {
				c, err := net.Dial("tcp", s.addr)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if tc.route.StreamBody {
					io.WriteString(c, head+part1)
					<-first
					io.WriteString(c, part2)
				} else {
					io.WriteString(c, head+part1+part2)
					<-first
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				b, _ := io.ReadAll(resp.Body)
				c.Close()
				if i == 0 {
					want = string(b)
				} else if string(b) != want {
					t.Errorf("%s: %s\n  net/http: %s", s.name, b, want)
				}
			}
		})
	}
}

// TestParityDeclaredContentLength: a handler that declares a
// Content-Length and writes more gets http.ErrContentLength for the
// excess; one that writes less leaves the client short, and the
// connection closes.
func TestParityDeclaredContentLength(t *testing.T) {
	written := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "6")
		var n int
		var err error
		switch r.URL.Path {
		case "/over":
			n, err = io.WriteString(w, "0123456789")
		case "/exact":
			n, err = io.WriteString(w, "012345")
		case "/under":
			n, err = io.WriteString(w, "012")
		}
		written <- fmt.Sprintf("n=%d err=%v", n, err)
	})
	srvs := parityServersOn(t, h, engine.Route{}, nil, true)
	for _, path := range []string{"/over", "/exact", "/under"} {
		t.Run(path, func(t *testing.T) {
			sameAsNetHTTP(t, srvs, func(s paritySrv) string {
				c, br := dialGet(t, s.addr, path)
				got := "no response"
				if resp, err := http.ReadResponse(br, nil); err == nil {
					b, err := io.ReadAll(resp.Body)
					got = fmt.Sprintf("cl=%d body=%q err=%v", resp.ContentLength, b, err)
				}
				c.SetReadDeadline(time.Now().Add(time.Second)) // kept open: both wait for a next request
				then := "closed"
				if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
					then = "open"
				}
				return got + fmt.Sprintf(" then=%s handler: %s", then, <-written)
			})
		})
	}
}

// TestParitySuperfluousWriteHeader: a second WriteHeader is ignored and
// logged with the handler's call site, as net/http's server logs it.
func TestParitySuperfluousWriteHeader(t *testing.T) {
	var nethttpLog, asyncdLog logBuffer
	t.Cleanup(engine.SetAdapterErrorLog(log.New(&asyncdLog, "", 0)))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		w.WriteHeader(http.StatusInternalServerError)
	})
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(&nethttpLog, "", 0)
	ts.Start()
	t.Cleanup(ts.Close)
	srvs := []paritySrv{{"net/http", ts.Listener.Addr().String()}}
	for _, b := range enginetest.Backends(t) {
		srvs = append(srvs, startParity(t, b, h, engine.Route{}, nil, true), startParity(t, b, h, engine.Route{}, nil, false))
	}
	const what = "http: superfluous response.WriteHeader call from "
	var site string
	for i, s := range srvs {
		_, br := dialGet(t, s.addr, "/")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("%s: status %d", s.name, resp.StatusCode)
		}
		if i == 0 {
			line := strings.TrimSpace(nethttpLog.text())
			if !strings.HasPrefix(line, what) {
				t.Fatalf("net/http logged %q", line)
			}
			site = strings.TrimPrefix(line, what)
			continue
		}
		// One line more for each asyncd server.
		if !enginetest.Eventually(5*time.Second, func() bool { return strings.Count(asyncdLog.text(), what+site) == i }) {
			t.Errorf("%s: the error log has not %q: %s", s.name, what+site, asyncdLog.text())
		}
	}
}
