package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/proxy"
)

type goExec struct{}

func (goExec) Submit(_ int, t engine.Task) bool { go t.Run(); return true }

// seen is what the upstream received.
type seen struct {
	Method, Path, RawPath, Query, Host, Body, Proto string
	Header                                          http.Header
	Upstream                                        string
	ContentLength                                   int64
	TransferEncoding                                []string
}

// upstream is an httptest server that echoes the request as JSON and
// counts the connections it accepted.
func upstream(t *testing.T, name string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/slow":
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		case "/teapot":
			w.Header().Set("X-Upstream-Header", "yes")
			w.Header().Set("Connection", "X-Drop-Me")
			w.Header().Set("X-Drop-Me", "hop-by-hop")
			w.WriteHeader(418)
			io.WriteString(w, "short and stout") //nolint:errcheck
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{ //nolint:errcheck
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery, Host: r.Host,
			Body: string(body), Proto: r.Proto, Header: r.Header, Upstream: name,
			ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		})
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// deadAddr returns an address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func build(t *testing.T, path string, opts map[string]any) engine.Handler {
	t.Helper()
	h, err := plugins.Build(plugins.Route{Path: path, Handler: "proxy", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if bh, ok := h.(engine.BlockingHandler); !ok || !bh.Blocking() {
		t.Fatal("the proxy handler must be a BlockingHandler")
	}
	return h
}

func serve(t *testing.T, b loop.Backend, routes ...*engine.Route) *enginetest.Server {
	t.Helper()
	return enginetest.Start(t, b, engine.Config{Router: enginetest.Router(t, routes...), Loops: 2, Executor: goExec{}})
}

func forBackends(t *testing.T, fn func(t *testing.T, b loop.Backend)) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) { fn(t, b) })
	}
}

func decode(t *testing.T, r *enginetest.Response) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal(r.Body, &s); err != nil {
		t.Fatalf("status %d, body %q: %v", r.StatusCode, r.Body, err)
	}
	return s
}

func one(t *testing.T, s *enginetest.Server, raw string) *enginetest.Response {
	t.Helper()
	resps, _ := s.Exchange(t, raw, 1)
	if len(resps) != 1 {
		t.Fatalf("no response to %q", raw)
	}
	return resps[0]
}

func TestForwardsRequest(t *testing.T) {
	up, _ := upstream(t, "a")
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := serve(t, b,
			&engine.Route{Path: "/api/", Handler: build(t, "/api/", map[string]any{"upstream": up.URL + "/base/", "strip_prefix": true})},
			&engine.Route{Path: "/keep/", Handler: build(t, "/keep/", map[string]any{"upstream": up.URL, "preserve_host": true})},
		)
		r := one(t, s, "POST /api/users/a%3Fb?x=1&y=2 HTTP/1.1\r\nHost: public.example\r\nContent-Length: 5\r\n"+
			"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: spoofed\r\nConnection: X-Secret\r\nX-Secret: hop\r\n"+
			"X-Custom: kept\r\nTE: trailers\r\nProxy-Authorization: secret\r\n\r\nhello")
		got := decode(t, r)
		checks := []struct{ name, got, want string }{
			{"method", got.Method, "POST"},
			{"escaped path (prefix stripped, base added)", got.RawPath, "/base/users/a%3Fb"},
			{"query", got.Query, "x=1&y=2"},
			{"Host (the upstream's)", got.Host, strings.TrimPrefix(up.URL, "http://")},
			{"body", got.Body, "hello"},
			{"X-Forwarded-For (client, not spoofed)", got.Header.Get("X-Forwarded-For"), "127.0.0.1"},
			{"X-Forwarded-Host", got.Header.Get("X-Forwarded-Host"), "public.example"},
			{"X-Forwarded-Proto", got.Header.Get("X-Forwarded-Proto"), "http"},
			{"X-Custom", got.Header.Get("X-Custom"), "kept"},
			{"Connection-listed header", got.Header.Get("X-Secret"), ""},
			{"Proxy-Authorization", got.Header.Get("Proxy-Authorization"), ""},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
			}
		}
		if vs := got.Header.Values("X-Forwarded-For"); len(vs) != 1 {
			t.Errorf("X-Forwarded-For values %q", vs)
		}
		r = one(t, s, "GET /keep/p HTTP/1.1\r\nHost: public.example\r\n\r\n")
		got = decode(t, r)
		if got.Host != "public.example" || got.Path != "/keep/p" {
			t.Errorf("preserve_host: Host %q path %q", got.Host, got.Path)
		}
		if got.ContentLength != 0 || len(got.TransferEncoding) != 0 {
			t.Errorf("a GET without a body reached the upstream with length %d, Transfer-Encoding %q", got.ContentLength, got.TransferEncoding)
		}
		// A chunked request body is forwarded.
		r = one(t, s, "PUT /keep/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
		if got = decode(t, r); got.Body != "abcde" || got.Method != "PUT" {
			t.Errorf("chunked PUT: %q %q", got.Method, got.Body)
		}
	})
}

