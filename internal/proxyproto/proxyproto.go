// Package proxyproto parses the PROXY protocol header (HAProxy's
// proxy-protocol.txt, versions 1 and 2) that a load balancer sends before
// the client's bytes, so the server learns the client's real address.
//
// It owns the wire format only: Parse reads a header from the front of a
// buffer without allocating, incrementally (it asks for more bytes rather
// than guessing), strictly (anything that does not match the specification
// exactly is an error) and within fixed bounds. It must not touch sockets,
// decide which peers may send a header, or know about HTTP: the engine does
// that (proxy_protocol, proxy_allow_ips).
package proxyproto

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

// Version is a PROXY protocol version.
type Version uint8

const (
	// None means the bytes do not start a PROXY protocol header.
	None Version = 0
	// V1 is the text header ("PROXY TCP4 ...\r\n").
	V1 Version = 1
	// V2 is the binary header (12-byte signature, then a length).
	V2 Version = 2
)

// String names the version for logs.
func (v Version) String() string {
	switch v {
	case V1:
		return "v1"
	case V2:
		return "v2"
	}
	return "none"
}

// Family is the address family and transport a header announces.
type Family uint8

const (
	// Unspec is v1 UNKNOWN, v2 AF_UNSPEC or an unspecified transport: the
	// connection's real endpoints apply.
	Unspec Family = iota
	// TCP4 is TCP over IPv4.
	TCP4
	// TCP6 is TCP over IPv6.
	TCP6
	// UDP4 is UDP over IPv4 (v2 only).
	UDP4
	// UDP6 is UDP over IPv6 (v2 only).
	UDP6
	// UnixStream is a stream unix socket (v2 only); its paths are skipped.
	UnixStream
	// UnixDgram is a datagram unix socket (v2 only); its paths are skipped.
	UnixDgram
)

// String names the family for logs.
func (f Family) String() string {
	switch f {
	case TCP4:
		return "TCP4"
	case TCP6:
		return "TCP6"
	case UDP4:
		return "UDP4"
	case UDP6:
		return "UDP6"
	case UnixStream:
		return "UNIX_STREAM"
	case UnixDgram:
		return "UNIX_DGRAM"
	}
	return "UNSPEC"
}

// Header is a parsed PROXY protocol header.
type Header struct {
	Version Version
	// Local is the v2 LOCAL command: the proxy opened the connection itself
	// (a health check); the connection's real endpoints apply and the
	// address block was ignored.
	Local bool
	// Family is the announced family (Unspec for LOCAL).
	Family Family
	// Src and Dst are the original client and server addresses. They are
	// set for the TCP4, TCP6, UDP4 and UDP6 families of a PROXY command;
	// otherwise they are the zero AddrPort.
	Src, Dst netip.AddrPort
}

// Proxied reports whether the header carries the original TCP endpoints,
// i.e. whether Src should replace the connection's peer address. It is
// false for LOCAL, UNKNOWN/UNSPEC, unix and UDP headers, for which the
// specification says to use the real connection's addresses.
func (h Header) Proxied() bool {
	return !h.Local && (h.Family == TCP4 || h.Family == TCP6)
}

// Size limits.
const (
	// MaxV1Len is the longest v1 line including its CRLF (the spec's
	// worst case, "PROXY UNKNOWN <v6> <v6> 65535 65535\r\n").
	MaxV1Len = 107
	// V2HeaderLen is the fixed part of a v2 header.
	V2HeaderLen = 16
	// MaxV2Payload caps the v2 length field (addresses plus TLVs). The
	// field allows 65535; real senders use well under 1 KiB (addresses
	// are at most 216 bytes, TLVs carry short strings), and a cap keeps
	// a hostile peer from making the server buffer 64 KiB per connection.
	MaxV2Payload = 4096
)

// Error is a malformed header. Every error Parse returns is an *Error
// from a fixed set, so that parsing never allocates.
type Error struct{ msg string }

// Error implements error.
func (e *Error) Error() string { return "proxy protocol: " + e.msg }

