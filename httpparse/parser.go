package httpparse

import (
	"bytes"
	"encoding/binary"
	"math"
	"unsafe"
)

// Parser states.
const (
	stInit   uint8 = iota // nothing parsed yet
	stLine                // inside the request line (or the empty lines before it)
	stFields              // request line done, inside the field lines
	stDone                // head complete
)

// Request-line phases: where the resumable request-line scanner stands.
const (
	phLead   uint8 = iota // at the start of a line before the request line
	phLeadLF              // after the CR of a leading empty line
	phMethod
	phTarget
	phPct1 // after '%' in the target
	phPct2 // after '%' HEXDIG
	phVersion
)

// Parser parses one request head at a time. It is per connection and keeps
// incremental state between calls so that a head arriving in pieces is still
// scanned in linear time; call Reset before the next request.
type Parser struct {
	Limits Limits

	// noHostCheck lets this package's tests get the parser-only verdict of
	// conformance vectors that are about Host at server level.
	noHostCheck bool
	// slowOnly turns the fast paths (fastLine, hostField, completeField)
	// off, so this package's tests can check that they agree with the
	// scanners.
	slowOnly bool

	lim Limits // Limits with defaults, fixed for the current head

	head // what Reset clears

	// Set before they are read in every head, so Reset leaves them.
	methodEnd, targetStart, targetEnd, versionStart int
	// where the previous call's buffer was, to re-point slices if the
	// caller moved the bytes between calls. An address, not a pointer: it
	// is only compared (req's slices keep that buffer alive while they
	// matter), and a Parser without pointers is reset without write
	// barriers.
	base    uintptr
	baseCap int
}

// head is the Parser's state that must start at zero for every head; kept
// small, as Reset runs once per request.
type head struct {
	lfScan  int      // how far the search for the request line's LF got
	pos     int      // next byte of the request line to look at
	line    lineScan // the current field line
	lead    int      // leading empty lines skipped
	rlStart int
	query   int // index after the target's first '?', 0 if none
	hosts   int

	// The bytes last, together, so that the struct has no holes.
	state    uint8
	phase    uint8
	lineEnd  bool // the request line's LF has arrived
	brackets bool // '[' or ']' in the target

	clSeen                              bool
	teSeen, teChunked, teFinal, teOther bool
	connClose, connKeepAlive, connUpg   bool
	upgradeField                        bool
	expect100, expectOther              bool
}

// Reset prepares the parser for the next request head.
func (p *Parser) Reset() {
	p.head = head{}
}

// ParseHead parses the head of the request that starts at buf[0] into req.
//
// buf holds the same request's bytes on every call, possibly longer than on
// the previous call (more input appended, same start); the bytes may have
// moved in memory. ParseHead returns (n, nil) with n == req.HeadLen once the
// head is complete, (0, nil) when more input is needed (never an error for a
// valid prefix), or (0, err) with err an *Error. Each byte is examined a
// bounded number of times however the input is split, and limits are
// enforced as soon as the bytes seen prove them exceeded.
//
// The first call for a head resets req (keeping its Headers backing array,
// allocated here once with capacity Limits.MaxHeaderCount). After an error
// the connection is done: Reset before parsing anything else.
func (p *Parser) ParseHead(buf []byte, req *Request) (int, error) {
	if len(buf) == 0 {
		if p.state == stDone {
			return req.HeadLen, nil
		}
		return 0, nil
	}
	switch p.state {
	case stInit:
		p.lim = p.Limits.withDefaults()
		if cap(req.Headers) < p.lim.MaxHeaderCount {
			req.Headers = make([]Header, 0, p.lim.MaxHeaderCount)
		}
		req.Reset()
		p.state = stLine
	case stDone:
		return req.HeadLen, nil
	default:
		if len(buf) < max(p.pos, p.line.pos) {
			return 0, errInputShrunk
		}
		if bufAddr(buf) != p.base || cap(buf) != p.baseCap {
			p.rebase(buf, req)
		}
	}
	p.base, p.baseCap = bufAddr(buf), cap(buf)
	if p.state == stLine {
		// A first look that finds a complete, ordinary request line
		// needs no deferral: that line has its LF.
		ok := false
		if p.lfScan == 0 && !p.lineEnd && !p.slowOnly {
			var err error
			if ok, err = p.fastLine(buf, req); err != nil {
				return 0, err
			}
		}
		if !ok {
			if !p.lineEnd && p.deferLine(buf) {
				return 0, nil
			}
			if err := p.requestLine(buf, req); err != nil {
				return 0, err
			}
			if p.state == stLine {
				return 0, nil
			}
		}
	}
	n, err := p.fields(buf, req)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// bufAddr is the address of buf's first byte; buf is not empty.
func bufAddr(buf []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(buf))) }

