package proxy_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"testing"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// spoofs are the fields a client sends to pass for someone else, or to
// make an upstream read a field it should not.
const spoofs = "X-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6;proto=https\r\n" +
	"X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\nX-Forwarded-Protocol: ssl\r\nX-Forwarded-Host: evil\r\n" +
	"X-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /evil\r\nTransfer_Encoding: chunked\r\nX_Custom: y\r\nX-Custom: kept\r\n"

// TestClientCannotSpeakForTheProxy checks what reaches the upstream of
// the fields in spoofs: who the client is and how it connected is what
// asyncd decided (the socket, or a proxy trusted by forwarded_allow_ips),
// stated afresh; a client's own claims and underscore names are dropped;
// other fields pass.
func TestClientCannotSpeakForTheProxy(t *testing.T) {
	up := newRawUpstream(t, nil)
	trusted, err := engine.ParseProxies([]string{"127.0.0.1"}, map[string]string{"X-FORWARDED-PROTO": "https"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		proxies *engine.Proxies
		extra   string // what a trusted proxy in front adds
		client  string // the client address the upstream must get
		proto   string
	}{
		{"untrusted client", nil, "X-Forwarded-For: 6.6.6.6\r\n", "127.0.0.1", "http"},
		// The client's own X-Forwarded-For, and the proxy's address for it.
		{"behind a trusted proxy", &trusted, "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n", "203.0.113.7", "https"},
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := enginetest.Start(t, b, engine.Config{Loops: 1, Executor: goExec{}, Proxies: tt.proxies,
					Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: build(t, "/", map[string]any{"upstream": up.URL()})})})
				before := len(up.requests())
				r := one(t, s, "GET /h HTTP/1.1\r\nHost: public.example\r\n"+spoofs+tt.extra+"\r\n")
				got := up.requests()[before:]
				if r.StatusCode != 200 || len(got) != 1 {
					t.Fatalf("status %d; the upstream parsed:%s", r.StatusCode, describeUp(got))
				}
				h := got[0].Header
				want := map[string][]string{
					"X-Real-Ip":         {tt.client},
					"X-Forwarded-For":   {tt.client},
					"X-Forwarded-Proto": {tt.proto},
					"X-Forwarded-Host":  {"public.example"},
					"X-Custom":          {"kept"},
				}
				for k, v := range want {
					if fmt.Sprint(h[k]) != fmt.Sprint(v) {
						t.Errorf("%s: %q, want %q", k, h[k], v)
					}
				}
				for _, k := range []string{"Forwarded", "X-Forwarded-Ssl", "X-Forwarded-Protocol", "X-Forwarded-Port",
					"X-Forwarded-Prefix", "Transfer_encoding", "Transfer_Encoding", "X_custom", "X_Custom"} {
					if v, ok := h[k]; ok {
						t.Errorf("%s reached the upstream: %q", k, v)
					}
				}
			})
		}
	})
}

// TestAcceptEncodingPassesThrough checks that the proxy neither asks the
// upstream for gzip on the client's behalf nor decompresses: the upstream
// sees the client's Accept-Encoding (or none), and a gzip body reaches the
// client byte for byte with its Content-Encoding.
func TestAcceptEncodingPassesThrough(t *testing.T) {
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	fmt.Fprintf(zw, "%0500d", 7)
	zw.Close()
	// The upstream answers gzip whatever was asked: the proxy must pass
	// it on untouched either way.
	up := newRawUpstream(t, func(c net.Conn, _ int, _ *upRequest) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n", zipped.Len())
		c.Write(zipped.Bytes()) //nolint:errcheck
	})
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := serve(t, b, &engine.Route{Path: "/", Handler: build(t, "/", map[string]any{"upstream": up.URL()})})
		for _, ae := range []string{"", "gzip, br", "identity"} {
			t.Run("Accept-Encoding "+ae, func(t *testing.T) {
				field := ""
				if ae != "" {
					field = "Accept-Encoding: " + ae + "\r\n"
				}
				before := len(up.requests())
				r := one(t, s, "GET /z HTTP/1.1\r\nHost: h\r\n"+field+"\r\n")
				got := up.requests()[before:]
				if len(got) != 1 {
					t.Fatalf("the upstream parsed:%s", describeUp(got))
				}
				if v := got[0].Header.Get("Accept-Encoding"); v != ae {
					t.Errorf("the upstream got Accept-Encoding %q, the client sent %q", v, ae)
				}
				if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(r.Body, zipped.Bytes()) {
					t.Errorf("the client got %d, Content-Encoding %q, %d body bytes; want the upstream's %d gzip bytes untouched",
						r.StatusCode, r.Header.Get("Content-Encoding"), len(r.Body), zipped.Len())
				}
			})
		}
	})
}