func TestResponsePassThrough(t *testing.T) {
	up, _ := upstream(t, "a")
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := serve(t, b, &engine.Route{Path: "/", Handler: build(t, "/", map[string]any{"upstream": up.URL})})
		r := one(t, s, "GET /teapot HTTP/1.1\r\nHost: h\r\n\r\n")
		if r.StatusCode != 418 || string(r.Body) != "short and stout" || r.Header.Get("X-Upstream-Header") != "yes" {
			t.Errorf("teapot: %d %q %v", r.StatusCode, r.Body, r.Header)
		}
		if r.Header.Get("X-Drop-Me") != "" {
			t.Errorf("a header the upstream listed in Connection was passed on: %v", r.Header)
		}
	})
}

func TestKeepAliveReuse(t *testing.T) {
	up, conns := upstream(t, "a")
	forBackends(t, func(t *testing.T, b loop.Backend) {
		before := conns.Load()
		s := serve(t, b, &engine.Route{Path: "/", Handler: build(t, "/", map[string]any{"upstream": up.URL})})
		c := s.Dial(t)
		for i := 0; i < 10; i++ {
			fmt.Fprintf(c, "GET /n%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
			resps, _ := enginetest.ReadResponses(t, c, 1, 5*time.Second)
			if len(resps) != 1 || resps[0].StatusCode != 200 {
				t.Fatalf("request %d failed", i)
			}
		}
		// Ten more on separate client connections share the pool too.
		for i := 0; i < 10; i++ {
			if r := one(t, s, "GET /m HTTP/1.1\r\nHost: h\r\n\r\n"); r.StatusCode != 200 {
				t.Fatalf("status %d", r.StatusCode)
			}
		}
		if n := conns.Load() - before; n != 1 {
			t.Errorf("20 sequential requests opened %d upstream connections, want 1 (keep-alive pool)", n)
		}
	})
}

func TestUpstreamFailures(t *testing.T) {
	up, _ := upstream(t, "a")
	dead := "http://" + deadAddr(t)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := serve(t, b,
			&engine.Route{Path: "/down/", Handler: build(t, "/down/", map[string]any{"upstream": dead})},
			&engine.Route{Path: "/slow", Handler: build(t, "/slow", map[string]any{"upstream": up.URL, "response_header_timeout": "200ms"})},
		)
		r := one(t, s, "GET /down/x HTTP/1.1\r\nHost: h\r\n\r\n")
		if r.StatusCode != 502 || string(r.Body) != "502 Bad Gateway\n" {
			t.Errorf("upstream down: %d %q, want 502", r.StatusCode, r.Body)
		}
		start := time.Now()
		r = one(t, s, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
		if r.StatusCode != 504 {
			t.Errorf("upstream too slow: %d %q, want 504", r.StatusCode, r.Body)
		}
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Errorf("the 200ms response_header_timeout took %v", d)
		}
	})
}

