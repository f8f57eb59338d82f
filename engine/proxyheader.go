package engine

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/internal/proxyproto"
	"github.com/asyncd/asyncd/loop"
)

// ProxyMode is which PROXY protocol header versions a connection from an
// allowed peer must start with (proxy_protocol).
type ProxyMode uint8

const (
	// ProxyOff reads no header: "PROXY ..." is an ordinary (bad) request.
	ProxyOff ProxyMode = iota
	// ProxyV1 requires the text header.
	ProxyV1
	// ProxyV2 requires the binary header.
	ProxyV2
	// ProxyAuto requires a header of either version, told apart by its
	// first bytes as the specification describes (section 2.2). It does
	// not make the header optional.
	ProxyAuto
)

// ProxyProtocol configures the PROXY protocol (HAProxy's
// proxy-protocol.txt) on accepted connections.
//
// Following the specification ("the receiver MUST NOT try to guess whether
// the protocol header is present or not"), the header is never optional
// for a peer that may send it: a connection from an allowed peer must
// start with a header of the configured version, else it is answered 400
// and closed. Otherwise a TCP proxy in proxy_allow_ips that relays a
// client's bytes without a header would let that client write its own
// header and choose its address. A peer not allowed is served as a direct
// client (its socket address is its address, as with Gunicorn); if it
// sends a header anyway it is refused with 403 (Gunicorn's
// ForbiddenProxyRequest). Unix-socket peers count as allowed, as Gunicorn
// does. A malformed header is answered 400 and the connection closed.
type ProxyProtocol struct {
	Mode ProxyMode
	// Allowed are the peers that send a header (proxy_allow_ips); its
	// SecureHeaders are unused.
	Allowed Proxies
}

// ParseProxyProtocol builds the PROXY protocol configuration from the
// proxy_protocol mode ("off", "v1", "v2", "auto"; Gunicorn's true and false
// mean auto and off) and proxy_allow_ips. It returns nil for off.
func ParseProxyProtocol(mode string, allow []string) (*ProxyProtocol, error) {
	var m ProxyMode
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "off", "false", "":
		return nil, nil
	case "v1":
		m = ProxyV1
	case "v2":
		m = ProxyV2
	case "auto", "true":
		m = ProxyAuto
	default:
		return nil, fmt.Errorf("proxy_protocol: unknown mode %q (off, v1, v2, auto)", mode)
	}
	peers, err := ParseProxies(allow, nil)
	if err != nil {
		return nil, fmt.Errorf("proxy_allow_ips: %w", err)
	}
	return &ProxyProtocol{Mode: m, Allowed: peers}, nil
}

// proxyState is where a connection is with the PROXY protocol.
type proxyState uint8

const (
	// proxyNone: nothing to do (off, or the first bytes were dealt with).
	// It is the zero value, so connections without PROXY protocol cost
	// one byte comparison per read.
	proxyNone proxyState = iota
	// proxyExpect: an allowed peer; its first bytes must be a header.
	proxyExpect
	// proxyForbid: a peer not allowed; a header from it is refused.
	proxyForbid
)

// The answers to a connection whose first bytes break the rules. They are
// fixed values so that refusing a connection does not allocate.
var (
	errProxyMissing = &httpparse.Error{Status: 400,
		Reason: "no PROXY protocol header from a peer in proxy_allow_ips (proxy_protocol is on)"}
	errProxyV1Only = &httpparse.Error{Status: 400,
		Reason: "PROXY protocol v2 header, but proxy_protocol is v1"}
	errProxyV2Only = &httpparse.Error{Status: 400,
		Reason: "PROXY protocol v1 header, but proxy_protocol is v2"}
	errProxyForbidden = &httpparse.Error{Status: 403,
		Reason: "PROXY protocol header from a peer not in proxy_allow_ips"}
)

// proxyOpen decides, when a connection opens, what its first bytes must
// be.
func (e *Engine) proxyOpen(lc loop.Conn) proxyState {
	pp := e.cfg.ProxyProtocol
	if pp == nil || pp.Mode == ProxyOff {
		return proxyNone
	}
	if pp.Allowed.trusts(lc.RemoteAddr()) {
		return proxyExpect
	}
	return proxyForbid
}

// proxyRead handles a connection's first bytes while c.proxy is set: it
// reads the header (waiting while it is incomplete), takes its source as
// the connection's remote address, and hands the rest of in to the HTTP
// side. It returns the bytes consumed, as OnRead.
func (c *conn) proxyRead(in []byte) int {
	e := c.l.e
	v, known := proxyproto.Detect(in)
	if !known {
		return c.proxyWait()
	}
	if c.proxy == proxyForbid {
		c.proxy = proxyNone
		if v != proxyproto.None {
			return c.proxyReject(in, errProxyForbidden)
		}
		return e.OnRead(c.lc, in) // a direct client
	}
	switch {
	case v == proxyproto.None:
		return c.proxyReject(in, errProxyMissing)
	case e.cfg.ProxyProtocol.Mode == ProxyV1 && v != proxyproto.V1:
		return c.proxyReject(in, errProxyV1Only)
	case e.cfg.ProxyProtocol.Mode == ProxyV2 && v != proxyproto.V2:
		return c.proxyReject(in, errProxyV2Only)
	}
	hdr, n, err := proxyproto.Parse(in)
	if err != nil {
		return c.proxyReject(in, err)
	}
	if n == 0 {
		return c.proxyWait()
	}
	c.proxy = proxyNone
	if hdr.Proxied() {
		// Everything that asks the connection for its addresses (the
		// request's RemoteAddr, forwarded-header trust, the access log,
		// error log lines) now sees the client's.
		c.lc = &proxiedConn{Conn: c.lc,
			remote: netip.AddrPortFrom(hdr.Src.Addr().Unmap(), hdr.Src.Port()),
			local:  netip.AddrPortFrom(hdr.Dst.Addr().Unmap(), hdr.Dst.Port())}
	}
	c.toIdle()
	c.l.bytesIn.Add(uint64(n))
	return n + e.OnRead(c.lc, in[n:])
}

// proxyWait waits for the rest of a header, under header_timeout as a
// request head is (an expired wait is answered 408).
func (c *conn) proxyWait() int {
	if c.phase != phaseHead {
		c.toHead()
	}
	return 0
}

// proxyReject answers a connection whose first bytes break the PROXY
// protocol rules and closes it; reject logs it (a *proxyproto.Error names
// what was wrong), counts it as a rejected request by its status and tells
// the observer.
func (c *conn) proxyReject(in []byte, err error) int {
	c.proxy = proxyNone
	c.reject(err)
	c.l.bytesIn.Add(uint64(len(in)))
	return len(in)
}

// proxiedConn is a connection whose addresses came from a PROXY protocol
// header: the client's and the address it connected to on the proxy.
type proxiedConn struct {
	loop.Conn
	remote, local netip.AddrPort
}

// RemoteAddr implements loop.Conn: the client's address from the header.
func (p *proxiedConn) RemoteAddr() netip.AddrPort { return p.remote }

// LocalAddr implements loop.Conn: the destination address from the header.
func (p *proxiedConn) LocalAddr() netip.AddrPort { return p.local }
