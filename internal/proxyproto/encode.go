package proxyproto

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// AppendV1 appends h as a v1 line. A header that is not Proxied (LOCAL,
// Unspec, unix, UDP) is written as "PROXY UNKNOWN\r\n". It is for tests
// and for handlers that relay a client's address to an upstream that
// expects the PROXY protocol.
func AppendV1(b []byte, h Header) []byte {
	if !h.Proxied() {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	b = append(b, v1prefix...)
	if h.Family == TCP4 {
		b = append(b, "TCP4 "...)
	} else {
		b = append(b, "TCP6 "...)
	}
	b = h.Src.Addr().AppendTo(b)
	b = append(b, ' ')
	b = h.Dst.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Src.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Dst.Port()), 10)
	return append(b, '\r', '\n')
}

// AppendV2 appends h as a v2 header with no TLVs: LOCAL when h.Local or
// the family has no addresses asyncd can write (Unspec, unix), PROXY
// otherwise. It returns an error when Src and Dst do not match the family.
func AppendV2(b []byte, h Header) ([]byte, error) {
	b = append(b, v2sig...)
	if h.Local || h.Family == Unspec || h.Family == UnixStream || h.Family == UnixDgram {
		return append(b, 0x20, 0x00, 0x00, 0x00), nil
	}
	var fam byte
	var alen int
	switch h.Family {
	case TCP4:
		fam, alen = 0x11, 12
	case UDP4:
		fam, alen = 0x12, 12
	case TCP6:
		fam, alen = 0x21, 36
	case UDP6:
		fam, alen = 0x22, 36
	default:
		return b, fmt.Errorf("proxyproto: cannot encode family %s", h.Family)
	}
	src, dst := h.Src.Addr(), h.Dst.Addr()
	b = append(b, 0x21, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(alen))
	if alen == 12 {
		if !src.Is4() || !dst.Is4() {
			return b, fmt.Errorf("proxyproto: %s needs IPv4 addresses, got %s and %s", h.Family, src, dst)
		}
		s, d := src.As4(), dst.As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		if !src.Is6() || !dst.Is6() {
			return b, fmt.Errorf("proxyproto: %s needs IPv6 addresses, got %s and %s", h.Family, src, dst)
		}
		s, d := src.As16(), dst.As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, h.Src.Port())
	return binary.BigEndian.AppendUint16(b, h.Dst.Port()), nil
}
