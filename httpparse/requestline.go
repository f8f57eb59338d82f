package httpparse

import (
	"bytes"
	"encoding/binary"
)

// requestLine runs the resumable request-line scanner over buf[p.pos:]:
// method SP request-target SP HTTP-version CRLF (RFC 9112 §3), with the
// leading empty lines RFC 9112 §2.2 lets a server skip. Errors are found in
// byte order, and the length limit is checked before each content byte, so
// the verdict does not depend on how the input was split.
func (p *Parser) requestLine(buf []byte, req *Request) error {
	if p.pos == 0 && !p.slowOnly {
		if ok, err := p.fastLine(buf, req); ok {
			return err
		}
	}
	i, n := p.pos, len(buf)
	for i < n {
		switch p.phase {
		case phLead:
			switch buf[i] {
			case '\r':
				p.phase = phLeadLF
				i++
			case '\n':
				return errBareLF
			default:
				p.rlStart = i
				p.phase = phMethod
			}
		case phLeadLF:
			if buf[i] != '\n' {
				return errBareCR
			}
			p.lead++
			if p.lead > MaxLeadingEmptyLines {
				return errTooManyEmptyLine
			}
			i++
			p.phase = phLead
		case phMethod:
			end := min(n, p.rlStart+p.lim.MaxRequestLine)
			for i < end && tokenTab[buf[i]] {
				i++
			}
			if i == n {
				break
			}
			if i == end {
				return errRequestLineTooLong
			}
			if buf[i] != ' ' {
				if buf[i] == '\t' {
					return errRequestLineWS
				}
				return errMethod
			}
			if i == p.rlStart {
				return errMethodEmpty
			}
			p.methodEnd = i
			i++
			p.targetStart = i
			p.phase = phTarget
		case phTarget:
			end := min(n, p.rlStart+p.lim.MaxRequestLine)
			for i < end && targetTab[buf[i]] {
				i++
			}
			if i == n {
				break
			}
			if i == end {
				return errRequestLineTooLong
			}
			switch buf[i] {
			case ' ':
				if i == p.targetStart {
					return errTargetEmpty
				}
				p.targetEnd = i
				i++
				p.versionStart = i
				p.phase = phVersion
			case '?':
				if p.query == 0 {
					p.query = i + 1
				}
				i++
			case '%':
				i++
				p.phase = phPct1
			case '[', ']':
				p.brackets = true
				i++
			case '#':
				return errTargetFragment
			case '\r', '\n':
				if i == p.targetStart {
					return errTargetEmpty
				}
				return errHTTP09
			case '\t':
				return errRequestLineWS
			default:
				return errTargetChar
			}
		case phPct1, phPct2:
			if i >= p.rlStart+p.lim.MaxRequestLine {
				return errRequestLineTooLong
			}
			if !hexTab[buf[i]] {
				return errTargetPercent
			}
			i++
			if p.phase == phPct1 {
				p.phase = phPct2
			} else {
				p.phase = phTarget
			}
		case phVersion:
			// "HTTP/" DIGIT "." DIGIT CRLF, case-sensitive (RFC 9112 §2.3)
			k := i - p.versionStart
			c := buf[i]
			switch {
			case k < 8:
				if i >= p.rlStart+p.lim.MaxRequestLine {
					return errRequestLineTooLong
				}
				ok := false
				switch k {
				case 5, 7:
					ok = c >= '0' && c <= '9'
				case 6:
					ok = c == '.'
				default:
					ok = c == "HTTP/"[k]
				}
				if !ok {
					if c == ' ' || c == '\t' {
						return errRequestLineWS
					}
					return errVersion
				}
				i++
			case k == 8:
				if c != '\r' {
					if c == '\n' {
						return errBareLF
					}
					if c == ' ' || c == '\t' {
						return errRequestLineWS
					}
					return errVersion
				}
				i++
			default:
				if c != '\n' {
					return errBareCR
				}
				p.pos = i + 1
				return p.lineDone(buf, req)
			}
		}
	}
	p.pos = i
	return nil
}