// deferLine reports whether the request line should wait for more bytes
// before it is judged: its LF has not arrived, it is within the length
// limit, it does not start with whitespace, and every byte so far is
// printable ASCII or SP. A request that has
// barely started (the tail of a pipelined read, a slow client) is then never
// answered early, while bytes no request line can hold (a TLS handshake, a
// control character, CR) and overlong lines are judged at once. Every rule
// still applies when the line is complete. The scan resumes where it
// stopped, so the work stays linear.
func (p *Parser) deferLine(buf []byte) bool {
	if buf[0] == ' ' || buf[0] == '\t' {
		p.lineEnd = true // whitespace before the request line: judge now
		return false
	}
	for i := p.lfScan; i < len(buf); i++ {
		b := buf[i]
		if b == '\n' {
			p.lineEnd = true
			return false
		}
		if b < ' ' || b > '~' {
			p.lineEnd = true // judge now
			return false
		}
	}
	p.lfScan = len(buf)
	// Leading empty lines are CRLFs, which end the deferral at once, so
	// the whole buffer here is the request line.
	return len(buf) <= p.lim.MaxRequestLine
}

// rebase re-points req's slices at buf after the caller moved the bytes. A
// slice's offset in the old buffer is baseCap - cap(slice), as every slice
// was cut from that buffer.
func (p *Parser) rebase(buf []byte, req *Request) {
	if p.state != stFields {
		return // nothing sliced yet
	}
	re := func(s []byte) []byte {
		if s == nil {
			return nil
		}
		off := p.baseCap - cap(s)
		return buf[off : off+len(s)]
	}
	req.Method = re(req.Method)
	req.Target = re(req.Target)
	req.Path = re(req.Path)
	req.Query = re(req.Query)
	req.Host = re(req.Host)
	for i := range req.Headers {
		h := &req.Headers[i]
		h.Name = re(h.Name)
		h.Value = re(h.Value)
	}
}

// fields parses field lines from the line scanner's position until the
// empty line ending the head. Lines met whole at their first look go
// through completeField; the scanner takes the rest, and every error.
func (p *Parser) fields(buf []byte, req *Request) (int, error) {
	for {
		if s := p.line.start; p.line.pos == s && !p.slowOnly {
			// Locals: the stores to req and p below would make the
			// compiler load these again on every line.
			maxField, maxCount := p.lim.MaxFieldSize, p.lim.MaxHeaderCount
			for {
				if s+2 <= len(buf) && binary.LittleEndian.Uint16(buf[s:]) == crlf {
					return p.finishHead(req, s+2) // the empty line, as scan would find it
				}
				name, value, lf, ok := hostField(buf, s, maxField)
				host, plain := ok, ok
				if !ok {
					if name, value, lf, ok = completeField(buf, s, maxField); !ok {
						break
					}
					host = len(name) == 4 && binary.LittleEndian.Uint32(name)|0x20202020 == hostWord
				}
				// addField, by hand: this loop is the hot path.
				if len(req.Headers) >= maxCount {
					return 0, errTooManyFields
				}
				req.Headers = append(req.Headers, Header{Name: name, Value: value})
				var err *Error
				if plain {
					err = p.onPlainHost(value, req)
				} else if host {
					err = p.onHost(value, req) // as fieldSemantics would, one call sooner
				} else {
					err = p.fieldSemantics(name, value, req)
				}
				if err != nil {
					return 0, err
				}
				s = lf + 1
			}
			p.line.reset(s)
		}
		res, lf, err := p.line.scan(buf, p.lim.MaxFieldSize, len(req.Headers) == 0)
		switch {
		case err != nil:
			return 0, err
		case res == lineMore:
			return 0, nil
		case res == lineEmpty:
			return p.finishHead(req, lf+1)
		}
		name, value := p.line.field(buf, lf)
		if err := p.addField(name, value, req); err != nil {
			return 0, err
		}
		p.line.reset(lf + 1)
	}
}

// addField appends a complete field line to req.Headers and interprets it.
func (p *Parser) addField(name, value []byte, req *Request) *Error {
	if len(req.Headers) >= p.lim.MaxHeaderCount {
		return errTooManyFields
	}
	req.Headers = append(req.Headers, Header{Name: name, Value: value})
	return p.fieldSemantics(name, value, req)
}

// fieldSemantics interprets the fields that frame or route the request. It
// switches on the name's length first so that most fields cost one compare.
func (p *Parser) fieldSemantics(name, value []byte, req *Request) *Error {
	switch len(name) {
	case 4:
		if binary.LittleEndian.Uint32(name)|0x20202020 == hostWord { // tokenEqualFold(name, "host")
			return p.onHost(value, req)
		}
	case 6:
		if tokenEqualFold(name, "expect") {
			p.onExpect(value)
		}
	case 7:
		if tokenEqualFold(name, "upgrade") {
			p.upgradeField = true
		}
	case 10:
		if tokenEqualFold(name, "connection") {
			p.onConnection(value)
		}
	case 14:
		if tokenEqualFold(name, "content-length") {
			return p.onContentLength(value, req)
		}
	case 17:
		if tokenEqualFold(name, "transfer-encoding") {
			return p.onTransferEncoding(value)
		}
	}
	return nil
}

