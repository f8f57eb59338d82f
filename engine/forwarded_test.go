package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// gunicornSchemeHeaders is Gunicorn's (and asyncd's) default
// secure_scheme_headers.
var gunicornSchemeHeaders = map[string]string{
	"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}

// startForwarded serves /who ("remote scheme" as the handler sees them)
// trusting the forwarding headers of the peers in allow.
func startForwarded(t *testing.T, b loop.Backend, allow ...string) *enginetest.Server {
	t.Helper()
	p, err := engine.ParseProxies(allow, gunicornSchemeHeaders)
	if err != nil {
		t.Fatal(err)
	}
	r := enginetest.Router(t, &engine.Route{Path: "/who", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
		fmt.Fprintf(c, "%s %s", c.RemoteAddr(), c.Scheme())
	})})
	return enginetest.Start(t, b, engine.Config{Router: r, Loops: 1, Executor: goExec{}, Proxies: &p,
		KeepAlive: 5 * time.Second, HeaderTimeout: 5 * time.Second})
}

// TestForwardedFromTrustedPeer: a peer in forwarded_allow_ips (here the
// test client, 127.0.0.1, plus a proxy tier 10.0.0.0/8) sets the client
// address with X-Forwarded-For or Forwarded and the scheme with any
// secure_scheme_headers header or Forwarded's proto; scheme headers that
// contradict each other get 400 and never reach the handler.
// (reliability TestUntrustedForwardingHeaders covers an untrusted peer's
// headers being ignored.)
func TestForwardedFromTrustedPeer(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := startForwarded(t, b, "127.0.0.1", "10.0.0.0/8")
		for _, tc := range []struct {
			name, headers string
			status        int
			want          string
		}{
			{"no forwarding headers: the socket's peer", "", 200, "127.0.0.1:* http"},
			{"X-Forwarded-For sets the client", "X-Forwarded-For: 203.0.113.7\r\n", 200, "203.0.113.7:0 http"},
			{"X-Forwarded-For skips trusted proxies from the nearest hop", "X-Forwarded-For: 203.0.113.7, 10.1.2.3, 10.4.5.6\r\n", 200, "203.0.113.7:0 http"},
			{"X-Forwarded-For: hops before the first untrusted one are the client's own claims", "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n", 200, "203.0.113.7:0 http"},
			{"X-Forwarded-Proto https", "X-Forwarded-Proto: https\r\n", 200, "127.0.0.1:* https"},
			{"X-Forwarded-Proto http", "X-Forwarded-Proto: http\r\n", 200, "127.0.0.1:* http"},
			{"X-Forwarded-Ssl on", "X-Forwarded-Ssl: on\r\n", 200, "127.0.0.1:* https"},
			{"X-Forwarded-Protocol ssl", "X-Forwarded-Protocol: ssl\r\n", 200, "127.0.0.1:* https"},
			{"agreeing scheme headers", "X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n", 200, "127.0.0.1:* https"},
			{"Forwarded sets client and scheme", "Forwarded: for=203.0.113.7;proto=https\r\n", 200, "203.0.113.7:0 https"},
			{"Forwarded with a quoted IPv6 and port, through a trusted proxy", `Forwarded: for="[2001:db8::1]:4711";proto=https, for=10.1.2.3` + "\r\n", 200, "[2001:db8::1]:4711 https"},
			{"Forwarded: the scheme is the chosen element's proto, not the nearest proxy's", "Forwarded: for=203.0.113.7;proto=http, for=10.1.2.3;proto=https\r\n", 200, "203.0.113.7:0 http"},
			// Repeated field lines are one list (RFC 9110 §5.3): HAProxy's
			// option forwardfor appends its own line after the client's.
			{"two X-Forwarded-For lines: the proxy's line is the list's end", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.7\r\n", 200, "203.0.113.7:0 http"},
			{"two X-Forwarded-For lines through a trusted tier", "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\nX-Forwarded-For: 10.1.2.3\r\n", 200, "203.0.113.7:0 http"},
			{"two Forwarded lines", "Forwarded: for=6.6.6.6;proto=https\r\nForwarded: for=203.0.113.7;proto=http\r\n", 200, "203.0.113.7:0 http"},
			{"two X-Forwarded-Proto lines: the one at the chosen hop", "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n", 200, "203.0.113.7:0 http"},
			{"X-Forwarded-Proto set once by the edge, X-Forwarded-For appended by an inner proxy", "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 10.1.2.3\r\n", 200, "203.0.113.7:0 https"},
			{"X-Forwarded-Proto appended per hop, aligned with X-Forwarded-For", "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.1.2.3\r\nX-Forwarded-Proto: https, http, https\r\n", 200, "203.0.113.7:0 http"},
			{"X-Forwarded-For wins over Forwarded for the address", "X-Forwarded-For: 203.0.113.7\r\nForwarded: for=198.51.100.9\r\n", 200, "203.0.113.7:0 http"},
			{"X-Forwarded-For with a scheme header", "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n", 200, "203.0.113.7:0 https"},
			{"conflicting X-Forwarded-Proto and X-Forwarded-Ssl", "X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n", 400, ""},
			{"conflicting X-Forwarded-Proto and Forwarded proto", "X-Forwarded-Proto: http\r\nForwarded: for=203.0.113.7;proto=https\r\n", 400, ""},
			{"conflicting X-Forwarded-Protocol and X-Forwarded-Proto", "X-Forwarded-Protocol: ssl\r\nX-Forwarded-Proto: http\r\n", 400, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rs, _ := s.Exchange(t, "GET /who HTTP/1.1\r\nHost: a\r\n"+tc.headers+"\r\n", 1)
				got := string(rs[0].Body)
				if rs[0].StatusCode != tc.status {
					t.Fatalf("status %d (%q), want %d", rs[0].StatusCode, got, tc.status)
				}
				if tc.status != 200 {
					if got != "400 Bad Request\n" {
						t.Fatalf("the handler answered a request with conflicting scheme headers: %q", got)
					}
					return
				}
				if !matchAddr(got, tc.want) {
					t.Fatalf("handler saw %q, want %q", got, tc.want)
				}
			})
		}
	})
}

// TestForwardedFromUntrustedPeer: a peer outside forwarded_allow_ips has
// its forwarding headers ignored, conflicting scheme headers included
// (they are not believed, so they contradict nothing).
func TestForwardedFromUntrustedPeer(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := startForwarded(t, b, "10.9.9.9")
		rs, _ := s.Exchange(t, "GET /who HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n"+
			"X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\nForwarded: for=6.6.6.6;proto=http\r\n\r\n", 1)
		if got := string(rs[0].Body); rs[0].StatusCode != 200 || !matchAddr(got, "127.0.0.1:* http") {
			t.Fatalf("%d %q, want the socket's peer and http", rs[0].StatusCode, got)
		}
	})
}

// matchAddr compares "addr scheme" with want, where a port "*" matches any.
func matchAddr(got, want string) bool {
	var ga, gs, wa, ws string
	fmt.Sscan(got, &ga, &gs)  //nolint:errcheck
	fmt.Sscan(want, &wa, &ws) //nolint:errcheck
	if gs != ws {
		return false
	}
	if len(wa) > 2 && wa[len(wa)-2:] == ":*" {
		return len(ga) > len(wa)-1 && ga[:len(wa)-1] == wa[:len(wa)-1]
	}
	return ga == wa
}
