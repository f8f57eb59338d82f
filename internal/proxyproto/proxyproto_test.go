package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"strings"
	"testing"
)

var v2s = []byte(v2sig)

// v2 builds a v2 header: ver_cmd, fam, then payload (length filled in).
func v2(verCmd, fam byte, payload ...[]byte) []byte {
	var p []byte
	for _, x := range payload {
		p = append(p, x...)
	}
	b := append([]byte(nil), v2s...)
	b = append(b, verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	return append(b, p...)
}

func ip4(s string) []byte { a := netip.MustParseAddr(s).As4(); return a[:] }
func ip6(s string) []byte { a := netip.MustParseAddr(s).As16(); return a[:] }
func port(p uint16) []byte {
	return binary.BigEndian.AppendUint16(nil, p)
}
func tlv(typ byte, val []byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, uint16(len(val)))
	return append(b, val...)
}

// withCRC fills the CRC32C TLV (the last 4 bytes of h) as a sender must.
func withCRC(h []byte) []byte {
	sum := crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParse(t *testing.T) {
	v4payload := [][]byte{ip4("192.168.0.1"), ip4("192.168.0.11"), port(56324), port(443)}
	v6payload := [][]byte{ip6("2001:db8::1"), ip6("2001:db8::2"), port(1), port(65535)}
	unixPayload := make([]byte, 216)
	copy(unixPayload, "/run/client.sock")
	crcHdr := withCRC(v2(0x21, 0x11, ip4("10.0.0.1"), ip4("10.0.0.2"), port(1000), port(80),
		tlv(0x02, []byte("example.com")), tlv(0x03, make([]byte, 4))))
	badCRC := append([]byte(nil), crcHdr...)
	badCRC[len(badCRC)-1] ^= 1
	long := "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"

	tests := []struct {
		name string
		in   []byte
		want Header
		n    int // -1: the whole input
		err  error
	}{
		// Version 1, from the specification's examples and limits.
		{name: "v1 tcp4 spec example", in: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"),
			want: Header{Version: V1, Family: TCP4, Src: ap("192.168.0.1:56324"), Dst: ap("192.168.0.11:443")}, n: 47},
		{name: "v1 tcp4 max", in: []byte("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
			want: Header{Version: V1, Family: TCP4, Src: ap("255.255.255.255:65535"), Dst: ap("255.255.255.255:65535")}, n: 56},
		{name: "v1 tcp6 max", in: []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			want: Header{Version: V1, Family: TCP6, Src: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Dst: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}, n: 104},
		{name: "v1 tcp6 compressed", in: []byte("PROXY TCP6 2001:db8::1 ::1 0 8080\r\n"),
			want: Header{Version: V1, Family: TCP6, Src: ap("[2001:db8::1]:0"), Dst: ap("[::1]:8080")}, n: -1},
		{name: "v1 tcp6 upper hex, trailing ::", in: []byte("PROXY TCP6 2001:DB8:: FE80::A:B 1 2\r\n"),
			want: Header{Version: V1, Family: TCP6, Src: ap("[2001:db8::]:1"), Dst: ap("[fe80::a:b]:2")}, n: -1},
		{name: "v1 tcp6 v4-mapped", in: []byte("PROXY TCP6 ::ffff:10.1.2.3 ::ffff:10.1.2.4 5 6\r\n"),
			want: Header{Version: V1, Family: TCP6, Src: ap("[::ffff:10.1.2.3]:5"), Dst: ap("[::ffff:10.1.2.4]:6")}, n: -1},
		{name: "v1 unknown short", in: []byte("PROXY UNKNOWN\r\n"), want: Header{Version: V1}, n: 15},
		{name: "v1 unknown worst case 107", in: []byte(long), want: Header{Version: V1}, n: 107},
		{name: "v1 unknown ignores the rest", in: []byte("PROXY UNKNOWN whatever ~!@ \r\n"), want: Header{Version: V1}, n: -1},

		{name: "v1 incomplete", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2"), n: 0},
		{name: "v1 incomplete before LF", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"), n: 0},
		{name: "v1 prefix only", in: []byte("PROX"), n: 0},
		{name: "v1 no CRLF in 107", in: []byte("PROXY UNKNOWN " + strings.Repeat("a", 93)), err: ErrV1TooLong},
		{name: "v1 CRLF at 108", in: []byte("PROXY UNKNOWN " + strings.Repeat("a", 92) + "\r\n"), err: ErrV1TooLong},
		{name: "v1 bare LF", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), err: ErrV1BadLineEnd},
		{name: "v1 bare CR", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx"), err: ErrV1BadLineEnd},
		{name: "v1 lower-case proto", in: []byte("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), err: ErrV1BadProto},
		{name: "v1 udp", in: []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), err: ErrV1BadProto},
		{name: "v1 empty proto", in: []byte("PROXY \r\n"), err: ErrV1BadProto},
		{name: "v1 double space", in: []byte("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), err: ErrV1BadFields},
		{name: "v1 trailing space", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), err: ErrV1BadFields},
		{name: "v1 missing port", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), err: ErrV1BadFields},
		{name: "v1 extra field", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), err: ErrV1BadFields},
		{name: "v1 tcp4 no fields", in: []byte("PROXY TCP4\r\n"), err: ErrV1BadFields},
		{name: "v1 leading zero octet", in: []byte("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 octet > 255", in: []byte("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 three octets", in: []byte("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 five octets", in: []byte("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 v6 address in TCP4", in: []byte("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 v4 address in TCP6", in: []byte("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 two ellipses", in: []byte("PROXY TCP6 1::2::3 ::1 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 group of 5 digits", in: []byte("PROXY TCP6 12345::1 ::1 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 nine groups", in: []byte("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 seven groups", in: []byte("PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 zone", in: []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), err: ErrV1BadAddr},
		{name: "v1 port leading zero", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), err: ErrV1BadPort},
		{name: "v1 port too big", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), err: ErrV1BadPort},
		{name: "v1 port sign", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"), err: ErrV1BadPort},

		// Version 2.
		{name: "v2 tcp4", in: v2(0x21, 0x11, v4payload...),
			want: Header{Version: V2, Family: TCP4, Src: ap("192.168.0.1:56324"), Dst: ap("192.168.0.11:443")}, n: -1},
		{name: "v2 tcp4 then data", in: append(v2(0x21, 0x11, v4payload...), "GET / HTTP/1.1\r\n"...),
			want: Header{Version: V2, Family: TCP4, Src: ap("192.168.0.1:56324"), Dst: ap("192.168.0.11:443")}, n: 28},
		{name: "v2 udp4", in: v2(0x21, 0x12, v4payload...),
			want: Header{Version: V2, Family: UDP4, Src: ap("192.168.0.1:56324"), Dst: ap("192.168.0.11:443")}, n: -1},
		{name: "v2 tcp6", in: v2(0x21, 0x21, v6payload...),
			want: Header{Version: V2, Family: TCP6, Src: ap("[2001:db8::1]:1"), Dst: ap("[2001:db8::2]:65535")}, n: 52},
		{name: "v2 unix stream", in: v2(0x21, 0x31, unixPayload), want: Header{Version: V2, Family: UnixStream}, n: 232},
		{name: "v2 unix dgram", in: v2(0x21, 0x32, unixPayload), want: Header{Version: V2, Family: UnixDgram}, n: 232},
		{name: "v2 local no address", in: v2(0x20, 0x00), want: Header{Version: V2, Local: true}, n: 16},
		{name: "v2 local skips an address block", in: v2(0x20, 0x11, v4payload...), want: Header{Version: V2, Local: true}, n: 28},
		{name: "v2 local ignores the family byte", in: v2(0x20, 0xff, []byte{1, 2, 3}), want: Header{Version: V2, Local: true}, n: 19},
		{name: "v2 proxy unspec", in: v2(0x21, 0x00, []byte{9, 9, 9}), want: Header{Version: V2}, n: 19},
		{name: "v2 proxy inet unspec transport", in: v2(0x21, 0x10, v4payload...), want: Header{Version: V2}, n: 28},
		{name: "v2 tlvs skipped", in: v2(0x21, 0x11, append(append(v4payload, tlv(0x01, []byte("h2"))), tlv(0x04, nil), tlv(0xE0, []byte("x")))...),
			want: Header{Version: V2, Family: TCP4, Src: ap("192.168.0.1:56324"), Dst: ap("192.168.0.11:443")}, n: -1},
		{name: "v2 crc32c ok", in: crcHdr,
			want: Header{Version: V2, Family: TCP4, Src: ap("10.0.0.1:1000"), Dst: ap("10.0.0.2:80")}, n: -1},
		{name: "v2 crc32c mismatch", in: badCRC, err: ErrV2BadChecksum},
		{name: "v2 crc32c wrong length", in: v2(0x21, 0x11, append(v4payload, tlv(0x03, []byte{1, 2}))...), err: ErrV2BadTLV},
		{name: "v2 two crc32c", in: v2(0x21, 0x11, append(v4payload, tlv(0x03, make([]byte, 4)), tlv(0x03, make([]byte, 4)))...), err: ErrV2DuplicateCRC},
		{name: "v2 truncated tlv header", in: v2(0x21, 0x11, append(v4payload, []byte{0x01, 0x00})...), err: ErrV2BadTLV},
		{name: "v2 tlv overruns", in: v2(0x21, 0x11, append(v4payload, []byte{0x01, 0x00, 0x05, 'a'})...), err: ErrV2BadTLV},

		{name: "v2 signature only", in: v2s, n: 0},
		{name: "v2 partial signature", in: v2s[:5], n: 0},
		{name: "v2 fixed part incomplete", in: v2(0x21, 0x11, v4payload...)[:15], n: 0},
		{name: "v2 address incomplete", in: v2(0x21, 0x11, v4payload...)[:20], n: 0},
		{name: "v2 version 1", in: v2(0x11, 0x11, v4payload...), err: ErrV2BadVersion},
		{name: "v2 version 3", in: v2(0x31, 0x11, v4payload...)[:13], err: ErrV2BadVersion},
		{name: "v2 command 2", in: v2(0x22, 0x11, v4payload...), err: ErrV2BadCommand},
		{name: "v2 family 4", in: v2(0x21, 0x41, v4payload...), err: ErrV2BadFamily},
		{name: "v2 transport 3", in: v2(0x21, 0x13, v4payload...), err: ErrV2BadFamily},
		{name: "v2 short inet block", in: v2(0x21, 0x11, make([]byte, 11)), err: ErrV2ShortAddr},
		{name: "v2 short inet6 block", in: v2(0x21, 0x21, make([]byte, 35)), err: ErrV2ShortAddr},
		{name: "v2 short unix block", in: v2(0x21, 0x31, make([]byte, 215)), err: ErrV2ShortAddr},
		{name: "v2 over the cap", in: append(append([]byte(nil), v2s...), 0x21, 0x11, 0x10, 0x01), err: ErrV2TooLong},

		// Neither.
		{name: "http request", in: []byte("GET / HTTP/1.1\r\n"), err: ErrNotProxy},
		{name: "P but not PROXY", in: []byte("POST / HTTP/1.1\r\n"), err: ErrNotProxy},
		{name: "PROXY without space", in: []byte("PROXYTCP4"), err: ErrNotProxy},
		{name: "CR but not v2", in: []byte("\r\nGET"), err: ErrNotProxy},
		{name: "empty", in: nil, n: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := Parse(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Parse(%q) err = %v, want %v", tt.in, err, tt.err)
				}
				if n != 0 || h != (Header{}) {
					t.Fatalf("an error must come with n == 0 and a zero header, got n=%d %+v", n, h)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			wantN := tt.n
			if wantN < 0 {
				wantN = len(tt.in)
			}
			if n != wantN {
				t.Fatalf("n = %d, want %d", n, wantN)
			}
			if n == 0 {
				return
			}
			if h != tt.want {
				t.Fatalf("header = %+v, want %+v", h, tt.want)
			}
			// Every strict prefix of a complete header asks for more bytes.
			for k := 0; k < n; k++ {
				if ph, pn, perr := Parse(tt.in[:k]); pn != 0 || perr != nil || ph != (Header{}) {
					t.Fatalf("prefix of %d bytes: n=%d err=%v, want need-more", k, pn, perr)
				}
			}
		})
	}
}

func TestProxied(t *testing.T) {
	tests := []struct {
		h    Header
		want bool
	}{
		{Header{Version: V1, Family: TCP4}, true},
		{Header{Version: V2, Family: TCP6}, true},
		{Header{Version: V2, Family: TCP4, Local: true}, false},
		{Header{Version: V1}, false},
		{Header{Version: V2, Family: UDP4}, false},
		{Header{Version: V2, Family: UnixStream}, false},
	}
	for _, tt := range tests {
		if got := tt.h.Proxied(); got != tt.want {
			t.Errorf("%+v.Proxied() = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		in     string
		want   Version
		wantOK bool
	}{
		{"", None, false},
		{"P", None, false},
		{"PROXY", None, false},
		{"PROXY ", V1, true},
		{"PROXY TCP4", V1, true},
		{"PUT / HTTP/1.1", None, true},
		{"GET /", None, true},
		{"\r\n\r\n", None, false},
		{v2sig, None, false},
		{v2sig + "\x21", V2, true},
		{v2sig + "\x11", None, true},
		{"\r\n\r\nX", None, true},
	}
	for _, tt := range tests {
		v, ok := Detect([]byte(tt.in))
		if v != tt.want || ok != tt.wantOK {
			t.Errorf("Detect(%q) = %v, %v; want %v, %v", tt.in, v, ok, tt.want, tt.wantOK)
		}
	}
}

func TestAppendRoundTrip(t *testing.T) {
	hs := []Header{
		{Version: V1, Family: TCP4, Src: ap("1.2.3.4:5"), Dst: ap("6.7.8.9:65535")},
		{Version: V1, Family: TCP6, Src: ap("[2001:db8::1]:0"), Dst: ap("[::ffff:1.2.3.4]:80")},
		{Version: V1},
		{Version: V2, Family: TCP4, Src: ap("1.2.3.4:5"), Dst: ap("6.7.8.9:65535")},
		{Version: V2, Family: TCP6, Src: ap("[2001:db8::1]:1"), Dst: ap("[fe80::1]:2")},
		{Version: V2, Family: UDP6, Src: ap("[2001:db8::1]:1"), Dst: ap("[fe80::1]:2")},
		{Version: V2, Local: true},
	}
	for _, h := range hs {
		var b []byte
		if h.Version == V1 {
			b = AppendV1(nil, h)
		} else {
			var err error
			if b, err = AppendV2(nil, h); err != nil {
				t.Fatal(err)
			}
		}
		got, n, err := Parse(b)
		if err != nil || n != len(b) || got != h {
			t.Errorf("round trip %+v via %q: got %+v n=%d err=%v", h, b, got, n, err)
		}
	}
	if _, err := AppendV2(nil, Header{Version: V2, Family: TCP4, Src: ap("[::1]:1"), Dst: ap("1.2.3.4:5")}); err == nil {
		t.Error("AppendV2 accepted an IPv6 source for TCP4")
	}
}

func TestParseAllocs(t *testing.T) {
	inputs := [][]byte{
		[]byte("PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1234 443\r\n"),
		withCRC(v2(0x21, 0x11, ip4("10.0.0.1"), ip4("10.0.0.2"), port(1000), port(80), tlv(0x03, make([]byte, 4)))),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 02\r\n"), // error path
	}
	for _, in := range inputs {
		if a := testing.AllocsPerRun(100, func() { Parse(in) }); a != 0 { //nolint:errcheck
			t.Errorf("Parse(%q) allocates %v times", in, a)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	inputs := []struct {
		name string
		in   []byte
	}{
		{"v1-tcp4", []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n")},
		{"v1-tcp6", []byte("PROXY TCP6 2001:db8:85a3::8a2e:370:7334 2001:db8::2 56324 443\r\n")},
		{"v2-tcp4", v2(0x21, 0x11, ip4("192.168.0.1"), ip4("192.168.0.11"), port(56324), port(443))},
		{"v2-tcp6-tlv", v2(0x21, 0x21, ip6("2001:db8::1"), ip6("2001:db8::2"), port(1), port(2), tlv(0x02, []byte("example.com")))},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, n, err := Parse(in.in); n == 0 || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// FuzzParse checks Parse's contract on arbitrary input: no panic; n within
// bounds; a complete header's every prefix asks for more bytes and the
// header re-parses alone to the same result; an error on a prefix stays an
// error with more bytes appended; and a header re-encoded by AppendV1 or
// AppendV2 parses back to the same addresses.
func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 1 2\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(0x21, 0x11, ip4("1.2.3.4"), ip4("5.6.7.8"), port(1), port(2), tlv(0x04, []byte("pad"))))
	f.Add(v2(0x21, 0x21, ip6("::1"), ip6("::2"), port(1), port(2)))
	f.Add(v2(0x20, 0x00))
	f.Add(withCRC(v2(0x21, 0x11, ip4("10.0.0.1"), ip4("10.0.0.2"), port(1000), port(80), tlv(0x03, make([]byte, 4)))))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error with n=%d", n)
			}
			more := append(append([]byte(nil), b...), "\r\n\r\nPROXY TCP4 1.2.3.4 1.2.3.4 1 1\r\n"...)
			if _, _, err2 := Parse(more); err2 == nil {
				t.Fatalf("%q is an error (%v) but %q is not", b, err, more)
			}
			return
		}
		if n < 0 || n > len(b) {
			t.Fatalf("n=%d out of range for %d bytes", n, len(b))
		}
		if n == 0 {
			if len(b) >= V2HeaderLen+MaxV2Payload {
				t.Fatalf("still asking for more after %d bytes", len(b))
			}
			return
		}
		if n > MaxV1Len && h.Version == V1 || n > V2HeaderLen+MaxV2Payload {
			t.Fatalf("header of %d bytes exceeds the bound", n)
		}
		h2, n2, err2 := Parse(b[:n])
		if h2 != h || n2 != n || err2 != nil {
			t.Fatalf("re-parse of the header alone: %+v %d %v, want %+v %d", h2, n2, err2, h, n)
		}
		for _, k := range []int{0, 1, n / 2, n - 1} {
			if _, pn, perr := Parse(b[:k]); pn != 0 || perr != nil {
				t.Fatalf("prefix %d of a valid header: n=%d err=%v", k, pn, perr)
			}
		}
		if h.Proxied() {
			var enc []byte
			if h.Version == V1 {
				enc = AppendV1(nil, h)
			} else {
				enc, err = AppendV2(nil, h)
				if err != nil {
					t.Fatal(err)
				}
			}
			h3, _, err3 := Parse(enc)
			if err3 != nil || h3 != h {
				t.Fatalf("re-encoded %+v as %q, parsed back %+v %v", h, enc, h3, err3)
			}
		}
		if h.Version == V1 && !bytes.HasSuffix(b[:n], []byte("\r\n")) {
			t.Fatalf("v1 header %q does not end in CRLF", b[:n])
		}
	})
}

// FuzzAddr checks the address parsers against net/netip: they must agree
// on every input, except that v1 forbids zones.
func FuzzAddr(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "01.2.3.4", "::", "::1", "1::", "2001:db8::1", "::ffff:1.2.3.4",
		"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "1:2:3:4:5:6:1.2.3.4", "fe80::1%eth0", "1::2::3", ":1", "1:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := netip.ParseAddr(s)
		if werr == nil && want.Zone() != "" {
			werr = errors.New("zone")
		}
		got4, ok4 := parseIPv4([]byte(s))
		if ok4 != (werr == nil && want.Is4()) || ok4 && got4 != want {
			t.Fatalf("parseIPv4(%q) = %v %v; netip: %v %v", s, got4, ok4, want, werr)
		}
		got6, ok6 := parseIPv6([]byte(s))
		if ok6 != (werr == nil && want.Is6()) || ok6 && got6 != want {
			t.Fatalf("parseIPv6(%q) = %v %v; netip: %v %v", s, got6, ok6, want, werr)
		}
	})
}
