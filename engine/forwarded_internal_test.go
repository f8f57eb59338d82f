package engine

import (
	"net/netip"
	"testing"

	"github.com/asyncd/asyncd/httpparse"
)

// forwardedCtx returns a Ctx holding head, parsed, from peer remote ("" for
// a unix socket).
func forwardedCtx(tb testing.TB, remote, head string) *Ctx {
	tb.Helper()
	x := &Ctx{}
	var p httpparse.Parser
	p.Limits = httpparse.DefaultLimits()
	if n, err := p.ParseHead([]byte(head), &x.req); err != nil || n != len(head) {
		tb.Fatalf("parse %q: %d, %v", head, n, err)
	}
	if remote != "" {
		x.remote = netip.MustParseAddrPort(remote)
	}
	return x
}

func testProxies(tb testing.TB, allow ...string) *Proxies {
	tb.Helper()
	p, err := ParseProxies(allow, map[string]string{
		"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"})
	if err != nil {
		tb.Fatal(err)
	}
	return p.compiled()
}

// TestApplyForwarded pins the rule of applyForwarded: repeated lines are
// one list, the client is the right-most untrusted hop, and each scheme
// header is read at that hop's position (or its left-most member).
func TestApplyForwarded(t *testing.T) {
	const peer = "10.0.0.1:5000" // a trusted proxy, as is 10.0.0.0/8
	for _, tc := range []struct {
		name    string
		allow   []string
		remote  string
		headers string
		ok      bool
		want    string // "addr scheme"
	}{
		{"no headers", nil, peer, "", true, "10.0.0.1:5000 http"},
		{"untrusted peer", []string{"192.0.2.1"}, peer, "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n", true, "10.0.0.1:5000 http"},
		{"one line", nil, peer, "X-Forwarded-For: 203.0.113.7\r\n", true, "203.0.113.7:0 http"},
		{"client's line then the proxy's", nil, peer, "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.7\r\n", true, "203.0.113.7:0 http"},
		{"three lines, trusted ones skipped across lines", nil, peer,
			"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.7, 10.9.9.9\r\nX-Forwarded-For: 10.8.8.8\r\n", true, "203.0.113.7:0 http"},
		{"other headers between the lines", nil, peer,
			"X-Forwarded-For: 6.6.6.6\r\nAccept: */*\r\nx-forwarded-for: 203.0.113.7\r\n", true, "203.0.113.7:0 http"},
		{"empty members and lines are skipped", nil, peer,
			"X-Forwarded-For: 6.6.6.6,, \r\nX-Forwarded-For:\r\nX-Forwarded-For: ,203.0.113.7,\r\n", true, "203.0.113.7:0 http"},
		{"every hop trusted: the farthest", nil, peer, "X-Forwarded-For: 10.1.1.1\r\nX-Forwarded-For: 10.2.2.2\r\n", true, "10.1.1.1:0 http"},
		{"a hop that does not parse ends the walk", nil, peer,
			"X-Forwarded-For: 6.6.6.6, garbage\r\nX-Forwarded-For: 10.2.2.2\r\n", true, "10.2.2.2:0 http"},
		{"the nearest hop does not parse: the peer stays", nil, peer, "X-Forwarded-For: 203.0.113.7, garbage\r\n", true, "10.0.0.1:5000 http"},
		{"IPv6 and IPv4-mapped hops", nil, peer, "X-Forwarded-For: [2001:db8::1]:443\r\nX-Forwarded-For: ::ffff:10.3.3.3\r\n", true, "[2001:db8::1]:443 http"},
		{"X-Forwarded-For wins over Forwarded", nil, peer, "Forwarded: for=198.51.100.9\r\nX-Forwarded-For: 203.0.113.7\r\n", true, "203.0.113.7:0 http"},
		{"Forwarded lines combine", nil, peer, "Forwarded: for=6.6.6.6;proto=https\r\nForwarded: for=203.0.113.7;proto=http, for=10.1.1.1;proto=https\r\n", true, "203.0.113.7:0 http"},
		{"Forwarded element without for= ends the walk", nil, peer, "Forwarded: for=6.6.6.6, proto=https\r\n", true, "10.0.0.1:5000 https"},
		{"scheme: the proxy's appended line", nil, peer, "X-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n", true, "10.0.0.1:5000 http"},
		{"scheme: set once by the edge, more hops appended", nil, peer,
			"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 10.1.1.1, 10.2.2.2\r\n", true, "203.0.113.7:0 https"},
		{"scheme: per hop, aligned from the right", nil, peer,
			"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 10.1.1.1\r\n" +
				"X-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Proto: https\r\n", true, "203.0.113.7:0 http"},
		{"scheme headers at the hop agree", nil, peer,
			"X-Forwarded-Proto: http\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n", true, "10.0.0.1:5000 https"},
		{"scheme headers at the hop disagree: 400", nil, peer,
			"X-Forwarded-Proto: http, https\r\nX-Forwarded-Ssl: off\r\n", false, ""},
		{"Forwarded proto at the hop disagrees: 400", nil, peer,
			"X-Forwarded-Proto: https\r\nForwarded: for=203.0.113.7;proto=http\r\n", false, ""},
		{"a client's own disagreeing value left of the hop is not read", nil, peer,
			"X-Forwarded-Ssl: off\r\nX-Forwarded-Ssl: on\r\nX-Forwarded-Proto: https\r\n", true, "10.0.0.1:5000 https"},
		{"'*' trusts every hop: the left-most", []string{"*"}, "192.0.2.1:1", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.7\r\n", true, "6.6.6.6:0 http"},
		{"unix socket peer is trusted", []string{"192.0.2.1"}, "", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.7\r\n", true, "203.0.113.7:0 http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allow := tc.allow
			if allow == nil {
				allow = []string{"10.0.0.0/8"}
			}
			x := forwardedCtx(t, tc.remote, "GET / HTTP/1.1\r\nHost: a\r\n"+tc.headers+"\r\n")
			ok := x.applyForwarded(testProxies(t, allow...))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if got := x.remote.String() + " " + x.Scheme(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// forwardedHead is a request through two proxies, with each forwarding
// header on more than one line.
const forwardedHead = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n" +
	"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 10.1.2.3\r\n" +
	"Forwarded: for=203.0.113.7;proto=https\r\nForwarded: for=10.1.2.3\r\nAccept: */*\r\n\r\n"

// TestApplyForwardedAllocatesNothing: walking repeated lines allocates
// nothing.
func TestApplyForwardedAllocatesNothing(t *testing.T) {
	x := forwardedCtx(t, "10.0.0.1:1", forwardedHead)
	p := testProxies(t, "10.0.0.0/8")
	peer, want := x.remote, netip.MustParseAddr("203.0.113.7")
	if n := testing.AllocsPerRun(100, func() {
		x.remote = peer
		if !x.applyForwarded(p) || x.remote.Addr() != want || !x.secure {
			t.Fatalf("got %v secure=%v", x.remote, x.secure)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

// BenchmarkApplyForwarded resolves forwardedHead; it must report 0
// allocs/op.
func BenchmarkApplyForwarded(b *testing.B) {
	x := forwardedCtx(b, "10.0.0.1:1", forwardedHead)
	p := testProxies(b, "10.0.0.0/8")
	peer := x.remote
	b.ReportAllocs()
	for b.Loop() {
		x.remote = peer
		x.applyForwarded(p)
	}
}

func TestParseHop(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"203.0.113.7", "203.0.113.7:0"},
		{"203.0.113.7:8080", "203.0.113.7:8080"},
		{"::1", "[::1]:0"},
		{"[::1]", "[::1]:0"},
		{"[2001:db8::1]:443", "[2001:db8::1]:443"},
		{"::ffff:10.1.2.3", "10.1.2.3:0"},
		{"[::ffff:10.1.2.3]:9", "10.1.2.3:9"},
		{"garbage", ""},
		{"unknown", ""},
		{"_hidden", ""},
		{"[::1", ""},
		{"[]", ""},
		{"1.2.3.4:", ""},
		{"", ""},
	} {
		ap, ok := parseHop([]byte(tc.in))
		got := ""
		if ok {
			got = ap.String()
		}
		if got != tc.want {
			t.Errorf("parseHop(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