// fastLine recognises a complete, ordinary request line at the start of
// buf in straight-line code and records it as the scanner in requestLine
// would, then finishes it: the commonest outcome, an HTTP/1.x origin-form
// target of any method but CONNECT, is filled in here as finishRequestLine
// would fill it, the rest is left to finishRequestLine. Anything unusual
// (leading empty lines, '[', a line not complete yet, any error) returns
// ok false and is left to the scanner, which stays the one place deciding
// errors.
func (p *Parser) fastLine(buf []byte, req *Request) (ok bool, err error) {
	// Content bytes lie below len(b); slicing once lets the loops index
	// without bounds checks.
	b := buf[:min(len(buf), p.lim.MaxRequestLine)]
	i := 0
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) == methodGET {
		i = 3
	} else {
		for i < len(b) && tokenTab[b[i]] {
			i++
		}
		if i == 0 || i >= len(b) || b[i] != ' ' {
			return false, nil
		}
	}
	methodEnd := i
	i++
	ts, query := i, 0
	for {
		for i < len(b) && targetTab[b[i]] {
			i++
		}
		if i >= len(b) {
			return false, nil
		}
		if c := b[i]; c == '?' {
			if query == 0 {
				query = i + 1
			}
			i++
			continue
		} else if c == '%' && i+2 < len(b) && hexTab[b[i+1]] && hexTab[b[i+2]] {
			i += 3
			continue
		}
		break
	}
	if i == ts || b[i] != ' ' {
		return false, nil
	}
	te := i
	i++
	// "HTTP/" DIGIT "." DIGIT CRLF: the version's 8 bytes count against the
	// limit, its CRLF does not.
	if i+10 > len(buf) || i+8 > p.lim.MaxRequestLine {
		return false, nil
	}
	// One word holds the version; its bytes are taken from it, not from
	// buf again, so that the compiler loads it once instead of byte by
	// byte.
	w := binary.LittleEndian.Uint64(buf[i:])
	major, minor := byte(w>>40), byte(w>>56)
	if w != versionHTTP11 && w != versionHTTP10 {
		if w&(1<<40-1) != versionHTTP11&(1<<40-1) || major-'0' > 9 || byte(w>>48) != '.' || minor-'0' > 9 {
			return false, nil
		}
	}
	if binary.LittleEndian.Uint16(buf[i+8:]) != crlf {
		return false, nil
	}
	p.pos = i + 10
	method := b[:methodEnd]
	if b[ts] != '/' || major != '1' || string(method) == "CONNECT" {
		p.methodEnd, p.targetStart, p.targetEnd, p.versionStart, p.query = methodEnd, ts, te, i, query
		return true, p.lineDone(buf, req)
	}
	target := b[ts:te]
	req.Method, req.Target, req.Path = method, target, target
	req.Major, req.Minor, req.Form = 1, minor-'0', OriginForm
	if query > 0 {
		req.Path, req.Query = b[ts:query-1], b[query:te]
	}
	p.line.reset(p.pos)
	p.state = stFields
	return true, nil
}

// Little-endian words of the bytes fastLine and fields look for first.
const (
	methodGET     = 'G' | 'E'<<8 | 'T'<<16 | ' '<<24
	versionHTTP11 = 'H' | 'T'<<8 | 'T'<<16 | 'P'<<24 | '/'<<32 | '1'<<40 | '.'<<48 | '1'<<56
	versionHTTP10 = 'H' | 'T'<<8 | 'T'<<16 | 'P'<<24 | '/'<<32 | '1'<<40 | '.'<<48 | '0'<<56
	crlf          = '\r' | '\n'<<8
	hostWord      = 'h' | 'o'<<8 | 's'<<16 | 't'<<24
)

// lineDone moves on to the field lines once the request line ended just
// before p.pos.
func (p *Parser) lineDone(buf []byte, req *Request) error {
	p.line.reset(p.pos)
	p.state = stFields
	return p.finishRequestLine(buf, req)
}

// finishRequestLine checks the complete request line's version and target
// form (RFC 9112 §2.3, §3.2) and fills req.
func (p *Parser) finishRequestLine(buf []byte, req *Request) error {
	v := buf[p.versionStart:]
	if v[5] != '1' {
		return errVersionUnsupported
	}
	req.Major, req.Minor = 1, v[7]-'0'
	method := buf[p.rlStart:p.methodEnd]
	target := buf[p.targetStart:p.targetEnd]
	req.Method, req.Target = method, target
	connect := string(method) == "CONNECT"
	switch {
	case target[0] == '/':
		if connect {
			return errConnectForm
		}
		if p.brackets {
			return errTargetChar // '[' and ']' only belong in an IP-literal
		}
		req.Form = OriginForm
		req.Path = target
		if p.query > 0 {
			req.Path, req.Query = buf[p.targetStart:p.query-1], buf[p.query:p.targetEnd]
		}
	case len(target) == 1 && target[0] == '*':
		if string(method) != "OPTIONS" {
			return errAsteriskForm
		}
		req.Form = AsteriskForm
		req.Path = target[:0]
	case connect:
		// authority-form = uri-host ":" port (RFC 9112 §3.2.3)
		for _, c := range target {
			if c == '@' || c == '/' || c == '?' {
				return errConnectForm
			}
		}
		_, port, hasPort, ok := splitHostPort(target)
		if !ok || !hasPort || len(port) == 0 {
			return errConnectForm
		}
		req.Form = AuthorityForm
		req.Path = target[:0]
		req.Host = target
	default:
		return p.absoluteForm(target, req)
	}
	return nil
}

// absoluteForm parses scheme "://" authority path-abempty [ "?" query ]
// (RFC 9112 §3.2.2). An absolute-URI without an authority ("urn:x") names
// nothing this server could route to and is rejected.
func (p *Parser) absoluteForm(t []byte, req *Request) error {
	c := t[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return errTargetForm
	}
	i := 1
	for i < len(t) {
		c = t[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' {
			i++
			continue
		}
		break
	}
	if i+3 > len(t) || t[i] != ':' || t[i+1] != '/' || t[i+2] != '/' {
		return errTargetForm
	}
	i += 3
	a := i
	for i < len(t) && t[i] != '/' && t[i] != '?' {
		if t[i] == '@' {
			return errTargetUserinfo // RFC 9110 §4.2.4
		}
		i++
	}
	authority := t[a:i]
	if _, _, _, ok := splitHostPort(authority); !ok {
		return errTargetHost
	}
	rest := t[i:]
	if p.brackets {
		for _, c := range rest {
			if c == '[' || c == ']' {
				return errTargetChar
			}
		}
	}
	req.Form = AbsoluteForm
	req.Host = authority
	req.Path, req.Query = splitQuery(rest)
	return nil
}

// splitQuery splits a target at its first '?'.
func splitQuery(t []byte) (path, query []byte) {
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		return t[:q], t[q+1:]
	}
	return t, nil
}
