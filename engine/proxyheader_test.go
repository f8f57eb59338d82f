package engine_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/internal/proxyproto"
	"github.com/asyncd/asyncd/loop"
)

// addrRoutes answer /addr with "remote local" as the engine sees them.
func addrRoutes(t testing.TB) *engine.Router {
	return enginetest.Router(t, &engine.Route{Path: "/addr", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
		fmt.Fprintf(c, "%s %s", c.RemoteAddr(), c.LocalAddr())
	})})
}

// startProxy runs an engine with proxy_protocol mode and proxy_allow_ips
// allow, and forwarded_allow_ips 127.0.0.1 (so that the test can tell the
// PROXY address from a trusted X-Forwarded-For).
func startProxy(t *testing.T, b loop.Backend, mode string, allow ...string) *enginetest.Server {
	t.Helper()
	pp, err := engine.ParseProxyProtocol(mode, allow)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := engine.ParseProxies([]string{"127.0.0.1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return enginetest.Start(t, b, engine.Config{Router: addrRoutes(t), Loops: 2, Executor: goExec{},
		KeepAlive: 5 * time.Second, HeaderTimeout: 2 * time.Second, ProxyProtocol: pp, Proxies: &fw})
}

func v1(src, dst string) string {
	h := proxyproto.Header{Version: proxyproto.V1, Family: proxyproto.TCP4,
		Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}
	if h.Src.Addr().Is6() {
		h.Family = proxyproto.TCP6
	}
	return string(proxyproto.AppendV1(nil, h))
}

func v2(t *testing.T, h proxyproto.Header) string {
	t.Helper()
	b, err := proxyproto.AppendV2(nil, h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const getAddr = "GET /addr HTTP/1.1\r\nHost: x\r\n\r\n"

// exchangeFrom is Server.Exchange from a chosen local address.
func exchangeFrom(t *testing.T, s *enginetest.Server, local, raw string, want int) ([]*enginetest.Response, bool) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return enginetest.ReadResponses(t, c, want, 5*time.Second)
}

func wantAnswer(t *testing.T, resps []*enginetest.Response, status int, body string) {
	t.Helper()
	if len(resps) == 0 {
		t.Fatalf("no response, want %d %q", status, body)
	}
	r := resps[0]
	if r.StatusCode != status || (body != "" && string(r.Body) != body) {
		t.Fatalf("got %d %q, want %d %q", r.StatusCode, r.Body, status, body)
	}
}

func TestProxyProtocolAddresses(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := startProxy(t, b, "auto", "127.0.0.1")
		t.Run("v1 tcp4, two pipelined requests", func(t *testing.T) {
			resps, _ := exchangeFrom(t, s, "", v1("203.0.113.7:51000", "198.51.100.1:443")+getAddr+getAddr, 2)
			for _, r := range resps {
				if r.StatusCode != 200 || string(r.Body) != "203.0.113.7:51000 198.51.100.1:443" {
					t.Fatalf("%d %q", r.StatusCode, r.Body)
				}
			}
		})
		t.Run("v1 tcp6", func(t *testing.T) {
			resps, _ := exchangeFrom(t, s, "", v1("[2001:db8::7]:4000", "[2001:db8::1]:80")+getAddr, 1)
			wantAnswer(t, resps, 200, "[2001:db8::7]:4000 [2001:db8::1]:80")
		})
		t.Run("v2 tcp4", func(t *testing.T) {
			h := proxyproto.Header{Version: proxyproto.V2, Family: proxyproto.TCP4,
				Src: netip.MustParseAddrPort("192.0.2.9:6000"), Dst: netip.MustParseAddrPort("192.0.2.1:8080")}
			resps, _ := exchangeFrom(t, s, "", v2(t, h)+getAddr, 1)
			wantAnswer(t, resps, 200, "192.0.2.9:6000 192.0.2.1:8080")
		})
		t.Run("v2 LOCAL keeps the socket's addresses", func(t *testing.T) {
			resps, _ := exchangeFrom(t, s, "", v2(t, proxyproto.Header{Version: proxyproto.V2, Local: true})+getAddr, 1)
			if len(resps) != 1 || resps[0].StatusCode != 200 || !strings.HasPrefix(string(resps[0].Body), "127.0.0.1:") {
				t.Fatalf("%v", resps)
			}
		})
		t.Run("v1 UNKNOWN keeps the socket's addresses", func(t *testing.T) {
			resps, _ := exchangeFrom(t, s, "", "PROXY UNKNOWN\r\n"+getAddr, 1)
			if len(resps) != 1 || resps[0].StatusCode != 200 || !strings.HasPrefix(string(resps[0].Body), "127.0.0.1:") {
				t.Fatalf("%v", resps)
			}
		})
		t.Run("header in pieces", func(t *testing.T) {
			c := s.Dial(t)
			raw := v1("203.0.113.8:1234", "198.51.100.1:80") + getAddr
			for i := 0; i < len(raw); i++ {
				if _, err := c.Write([]byte{raw[i]}); err != nil {
					t.Fatal(err)
				}
				if i < 20 {
					time.Sleep(2 * time.Millisecond) // let the server see partial headers
				}
			}
			resps, _ := enginetest.ReadResponses(t, c, 1, 5*time.Second)
			wantAnswer(t, resps, 200, "203.0.113.8:1234 198.51.100.1:80")
		})
		t.Run("forwarding headers of the proxied client are not believed", func(t *testing.T) {
			// The peer is 127.0.0.1, trusted by forwarded_allow_ips, but
			// the client is 203.0.113.7: its X-Forwarded-For is spoofed.
			raw := v1("203.0.113.7:51000", "198.51.100.1:443") +
				"GET /addr HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n"
			resps, _ := exchangeFrom(t, s, "", raw, 1)
			wantAnswer(t, resps, 200, "203.0.113.7:51000 198.51.100.1:443")
		})
	})
}

