package engine

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
)

// Proxies says whose forwarding headers the engine believes, with
// Gunicorn's semantics: forwarded_allow_ips lists the peers (addresses or
// CIDRs, or "*") whose X-Forwarded-For, Forwarded and scheme headers
// (secure_scheme_headers) decide the client address and scheme.
type Proxies struct {
	// All trusts every peer ("*").
	All bool
	// Trusted are the trusted peers.
	Trusted []netip.Prefix
	// TrustUnix trusts peers on unix sockets (Gunicorn trusts them always).
	TrustUnix bool
	// SecureHeaders maps an upper-case header name to the value that means
	// the client used TLS, e.g. "X-FORWARDED-PROTO": "https".
	SecureHeaders map[string]string

	// secure is SecureHeaders as a slice sorted by name, made by compile:
	// ranging over a map per request costs a random start and an iterator.
	secure []secureHeader
	// names has bit n set when a header name of n bytes (n < 64) is one
	// the forwarding logic reads: a request with none skips every lookup.
	names uint64
}

// secureHeader is one entry of SecureHeaders.
type secureHeader struct{ name, value string }

// compiled returns a copy of p ready for the request path.
func (p *Proxies) compiled() *Proxies {
	q := *p
	q.secure = make([]secureHeader, 0, len(p.SecureHeaders))
	for name, value := range p.SecureHeaders {
		q.secure = append(q.secure, secureHeader{name, value})
	}
	slices.SortFunc(q.secure, func(a, b secureHeader) int { return strings.Compare(a.name, b.name) })
	q.names = 1<<len("Forwarded") | 1<<len("X-Forwarded-For")
	for _, sh := range q.secure {
		if len(sh.name) < 64 {
			q.names |= 1 << len(sh.name)
		} else {
			q.names = ^uint64(0) // a long name: no shortcut
		}
	}
	return &q
}

// ParseProxies builds Proxies from forwarded_allow_ips entries.
func ParseProxies(allow []string, secure map[string]string) (Proxies, error) {
	p := Proxies{TrustUnix: true, SecureHeaders: map[string]string{}}
	for k, v := range secure {
		p.SecureHeaders[strings.ToUpper(k)] = v
	}
	for _, a := range allow {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
		case a == "*":
			p.All = true
		case strings.Contains(a, "/"):
			pf, err := netip.ParsePrefix(a)
			if err != nil {
				return p, err
			}
			p.Trusted = append(p.Trusted, pf.Masked())
		default:
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return p, err
			}
			p.Trusted = append(p.Trusted, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		}
	}
	return p, nil
}

// trusts reports whether addr is a trusted proxy.
func (p *Proxies) trusts(addr netip.AddrPort) bool {
	if p.All {
		return true
	}
	if !addr.IsValid() {
		return p.TrustUnix
	}
	ip := addr.Addr().Unmap()
	for _, pf := range p.Trusted {
		if pf.Contains(ip) {
			return true
		}
	}
	return false
}

func (p *Proxies) active() bool {
	return p.All || len(p.Trusted) > 0 || p.TrustUnix
}

// applyForwarded sets the client address and scheme from a trusted peer's
// forwarding headers. It returns false when the scheme headers contradict
// each other (the request is answered 400, as Gunicorn does).
func (x *Ctx) applyForwarded(p *Proxies) bool {
	if !p.trusts(x.remote) {
		return true
	}
	if p.names != ^uint64(0) && !x.hasNameLength(p.names) {
		return true // no forwarding header: nothing to apply
	}
	// Scheme: every secure_scheme_headers header present must agree.
	secure, seen := false, false
	for _, sh := range p.secure {
		v := x.Header(sh.name)
		if v == nil {
			continue
		}
		is := asciiEqualFold(bytes.TrimSpace(v), sh.value)
		if seen && is != secure {
			return false
		}
		seen, secure = true, is
	}
	if fw := x.Header("Forwarded"); fw != nil {
		if proto := forwardedParam(lastElement(fw), "proto"); proto != nil {
			is := asciiEqualFold(proto, "https")
			if seen && is != secure {
				return false
			}
			seen, secure = true, is
		}
	}
	x.secure = secure
	// Client address: walk the chain from the nearest hop, skipping
	// trusted proxies; the first untrusted hop is the client.
	if xff := x.Header("X-Forwarded-For"); xff != nil {
		if a, ok := clientFromChain(xff, p, ','); ok {
			x.remote = a
		}
	} else if fw := x.Header("Forwarded"); fw != nil {
		if a, ok := clientFromForwarded(fw, p); ok {
			x.remote = a
		}
	}
	return true
}

// hasNameLength reports whether a request header's name has a length whose
// bit is set in mask.
func (x *Ctx) hasNameLength(mask uint64) bool {
	for i := range x.req.Headers {
		if n := len(x.req.Headers[i].Name); n < 64 && mask&(1<<n) != 0 {
			return true
		}
	}
	return false
}

// clientFromChain picks the client from a comma-separated address list.
func clientFromChain(v []byte, p *Proxies, sep byte) (netip.AddrPort, bool) {
	var last netip.AddrPort
	found := false
	for len(v) > 0 {
		i := bytes.LastIndexByte(v, sep)
		item := bytes.TrimSpace(v[i+1:])
		if i < 0 {
			item = bytes.TrimSpace(v)
			v = nil
		} else {
			v = v[:i]
		}
		a, ok := parseHop(item)
		if !ok {
			return last, found
		}
		last, found = a, true
		if !p.trusts(a) {
			return a, true
		}
	}
	return last, found
}

// clientFromForwarded picks the client from RFC 7239 Forwarded elements.
func clientFromForwarded(v []byte, p *Proxies) (netip.AddrPort, bool) {
	var last netip.AddrPort
	found := false
	for len(v) > 0 {
		i := bytes.LastIndexByte(v, ',')
		el := v[i+1:]
		if i < 0 {
			el, v = v, nil
		} else {
			v = v[:i]
		}
		f := forwardedParam(el, "for")
		if f == nil {
			return last, found
		}
		a, ok := parseHop(f)
		if !ok {
			return last, found
		}
		last, found = a, true
		if !p.trusts(a) {
			return a, true
		}
	}
	return last, found
}

// lastElement returns the last element of a Forwarded list.
func lastElement(v []byte) []byte {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		return v[i+1:]
	}
	return v
}

// forwardedParam returns the value of param in one Forwarded element.
func forwardedParam(el []byte, param string) []byte {
	for len(el) > 0 {
		i := bytes.IndexByte(el, ';')
		pair := el
		if i >= 0 {
			pair, el = el[:i], el[i+1:]
		} else {
			el = nil
		}
		eq := bytes.IndexByte(pair, '=')
		if eq < 0 {
			continue
		}
		if asciiEqualFold(bytes.TrimSpace(pair[:eq]), param) {
			val := bytes.TrimSpace(pair[eq+1:])
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			return val
		}
	}
	return nil
}

// parseHop parses "1.2.3.4", "1.2.3.4:80", "[::1]:80" or "::1".
func parseHop(b []byte) (netip.AddrPort, bool) {
	s := b2s(b)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 0), true
	}
	return netip.AddrPort{}, false
}