// The errors Parse returns.
var (
	ErrNotProxy       = &Error{"not a PROXY protocol header"}
	ErrV1TooLong      = &Error{"v1: no CRLF within 107 bytes"}
	ErrV1BadLineEnd   = &Error{"v1: CR or LF outside the final CRLF"}
	ErrV1BadProto     = &Error{"v1: protocol must be TCP4, TCP6 or UNKNOWN"}
	ErrV1BadFields    = &Error{"v1: expected exactly 'PROXY <proto> <src> <dst> <sport> <dport>' separated by single spaces"}
	ErrV1BadAddr      = &Error{"v1: malformed address"}
	ErrV1BadPort      = &Error{"v1: malformed port"}
	ErrV2BadVersion   = &Error{"v2: version must be 2"}
	ErrV2BadCommand   = &Error{"v2: command must be LOCAL or PROXY"}
	ErrV2BadFamily    = &Error{"v2: unknown address family or transport"}
	ErrV2TooLong      = &Error{"v2: length exceeds the 4096-byte cap"}
	ErrV2ShortAddr    = &Error{"v2: length shorter than the family's address block"}
	ErrV2BadTLV       = &Error{"v2: malformed TLV"}
	ErrV2BadChecksum  = &Error{"v2: CRC32C TLV does not match"}
	ErrV2DuplicateCRC = &Error{"v2: more than one CRC32C TLV"}
)

// v2sig is the 12-byte v2 signature.
const v2sig = "\r\n\r\n\x00\r\nQUIT\n"

// v1prefix starts every v1 line.
const v1prefix = "PROXY "

// Detect reports which version b starts with. ok is false while b is too
// short to tell (a prefix of both a header and something else); with ok
// true, None means b does not start a PROXY protocol header at all. It
// looks at no more than 13 bytes.
func Detect(b []byte) (v Version, ok bool) {
	if len(b) == 0 {
		return None, false
	}
	switch b[0] {
	case 'P':
		if !hasPrefixPartial(b, v1prefix) {
			return None, true
		}
		if len(b) < len(v1prefix) {
			return None, false
		}
		return V1, true
	case '\r':
		if !hasPrefixPartial(b, v2sig) {
			return None, true
		}
		if len(b) < len(v2sig)+1 {
			return None, false
		}
		if b[len(v2sig)]>>4 != 2 {
			return None, true
		}
		return V2, true
	}
	return None, true
}

// hasPrefixPartial reports whether b and p agree on their common length.
func hasPrefixPartial(b []byte, p string) bool {
	n := min(len(b), len(p))
	return string(b[:n]) == p[:n]
}

// Parse reads a PROXY protocol header (either version) from the front of
// b. It returns the header and its length n; n == 0 with a nil error means
// b holds a valid but incomplete header and more bytes are needed. A v1
// header is complete within MaxV1Len bytes and a v2 header within
// V2HeaderLen+MaxV2Payload; past those, or on any deviation from the
// specification, Parse returns an *Error. It never allocates.
func Parse(b []byte) (hdr Header, n int, err error) {
	v, ok := Detect(b)
	if !ok {
		return Header{}, 0, nil
	}
	switch v {
	case V1:
		return parseV1(b)
	case V2:
		return parseV2(b)
	}
	if len(b) > len(v2sig) && hasPrefixPartial(b, v2sig) {
		return Header{}, 0, ErrV2BadVersion
	}
	return Header{}, 0, ErrNotProxy
}

