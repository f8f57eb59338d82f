package engine

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"

	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/internal/allowlist"
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
	l, err := allowlist.Parse(allow)
	if err != nil {
		return p, err
	}
	p.All, p.Trusted = l.Any, l.Prefixes
	return p, nil
}

// trusts reports whether addr is a trusted proxy.
func (p *Proxies) trusts(addr netip.AddrPort) bool {
	if !addr.IsValid() {
		return p.TrustUnix
	}
	return allowlist.List{Any: p.All, Prefixes: p.Trusted}.Contains(addr.Addr())
}

// applyForwarded sets the client address and scheme from a trusted peer's
// forwarding headers. It returns false when the scheme headers contradict
// each other (the request is answered 400, as Gunicorn does).
//
// Every header is read as one list: repeated field lines combine, in
// order, as if joined with commas (RFC 9110 §5.3), so a line a proxy
// appends (HAProxy's option forwardfor adds its own X-Forwarded-For line)
// counts as the list's last member, never the client's first line.
//
// The client is the right-most hop of X-Forwarded-For (or, without it, of
// Forwarded's for=) that is not a trusted proxy: walking from the nearest
// hop, trusted proxies are skipped, and what lies further left was
// written by the client itself. The scheme is read at the same position:
// each scheme header's member as far from the right as the chosen hop,
// or its left-most member when it has fewer (a proxy that set the header
// once, for the hop it received). Every scheme header present must agree.
func (x *Ctx) applyForwarded(p *Proxies) bool {
	if !p.trusts(x.remote) {
		return true
	}
	if p.names != ^uint64(0) && !x.hasNameLength(p.names) {
		return true // no forwarding header: nothing to apply
	}
	hop := 0 // the chosen hop's position from the right
	if xff := x.fieldList("X-Forwarded-For"); xff.present() {
		if a, at, ok := clientFrom(xff, p, false); ok {
			x.remote, hop = a, at
		}
	} else if fw := x.fieldList("Forwarded"); fw.present() {
		if a, at, ok := clientFrom(fw, p, true); ok {
			x.remote, hop = a, at
		}
	}
	// Scheme: every secure_scheme_headers header present must agree.
	secure, seen := false, false
	for _, sh := range p.secure {
		l := x.fieldList(sh.name)
		v, ok := l.member(hop)
		if !ok {
			continue
		}
		is := asciiEqualFold(v, sh.value)
		if seen && is != secure {
			return false
		}
		seen, secure = true, is
	}
	fw := x.fieldList("Forwarded")
	if el, ok := fw.member(hop); ok {
		if proto := forwardedParam(el, "proto"); proto != nil {
			is := asciiEqualFold(proto, "https")
			if seen && is != secure {
				return false
			}
			secure = is
		}
	}
	x.secure = secure
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

// fieldList is every field line of one name read as one comma-separated
// list (RFC 9110 §5.3), walked from its last member back. It is a value
// on the caller's stack and allocates nothing.
type fieldList struct {
	hs   []httpparse.Header
	name string
	line int    // the line rest comes from; lines before it are still to walk
	rest []byte // the current line's members not walked yet
	open bool   // rest holds a line's members
}

// fieldList returns the request's list named name, ready to walk.
func (x *Ctx) fieldList(name string) fieldList {
	return fieldList{hs: x.req.Headers, name: name, line: len(x.req.Headers)}
}

// present reports whether the request has a field line named name.
func (l fieldList) present() bool {
	for i := range l.hs {
		if asciiEqualFold(l.hs[i].Name, l.name) {
			return true
		}
	}
	return false
}

// prev returns the member before the last one returned (the last member on
// the first call), without surrounding whitespace; false once none is
// left. Empty members are skipped (RFC 9110 §5.6.1).
func (l *fieldList) prev() ([]byte, bool) {
	for {
		for !l.open {
			if l.line == 0 {
				return nil, false
			}
			l.line--
			if h := &l.hs[l.line]; asciiEqualFold(h.Name, l.name) {
				l.rest, l.open = h.Value, true
			}
		}
		m := l.rest
		if i := bytes.LastIndexByte(l.rest, ','); i >= 0 {
			m, l.rest = l.rest[i+1:], l.rest[:i]
		} else {
			l.open = false
		}
		if m = bytes.TrimSpace(m); len(m) > 0 {
			return m, true
		}
	}
}

// member returns the member at position n from the right (0: the last),
// or the first member when the list has fewer; false for no member.
func (l fieldList) member(n int) ([]byte, bool) {
	var v []byte
	found := false
	for i := 0; i <= n; i++ {
		m, ok := l.prev()
		if !ok {
			break
		}
		v, found = m, true
	}
	return v, found
}

// clientFrom picks the client from an address list: X-Forwarded-For, or
// with forwarded the for= parameters of RFC 7239 Forwarded elements. It is
// the first hop from the right that is not a trusted proxy, or the
// farthest one that parses when every hop is trusted or one does not
// parse; at is its position from the right.
func clientFrom(l fieldList, p *Proxies, forwarded bool) (a netip.AddrPort, at int, found bool) {
	for i := 0; ; i++ {
		item, ok := l.prev()
		if ok && forwarded {
			item = forwardedParam(item, "for")
			ok = item != nil
		}
		if !ok {
			return a, at, found
		}
		hop, ok := parseHop(item)
		if !ok {
			return a, at, found
		}
		a, at, found = hop, i, true
		if !p.trusts(hop) {
			return a, at, true
		}
	}
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

// parseHop parses "1.2.3.4", "1.2.3.4:80", "[::1]:80", "[::1]" or "::1".
// It picks the parser by the hop's shape, so that a well-formed hop
// allocates nothing (a failed netip parse allocates its error).
func parseHop(b []byte) (netip.AddrPort, bool) {
	s := b2s(b)
	var ap netip.AddrPort
	var err error
	switch {
	case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
		var a netip.Addr
		a, err = netip.ParseAddr(s[1 : len(s)-1])
		ap = netip.AddrPortFrom(a, 0)
	case len(s) > 0 && s[0] == '[', strings.Count(s, ":") == 1:
		ap, err = netip.ParseAddrPort(s)
	default:
		var a netip.Addr
		a, err = netip.ParseAddr(s)
		ap = netip.AddrPortFrom(a, 0)
	}
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}