func TestProxyProtocolRefusals(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		auto := startProxy(t, b, "auto", "127.0.0.1")
		check := func(t *testing.T, s *enginetest.Server, local, raw string, status int) {
			t.Helper()
			before := s.Engine.Stats().Rejected[status]
			resps, closed := exchangeFrom(t, s, local, raw, 1)
			wantAnswer(t, resps, status, "")
			if !closed {
				t.Fatalf("connection left open after %d", status)
			}
			if got := s.Engine.Stats().Rejected[status]; got != before+1 {
				t.Fatalf("rejected[%d] = %d, want %d", status, got, before+1)
			}
		}
		t.Run("allowed peer without a header", func(t *testing.T) { check(t, auto, "", getAddr, 400) })
		t.Run("malformed v1", func(t *testing.T) {
			check(t, auto, "", "PROXY TCP4 203.0.113.7  198.51.100.1 1 2\r\n"+getAddr, 400)
		})
		t.Run("malformed v2", func(t *testing.T) {
			h := []byte(v2(t, proxyproto.Header{Version: proxyproto.V2, Family: proxyproto.TCP4,
				Src: netip.MustParseAddrPort("192.0.2.9:6000"), Dst: netip.MustParseAddrPort("192.0.2.1:80")}))
			h[13] = 0x77 // unknown family
			check(t, auto, "", string(h)+getAddr, 400)
		})
		t.Run("v1 line too long", func(t *testing.T) {
			check(t, auto, "", "PROXY TCP4 "+strings.Repeat("1", 120)+"\r\n", 400)
		})
		v1only := startProxy(t, b, "v1", "127.0.0.1")
		t.Run("v2 header when v1 is configured", func(t *testing.T) {
			check(t, v1only, "", v2(t, proxyproto.Header{Version: proxyproto.V2, Local: true})+getAddr, 400)
		})
		v2only := startProxy(t, b, "v2", "127.0.0.1")
		t.Run("v1 header when v2 is configured", func(t *testing.T) {
			check(t, v2only, "", v1("203.0.113.7:1", "198.51.100.1:2")+getAddr, 400)
		})

		// 127.0.0.2 reaches the loopback listener but is not allowed.
		t.Run("header from a peer not allowed", func(t *testing.T) {
			check(t, auto, "127.0.0.2", v1("203.0.113.7:1", "198.51.100.1:2")+getAddr, 403)
		})
		t.Run("direct client not allowed to send a header is served", func(t *testing.T) {
			resps, _ := exchangeFrom(t, auto, "127.0.0.2", getAddr, 1)
			if len(resps) != 1 || resps[0].StatusCode != 200 || !strings.HasPrefix(string(resps[0].Body), "127.0.0.2:") {
				t.Fatalf("%v", resps)
			}
		})
		t.Run("off: a PROXY line is a bad request", func(t *testing.T) {
			off := startProxy(t, b, "off", "127.0.0.1")
			check(t, off, "", v1("203.0.113.7:1", "198.51.100.1:2")+getAddr, 400)
		})
		t.Run("incomplete header times out", func(t *testing.T) {
			pp, _ := engine.ParseProxyProtocol("v1", []string{"127.0.0.1"})
			s := enginetest.Start(t, b, engine.Config{Router: addrRoutes(t), Loops: 1, Executor: goExec{},
				HeaderTimeout: 200 * time.Millisecond, ProxyProtocol: pp})
			resps, closed := exchangeFrom(t, s, "", "PROXY TCP4 203.0", 1)
			wantAnswer(t, resps, 408, "")
			if !closed {
				t.Fatal("connection left open after 408")
			}
		})
	})
}

func TestParseProxyProtocol(t *testing.T) {
	for mode, want := range map[string]engine.ProxyMode{"v1": engine.ProxyV1, "V2": engine.ProxyV2,
		"auto": engine.ProxyAuto, "true": engine.ProxyAuto} {
		pp, err := engine.ParseProxyProtocol(mode, []string{"10.0.0.0/8"})
		if err != nil || pp == nil || pp.Mode != want {
			t.Errorf("%s: %+v %v", mode, pp, err)
		}
	}
	for _, mode := range []string{"off", "false", ""} {
		if pp, err := engine.ParseProxyProtocol(mode, nil); pp != nil || err != nil {
			t.Errorf("%q: %+v %v, want nil", mode, pp, err)
		}
	}
	if _, err := engine.ParseProxyProtocol("v3", nil); err == nil || !strings.Contains(err.Error(), "proxy_protocol") {
		t.Errorf("v3: %v", err)
	}
	if _, err := engine.ParseProxyProtocol("v1", []string{"10.0.0.300"}); err == nil || !strings.Contains(err.Error(), "proxy_allow_ips") {
		t.Errorf("bad address: %v", err)
	}
}
