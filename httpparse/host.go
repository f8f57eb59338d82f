package httpparse

import "bytes"

// Host and authority syntax, RFC 3986 §3.2.2-3.2.3 as used by RFC 9110 §4.2
// and §7.2: uri-host [ ":" port ].

// splitHostPort splits an authority (already free of userinfo) into its host
// and port parts. hasPort reports a ':' after the host. ok is false when the
// host is not a valid IP-literal or reg-name or the port is not 1*5 DIGIT up to
// 65535 (an empty port is valid syntax).
func splitHostPort(a []byte) (host, port []byte, hasPort, ok bool) {
	return splitHostPortComma(a, true)
}

// splitHostPortComma is splitHostPort; with comma false a ',' in a reg-name
// makes it invalid.
func splitHostPortComma(a []byte, comma bool) (host, port []byte, hasPort, ok bool) {
	var i int
	if len(a) > 0 && a[0] == '[' {
		j := 1
		for j < len(a) && a[j] != ']' {
			j++
		}
		if j == len(a) || !validIPLiteral(a[1:j]) {
			return nil, nil, false, false
		}
		i = j + 1
	} else {
		for i < len(a) {
			c := a[i]
			if regNameTab[c] && (comma || c != ',') {
				i++
				continue
			}
			if c == '%' && i+2 < len(a) && hexTab[a[i+1]] && hexTab[a[i+2]] {
				i += 3
				continue
			}
			break
		}
		if i == 0 {
			return nil, nil, false, false // empty host: RFC 9110 §4.2.1
		}
	}
	host = a[:i]
	if i == len(a) {
		return host, nil, false, true
	}
	if a[i] != ':' {
		return nil, nil, false, false
	}
	port = a[i+1:]
	if !validPort(port) {
		return nil, nil, false, false
	}
	return host, port, true, true
}

// validPort accepts *DIGIT with a value up to 65535; leading zeros are
// allowed, as RFC 3986 defines port as plain digits.
func validPort(p []byte) bool {
	v := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		v = v*10 + int(c-'0')
		if v > 65535 {
			return false
		}
	}
	return true
}

// validIPLiteral checks the inside of "[...]": IPv6address or IPvFuture.
// Zone identifiers (RFC 6874) are not accepted in HTTP.
func validIPLiteral(b []byte) bool {
	if len(b) > 0 && (b[0] == 'v' || b[0] == 'V') {
		// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
		i := 1
		for i < len(b) && hexTab[b[i]] {
			i++
		}
		if i == 1 || i == len(b) || b[i] != '.' {
			return false
		}
		i++
		if i == len(b) {
			return false
		}
		for ; i < len(b); i++ {
			if !regNameTab[b[i]] && b[i] != ':' {
				return false
			}
		}
		return true
	}
	return validIPv6(b)
}

// validIPv6 implements RFC 3986's IPv6address: eight h16 groups, or fewer
// with exactly one "::", the last 32 bits optionally as a dotted IPv4address.
func validIPv6(b []byte) bool {
	groups := 0
	elided := false
	i := 0
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		elided = true
		i = 2
		if i == len(b) {
			return true // "::"
		}
	} else if len(b) > 0 && b[0] == ':' {
		return false
	}
	for i < len(b) {
		// one group: h16, or an IPv4address when it is the last one
		j := i
		for j < len(b) && j-i < 5 && hexTab[b[j]] {
			j++
		}
		if j < len(b) && b[j] == '.' {
			if !validIPv4(b[i:]) {
				return false
			}
			groups += 2
			i = len(b)
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		groups++
		i = j
		if i == len(b) {
			break
		}
		if b[i] != ':' {
			return false
		}
		i++
		if i < len(b) && b[i] == ':' {
			if elided {
				return false
			}
			elided = true
			i++
			if i == len(b) {
				break
			}
		} else if i == len(b) {
			return false // trailing single ':'
		}
	}
	if elided {
		return groups <= 7
	}
	return groups == 8
}

// validIPv4 checks dec-octet "." dec-octet "." dec-octet "." dec-octet,
// without leading zeros.
func validIPv4(b []byte) bool {
	parts := 0
	i := 0
	for {
		j := i
		v := 0
		for j < len(b) && j-i < 4 && b[j] >= '0' && b[j] <= '9' {
			v = v*10 + int(b[j]-'0')
			j++
		}
		n := j - i
		if n == 0 || n > 3 || v > 255 || n > 1 && b[i] == '0' {
			return false
		}
		parts++
		if j == len(b) {
			return parts == 4
		}
		if b[j] != '.' || parts == 4 {
			return false
		}
		i = j + 1
	}
}

// validHostField checks a Host field value (RFC 9110 §7.2): a non-empty
// uri-host with an optional port. A comma outside an IP-literal is refused
// although RFC 3986 allows it in a reg-name, because "a, b" is what two Host
// lines combined into one look like (RFC 9110 §5.3).
func validHostField(v []byte) *Error {
	// The usual value, a reg-name of plain bytes with perhaps a port, is
	// decided in one pass; the rest (IP-literals, pct-encoding, errors) by
	// the full syntax below, which agrees on these.
	i := 0
	for i < len(v) && hostTab[v[i]] {
		i++
	}
	if i > 0 && (i == len(v) || v[i] == ':' && validPort(v[i+1:])) {
		return nil
	}
	if len(v) == 0 {
		return errHostEmpty
	}
	if _, _, _, ok := splitHostPortComma(v, false); !ok {
		if bytes.IndexByte(v, ',') >= 0 && v[0] != '[' {
			return errHostList
		}
		return errHostInvalid
	}
	return nil
}