// parseV1 parses a v1 line; b starts with "PROXY ".
func parseV1(b []byte) (Header, int, error) {
	end := -1
	lim := min(len(b), MaxV1Len)
	for i := len(v1prefix); i < lim; i++ {
		switch b[i] {
		case '\n':
			return Header{}, 0, ErrV1BadLineEnd
		case '\r':
			if i+2 > MaxV1Len {
				return Header{}, 0, ErrV1TooLong // the LF would be byte 108
			}
			if i+1 >= len(b) {
				return Header{}, 0, nil // the LF may be next
			}
			if b[i+1] != '\n' {
				return Header{}, 0, ErrV1BadLineEnd
			}
			end = i
		}
		if end >= 0 {
			break
		}
	}
	if end < 0 {
		if len(b) >= MaxV1Len {
			return Header{}, 0, ErrV1TooLong
		}
		return Header{}, 0, nil
	}
	n := end + 2
	line := b[len(v1prefix):end]
	proto, rest := cut(line)
	h := Header{Version: V1}
	switch string(proto) {
	case "UNKNOWN":
		// The receiver must ignore anything before the CRLF.
		return h, n, nil
	case "TCP4":
		h.Family = TCP4
	case "TCP6":
		h.Family = TCP6
	default:
		return Header{}, 0, ErrV1BadProto
	}
	if rest == nil {
		return Header{}, 0, ErrV1BadFields
	}
	var f [4][]byte
	for i := range f {
		f[i], rest = cut(rest)
		if len(f[i]) == 0 || (i < 3 && rest == nil) {
			return Header{}, 0, ErrV1BadFields
		}
	}
	if rest != nil {
		return Header{}, 0, ErrV1BadFields
	}
	var src, dst netip.Addr
	var ok bool
	if h.Family == TCP4 {
		src, ok = parseIPv4(f[0])
		if ok {
			dst, ok = parseIPv4(f[1])
		}
	} else {
		src, ok = parseIPv6(f[0])
		if ok {
			dst, ok = parseIPv6(f[1])
		}
	}
	if !ok {
		return Header{}, 0, ErrV1BadAddr
	}
	sport, ok1 := parsePort(f[2])
	dport, ok2 := parsePort(f[3])
	if !ok1 || !ok2 {
		return Header{}, 0, ErrV1BadPort
	}
	h.Src = netip.AddrPortFrom(src, sport)
	h.Dst = netip.AddrPortFrom(dst, dport)
	return h, n, nil
}

// cut splits b at the first space. rest is nil when there is no space, and
// empty (non-nil) when the space is last.
func cut(b []byte) (field, rest []byte) {
	for i, c := range b {
		if c == ' ' {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

// parseDec parses a decimal number without leading zeros, at most max.
func parseDec(b []byte, maxDigits int, maxVal uint32) (uint32, bool) {
	if len(b) == 0 || len(b) > maxDigits || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	var v uint32
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint32(c-'0')
	}
	if v > maxVal {
		return 0, false
	}
	return v, true
}

func parsePort(b []byte) (uint16, bool) {
	v, ok := parseDec(b, 5, 65535)
	return uint16(v), ok
}

// parseIPv4 parses exactly four dot-separated decimal octets without
// leading zeros.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var a [4]byte
	if !parseIPv4Into(b, a[:]) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}

func parseIPv4Into(b []byte, out []byte) bool {
	part := 0
	start := 0
	for i := 0; i <= len(b); i++ {
		if i < len(b) && b[i] != '.' {
			continue
		}
		if part > 3 {
			return false
		}
		v, ok := parseDec(b[start:i], 3, 255)
		if !ok {
			return false
		}
		out[part] = byte(v)
		part++
		start = i + 1
	}
	return part == 4
}

// parseIPv6 parses an IPv6 address: groups of 1-4 hex digits, at most one
// "::", optionally ending in a dotted IPv4 address (inet_ntop writes
// IPv4-mapped addresses that way). Zones are not allowed.
func parseIPv6(b []byte) (netip.Addr, bool) {
	var a [16]byte
	ellipsis := -1 // byte index in a where "::" was
	i := 0         // bytes of a filled
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		b = b[2:]
		if len(b) == 0 {
			return netip.AddrFrom16(a), true
		}
	}
	for len(b) > 0 {
		// A group, or a trailing dotted IPv4 address.
		j := 0
		var v uint32
		for j < len(b) && j < 5 {
			c := b[j]
			var d byte
			switch {
			case c >= '0' && c <= '9':
				d = c - '0'
			case c >= 'a' && c <= 'f':
				d = c - 'a' + 10
			case c >= 'A' && c <= 'F':
				d = c - 'A' + 10
			default:
				d = 0xff
			}
			if d == 0xff {
				break
			}
			v = v<<4 | uint32(d)
			j++
		}
		if j < len(b) && b[j] == '.' {
			// Embedded IPv4: must be the last 4 bytes.
			if i > 12 || (ellipsis < 0 && i != 12) {
				return netip.Addr{}, false
			}
			if !parseIPv4Into(b, a[i:i+4]) {
				return netip.Addr{}, false
			}
			i += 4
			b = nil
			break
		}
		if j == 0 || j > 4 || i >= 16 {
			return netip.Addr{}, false
		}
		a[i] = byte(v >> 8)
		a[i+1] = byte(v)
		i += 2
		b = b[j:]
		if len(b) == 0 {
			break
		}
		if b[0] != ':' {
			return netip.Addr{}, false
		}
		b = b[1:]
		if len(b) > 0 && b[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			b = b[1:]
			if len(b) == 0 {
				break
			}
		} else if len(b) == 0 {
			return netip.Addr{}, false // trailing single colon
		}
	}
	if ellipsis >= 0 {
		// "::" stands for at least one group of zeros.
		if i >= 16 {
			return netip.Addr{}, false
		}
		n := 16 - i
		copy(a[ellipsis+n:], a[ellipsis:i])
		clear(a[ellipsis : ellipsis+n])
	} else if i != 16 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(a), true
}