// onHost enforces one valid Host field (RFC 9112 §3.2, RFC 9110 §7.2), for
// HTTP/1.0 too. It is validated even when an absolute-form target overrides
// it: RFC 9112 §3.2 makes any invalid Host value a 400. An empty one is
// accepted there: RFC 9112 §3.2.2 says to ignore the field and use the
// target's authority, and notes that the field may be empty. A second
// Host is refused as such, whatever its value.
func (p *Parser) onHost(v []byte, req *Request) *Error {
	if p.hosts == 0 && (len(v) != 0 || req.Form != AbsoluteForm) {
		if err := validHostField(v); err != nil {
			return err
		}
	}
	return p.onPlainHost(v, req)
}

// onPlainHost is onHost for a value known valid (hostField found it a
// plain reg-name); small enough to be inlined into the field loop.
func (p *Parser) onPlainHost(v []byte, req *Request) *Error {
	p.hosts++
	if p.hosts > 1 {
		return errHostMultiple
	}
	if req.Form == OriginForm || req.Form == AsteriskForm {
		req.Host = v
	}
	return nil
}

// onContentLength accepts exactly one field of 1*DIGIT (RFC 9110 §8.6, RFC
// 9112 §6.3); lists, even of identical values, and repeated fields are
// rejected rather than collapsed.
func (p *Parser) onContentLength(v []byte, req *Request) *Error {
	if p.clSeen {
		return errCLMultiple
	}
	p.clSeen = true
	if len(v) == 0 {
		return errCLInvalid
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			if c == ',' {
				return errCLList
			}
			return errCLInvalid
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return errCLOverflow
		}
		n = n*10 + d
	}
	req.ContentLength = n
	return nil
}

// onTransferEncoding reads one Transfer-Encoding line's codings (RFC 9112
// §6.1, §7): members must be bare tokens (no parameters: none of ours take
// any), chunked may appear once; the final-coding and unknown-coding
// verdicts wait for the whole head. An empty member (`chunked,`, `,chunked`,
// an empty line) is refused, not skipped as RFC 9110 §5.6.1 allows: nginx
// and net/http do not read those as chunked, and a proxy that frames a
// body its peers frame differently smuggles requests.
func (p *Parser) onTransferEncoding(v []byte) *Error {
	p.teSeen = true
	if len(v) == 0 {
		return errTEEmptyMember
	}
	for len(v) > 0 {
		m := v
		if c := bytes.IndexByte(v, ','); c >= 0 {
			m, v = v[:c], v[c+1:]
			if len(v) == 0 {
				return errTEEmptyMember // a trailing comma
			}
		} else {
			v = nil
		}
		m = trimOWS(m)
		if len(m) == 0 {
			return errTEEmptyMember
		}
		for _, c := range m {
			if !tokenTab[c] {
				return errTEInvalid
			}
		}
		if tokenEqualFold(m, "chunked") {
			if p.teChunked {
				return errTEChunkedTwice
			}
			p.teChunked, p.teFinal = true, true
			continue
		}
		if !p.teChunked {
			p.teOther = true
		}
		p.teFinal = false
	}
	return nil
}

// onConnection notes the connection options asyncd acts on. Other options
// are ignored, and so is malformed syntax: Connection cannot change framing.
func (p *Parser) onConnection(v []byte) {
	for len(v) > 0 {
		m := v
		if c := bytes.IndexByte(v, ','); c >= 0 {
			m, v = v[:c], v[c+1:]
		} else {
			v = nil
		}
		m = trimOWS(m)
		switch {
		case equalFold(m, "close"):
			p.connClose = true
		case equalFold(m, "keep-alive"):
			p.connKeepAlive = true
		case equalFold(m, "upgrade"):
			p.connUpg = true
		}
	}
}

// onExpect notes 100-continue and any other expectation (RFC 9110 §10.1.1);
// empty list members are skipped.
func (p *Parser) onExpect(v []byte) {
	for len(v) > 0 {
		m := v
		if c := bytes.IndexByte(v, ','); c >= 0 {
			m, v = v[:c], v[c+1:]
		} else {
			v = nil
		}
		m = trimOWS(m)
		switch {
		case len(m) == 0:
		case equalFold(m, "100-continue"):
			p.expect100 = true
		default:
			p.expectOther = true
		}
	}
}

// finishHead applies the checks that need the whole head, malformed framing
// (400) first, then the size limit (413), then what the server does not
// implement (501, 417), and fills req's summary fields.
func (p *Parser) finishHead(req *Request, end int) (int, error) {
	v11 := req.Minor >= 1
	if v11 && p.hosts == 0 && !p.noHostCheck {
		return 0, errHostMissing
	}
	if p.teSeen {
		switch {
		case !v11:
			return 0, errTEHTTP10
		case p.clSeen:
			return 0, errTEWithCL
		case !p.teFinal:
			return 0, errTENotChunked
		}
	}
	if req.ContentLength > p.lim.MaxBodySize {
		return 0, errBodyTooLarge
	}
	if p.teOther {
		return 0, errTEUnsupported
	}
	if p.expectOther {
		return 0, errExpectation
	}
	req.Chunked = p.teSeen
	req.KeepAlive = !p.connClose && (v11 || p.connKeepAlive)
	req.Upgrade = v11 && p.connUpg && p.upgradeField
	req.Expect100 = v11 && p.expect100
	req.HeadLen = end
	p.state = stDone
	return end, nil
}