func TestRoundRobinAndRetries(t *testing.T) {
	a, _ := upstream(t, "a")
	bb, _ := upstream(t, "b")
	dead := "http://" + deadAddr(t)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := serve(t, b,
			&engine.Route{Path: "/rr", Handler: build(t, "/rr", map[string]any{"upstreams": []any{a.URL, bb.URL}})},
			&engine.Route{Path: "/noretry", Handler: build(t, "/noretry", map[string]any{"upstreams": []any{dead, a.URL}})},
			&engine.Route{Path: "/retry", Handler: build(t, "/retry", map[string]any{"upstreams": []any{dead, a.URL}, "retries": 1})},
		)
		count := map[string]int{}
		for i := 0; i < 6; i++ {
			count[decode(t, one(t, s, "GET /rr HTTP/1.1\r\nHost: h\r\n\r\n")).Upstream]++
		}
		if count["a"] != 3 || count["b"] != 3 {
			t.Errorf("round robin over 6 requests: %v, want 3 each", count)
		}
		statuses := map[int]int{}
		for i := 0; i < 4; i++ {
			statuses[one(t, s, "GET /noretry HTTP/1.1\r\nHost: h\r\n\r\n").StatusCode]++
		}
		if statuses[502] != 2 || statuses[200] != 2 {
			t.Errorf("without retries, half the requests hit the dead upstream: %v", statuses)
		}
		for i := 0; i < 4; i++ {
			if r := one(t, s, "GET /retry HTTP/1.1\r\nHost: h\r\n\r\n"); r.StatusCode != 200 {
				t.Errorf("GET with retries: %d, want 200 (the dead upstream is skipped)", r.StatusCode)
			}
		}
		statuses = map[int]int{}
		for i := 0; i < 4; i++ {
			statuses[one(t, s, "POST /retry HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx").StatusCode]++
		}
		if statuses[502] != 2 || statuses[200] != 2 {
			t.Errorf("POST is never retried: %v, want 2 x 502 and 2 x 200", statuses)
		}
	})
}

func TestStreamingResponse(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n") //nolint:errcheck
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "data: second\n\n") //nolint:errcheck
	}))
	defer up.Close()
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := serve(t, b, &engine.Route{Path: "/events", Handler: build(t, "/events", map[string]any{"upstream": up.URL})})
		c := s.Dial(t)
		io.WriteString(c, "GET /events HTTP/1.1\r\nHost: h\r\n\r\n") //nolint:errcheck
		c.SetReadDeadline(time.Now().Add(3 * time.Second))           //nolint:errcheck
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
		// The first event arrives while the upstream still holds the response open.
		first := make([]byte, len("data: first\n\n"))
		if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: first\n\n" {
			t.Fatalf("first event before the upstream finished: %q %v", first, err)
		}
		release <- struct{}{}
		rest, err := io.ReadAll(resp.Body)
		if err != nil || string(rest) != "data: second\n\n" {
			t.Fatalf("rest %q %v", rest, err)
		}
	})
}

func TestOptions(t *testing.T) {
	tests := []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{}, "options.upstream: required"},
		{map[string]any{"upstream": "ftp://x"}, "options.upstream: \"ftp://x\": scheme must be http or https"},
		{map[string]any{"upstreams": []any{"http://ok", "http://"}}, "options.upstreams[1]"},
		{map[string]any{"upstream": "http://u:p@x"}, "user info"},
		{map[string]any{"upstream": "http://x/?q=1"}, "no query"},
		{map[string]any{"upstream": "http://x", "connect_timeout": "0s"}, "options.connect_timeout"},
		{map[string]any{"upstream": "http://x", "retries": -1}, "options.retries"},
		{map[string]any{"upstream": "http://x", "max_idle_conns": -2}, "options.max_idle_conns"},
		{map[string]any{"upstream": "http://x", "connect_timeout": "soon"}, "options.connect_timeout"},
		{map[string]any{"upstream": "http://x", "upstram": "y"}, `unknown option "upstram"`},
	}
	for _, tt := range tests {
		_, err := plugins.Build(plugins.Route{Index: 4, Path: "/p/", Handler: "proxy", Options: tt.opts})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "routes[4] (/p/)") {
			t.Errorf("%v: %v, want an error naming the route and %q", tt.opts, err, tt.want)
		}
	}
}