// PP2 TLV types asyncd reads.
const (
	tlvCRC32C = 0x03
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroCRC stands in for the checksum field while it is verified; a package
// variable, because a local one escapes through crc32's function pointer.
var zeroCRC [4]byte

// parseV2 parses a binary header; b starts with the signature and a
// version-2 byte.
func parseV2(b []byte) (Header, int, error) {
	if len(b) < V2HeaderLen {
		return Header{}, 0, nil
	}
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 {
		return Header{}, 0, ErrV2BadVersion
	}
	cmd := verCmd & 0xf
	if cmd > 1 {
		return Header{}, 0, ErrV2BadCommand
	}
	length := int(binary.BigEndian.Uint16(b[14:16]))
	if length > MaxV2Payload {
		return Header{}, 0, ErrV2TooLong
	}
	af, tp := fam>>4, fam&0xf
	if cmd == 1 && (af > 3 || tp > 2) {
		return Header{}, 0, ErrV2BadFamily
	}
	n := V2HeaderLen + length
	if len(b) < n {
		return Header{}, 0, nil
	}
	h := Header{Version: V2}
	payload := b[V2HeaderLen:n]
	if cmd == 0 {
		// LOCAL: the family and address block are ignored, whatever they
		// hold; the receiver must still skip length bytes.
		h.Local = true
		return h, n, nil
	}
	if af == 0 || tp == 0 {
		// Unspecified: the address block's size is unknown, so it and
		// any TLVs are skipped.
		return h, n, nil
	}
	var alen int
	switch af {
	case 1:
		alen = 12
		h.Family = TCP4
		if tp == 2 {
			h.Family = UDP4
		}
	case 2:
		alen = 36
		h.Family = TCP6
		if tp == 2 {
			h.Family = UDP6
		}
	case 3:
		alen = 216
		h.Family = UnixStream
		if tp == 2 {
			h.Family = UnixDgram
		}
	}
	if length < alen {
		return Header{}, 0, ErrV2ShortAddr
	}
	switch af {
	case 1:
		src := netip.AddrFrom4([4]byte(payload[0:4]))
		dst := netip.AddrFrom4([4]byte(payload[4:8]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(payload[8:10]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(payload[10:12]))
	case 2:
		src := netip.AddrFrom16([16]byte(payload[0:16]))
		dst := netip.AddrFrom16([16]byte(payload[16:32]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(payload[32:34]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(payload[34:36]))
	}
	if err := checkTLVs(b[:n], V2HeaderLen+alen); err != nil {
		return Header{}, 0, err
	}
	return h, n, nil
}

// checkTLVs walks the TLVs of header hdr starting at off: each must fit,
// and a CRC32C TLV, if present, must match the header.
func checkTLVs(hdr []byte, off int) error {
	crcAt := -1
	for off < len(hdr) {
		if len(hdr)-off < 3 {
			return ErrV2BadTLV
		}
		typ := hdr[off]
		l := int(binary.BigEndian.Uint16(hdr[off+1 : off+3]))
		val := off + 3
		if val+l > len(hdr) {
			return ErrV2BadTLV
		}
		if typ == tlvCRC32C {
			if l != 4 {
				return ErrV2BadTLV
			}
			if crcAt >= 0 {
				return ErrV2DuplicateCRC
			}
			crcAt = val
		}
		off = val + l
	}
	if crcAt < 0 {
		return nil
	}
	// The checksum covers the whole header with its own field zeroed.
	sum := crc32.Update(0, castagnoli, hdr[:crcAt])
	sum = crc32.Update(sum, castagnoli, zeroCRC[:])
	sum = crc32.Update(sum, castagnoli, hdr[crcAt+4:])
	if sum != binary.BigEndian.Uint32(hdr[crcAt:crcAt+4]) {
		return ErrV2BadChecksum
	}
	return nil
}
