package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/internal/proxyproto"
)

// TestProxyProtocolInBinary: with proxy_protocol auto, a v1 or v2 header
// from an allowed peer sets the client address that the handler and the
// access log see; a header from another peer is refused (403), a
// connection from an allowed peer without one or with a malformed one is
// rejected (400), and the rejections are counted in the metrics.
func TestProxyProtocolInBinary(t *testing.T) {
	addr := freePort(t)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
proxy_protocol: auto
proxy_allow_ips: ["127.0.0.1"]
accesslog: "@DIR@/access.log"
access_log_format: '%%(h)s %%(s)s %%(r)s'
routes:
  - {path: /echo/, handler: echo}
  - {path: /metrics, handler: metrics}
`, addr))
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" }
	v1 := string(proxyproto.AppendV1(nil, proxyproto.Header{Version: proxyproto.V1, Family: proxyproto.TCP4,
		Src: netip.MustParseAddrPort("203.0.113.7:51000"), Dst: netip.MustParseAddrPort("198.51.100.1:443")}))
	v2b, err := proxyproto.AppendV2(nil, proxyproto.Header{Version: proxyproto.V2, Family: proxyproto.TCP6,
		Src: netip.MustParseAddrPort("[2001:db8::9]:6000"), Dst: netip.MustParseAddrPort("[2001:db8::1]:443")})
	if err != nil {
		t.Fatal(err)
	}
	v2 := string(v2b)

	for _, tc := range []struct {
		name, local, raw string
		status           int
		remote           string // in the echo body
	}{
		{"v1 from an allowed peer", "", v1 + get("/echo/v1"), 200, `"remote":"203.0.113.7:51000"`},
		{"v2 from an allowed peer", "", v2 + get("/echo/v2"), 200, `"remote":"[2001:db8::9]:6000"`},
		{"no header from an allowed peer", "", get("/echo/none"), 400, ""},
		{"malformed header", "", "PROXY TCP4 203.0.113.7 198.51.100.1 51000 99999\r\n" + get("/echo/bad"), 400, ""},
		{"header from a peer not allowed", "127.0.0.2", v1 + get("/echo/forbidden"), 403, ""},
		{"direct client not allowed to send one, spoofing X-Forwarded-For", "127.0.0.2",
			"GET /echo/direct HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n", 200,
			`"remote":"127.0.0.2:`},
	} {
		r := exchange(t, tc.local, addr, tc.raw)
		if r.status != tc.status || !strings.Contains(r.body, tc.remote) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, r.status, r.body, tc.status, tc.remote)
		}
	}
	log := lines(t, filepath.Join(p.dir, "access.log"), 3)
	for _, want := range []string{"203.0.113.7 200 GET /echo/v1 HTTP/1.1", "2001:db8::9 200 GET /echo/v2 HTTP/1.1",
		"127.0.0.2 200 GET /echo/direct HTTP/1.1"} {
		if !slices.Contains(log, want) {
			t.Errorf("access log has no %q:\n%s", want, strings.Join(log, "\n"))
		}
	}
	// A peer not allowed scrapes without a header.
	r := exchange(t, "127.0.0.2", addr, get("/metrics"))
	if r.status != 200 {
		t.Fatalf("scrape from 127.0.0.2: %d %s", r.status, r.body)
	}
	m := parseSamples(t, r.body)
	checkSamples(t, m, map[string]float64{`asyncd_http_rejected_requests_total{code="400"}`: 2,
		`asyncd_http_rejected_requests_total{code="403"}`: 1})
	el := p.log()
	for _, want := range []string{"no PROXY protocol header from a peer in proxy_allow_ips",
		"proxy protocol: v1: malformed port", "PROXY protocol header from a peer not in proxy_allow_ips"} {
		if !strings.Contains(el, want) {
			t.Errorf("error log does not say %q", want)
		}
	}
}
