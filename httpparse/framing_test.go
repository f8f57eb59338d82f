package httpparse

import (
	"math"
	"testing"
)

func hostCase(value string, err *Error) headCase {
	r := "valid"
	if err != nil {
		r = "invalid"
	}
	return headCase{rule: "RFC 9110 §7.2 " + r + " Host " + value, raw: "GET / HTTP/1.1\r\nHost: " + value + "\r\n\r\n", err: err,
		check: checkMsg(func(m msg) bool { return m.Host == value }, "Host")}
}

// hostCases covers RFC 9112 §3.2 and RFC 9110 §7.2 (uri-host [":" port]).
func hostCases() []headCase {
	cases := []headCase{
		{rule: "§3.2 HTTP/1.1 without Host", raw: "GET / HTTP/1.1\r\n\r\n", err: errHostMissing},
		{rule: "§3.2 CONNECT without Host", raw: "CONNECT h:443 HTTP/1.1\r\n\r\n", err: errHostMissing},
		{rule: "§3.2 HTTP/1.0 without Host", raw: "GET / HTTP/1.0\r\n\r\n", check: checkMsg(func(m msg) bool { return m.Host == "" }, "no Host")},
		{rule: "§3.2 two Host lines", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", err: errHostMultiple},
		{rule: "§3.2 two identical Host lines", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", err: errHostMultiple},
		{rule: "§3.2 two Host lines in HTTP/1.0", raw: "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", err: errHostMultiple},
		{rule: "§3.2 Host name is case-insensitive", raw: "GET / HTTP/1.1\r\nhOST: a\r\n\r\n", check: checkMsg(func(m msg) bool { return m.Host == "a" }, "Host")},
		{rule: "§3.2 Host list", raw: "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", err: errHostList},
		{rule: "§3.2 Host list without space", raw: "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", err: errHostList},
		{rule: "RFC 9110 §4.2.1 empty Host in 1.1", raw: "GET / HTTP/1.1\r\nHost: \r\n\r\n", err: errHostEmpty},
		{rule: "RFC 9110 §4.2.1 empty Host in 1.0", raw: "GET / HTTP/1.0\r\nHost:\r\n\r\n", err: errHostEmpty},
		{rule: "§3.2 control character in Host", raw: "GET / HTTP/1.1\r\nHost: \x06\r\n\r\n", err: errFieldValueCTL},
		hostCase("example.com", nil),
		hostCase("example.com:8080", nil),
		hostCase("example.com:", nil),
		hostCase("example.com.", nil),
		hostCase("1.2.3.4", nil),
		hostCase("1.2.3.4:65535", nil),
		hostCase("foo-bar_baz.com", nil),
		hostCase("0.0.0.0=5000", nil),
		hostCase("%41.example", nil),
		hostCase("[::1]", nil),
		hostCase("[::1]:80", nil),
		hostCase("[::]", nil),
		hostCase("[1:2:3:4:5:6:7:8]", nil),
		hostCase("[1:2:3:4:5:6:1.2.3.4]", nil),
		hostCase("[::ffff:12.30.67.89]", nil),
		hostCase("[abcd::ef98:0:7654:321]:80", nil),
		hostCase("[1::]", nil),
		hostCase("[::1:2:3:4:5:6:7]", nil),
		hostCase("[1:2:3:4:5:6:7::]", nil),
		hostCase("[1:2:3::4:5:6:7]", nil),
		hostCase("[v1.x:y]", nil),
		hostCase("[v0123456789aBcDeF.!$&'()*+,;=-._~AbCd:]", nil),
		hostCase("user@h", errHostInvalid),
		hostCase("h/path", errHostInvalid),
		hostCase("::1", errHostInvalid),
		hostCase(":80", errHostInvalid),
		hostCase("a:1:2", errHostInvalid),
		hostCase("h:65536", errHostInvalid),
		hostCase("h:-1", errHostInvalid),
		hostCase("h:1.2", errHostInvalid),
		hostCase("[::1", errHostInvalid),
		hostCase("[::1].", errHostInvalid),
		hostCase("[::1]x", errHostInvalid),
		hostCase("x[::1]", errHostInvalid),
		hostCase("[::1%25en0]", errHostInvalid),
		hostCase("[1:2:3:4:5:6:7:8:9]", errHostInvalid),
		hostCase("[1:2:3:4:5:6:7]", errHostInvalid),
		hostCase("[1::2::3]", errHostInvalid),
		hostCase("[1:2:3:4:5:6:7::8]", errHostInvalid),
		hostCase("[::1:2:3:4:5:6:7:8]", errHostInvalid),
		hostCase("[1:2:3:4:5:6:7:8::]", errHostInvalid),
		hostCase("[::1:2:3:4:5:6:1.2.3.4]", errHostInvalid),
		hostCase("[12345::]", errHostInvalid),
		hostCase("[:1]", errHostInvalid),
		hostCase("[1:]", errHostInvalid),
		hostCase("[::1.2.3]", errHostInvalid),
		hostCase("[::1.2.3.256]", errHostInvalid),
		hostCase("[::01.2.3.4]", errHostInvalid),
		hostCase("[1.2.3.4]", errHostInvalid),
		hostCase("[v.x]", errHostInvalid),
		hostCase("[v1.]", errHostInvalid),
		hostCase("[]", errHostInvalid),
		hostCase("{", errHostInvalid),
		hostCase("h\\x", errHostInvalid),
		hostCase("%4", errHostInvalid),
		hostCase("\xff", errHostInvalid),
	}
	return cases
}

// TestHost runs hostCases.
func TestHost(t *testing.T) { runHeadCases(t, hostCases()) }

// contentLengthCases covers RFC 9110 §8.6 and RFC 9112 §6.3.
func contentLengthCases() []headCase {
	post := func(cl, body string) string {
		return "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + cl + "\r\n\r\n" + body
	}
	cl := func(n int64) func(*testing.T, msg) {
		return checkMsg(func(m msg) bool { return m.ContentLength == n && !m.Chunked }, "Content-Length")
	}
	cases := []headCase{
		{rule: "§6.3(7) no framing field: ContentLength -1, no body", raw: "POST / HTTP/1.1\r\nHost: a\r\n\r\n", check: cl(-1)},
		{rule: "§8.6 zero", raw: post("0", ""), check: cl(0)},
		{rule: "§8.6 body read", raw: post("5", "hello"), check: checkMsg(func(m msg) bool { return m.ContentLength == 5 && m.Body == "hello" }, "body")},
		{rule: "§8.6 leading zeros are decimal", raw: post("0010", "0123456789"), check: cl(10)},
		{rule: "§8.6 00 is zero", raw: post("00", ""), check: cl(0)},
		{rule: "§8.6 OWS around the value", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\t 5 \t\r\n\r\nhello", check: cl(5)},
		{rule: "§8.6 name case-insensitive", raw: "POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 1\r\n\r\nx", check: cl(1)},
		{rule: "§8.6 GET keeps its declared body", raw: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", check: cl(2)},
		{rule: "§8.6 largest int64 is valid syntax", lim: Limits{MaxBodySize: math.MaxInt64}, raw: post("9223372036854775807", ""), incomplete: true},
		{rule: "§8.6 2^63 overflows", raw: post("9223372036854775808", ""), err: errCLOverflow},
		{rule: "§8.6 20 digits overflow", raw: post("99999999999999999999", ""), err: errCLOverflow},
		{rule: "§8.6 empty", raw: post("", ""), err: errCLInvalid},
		{rule: "§8.6 letters", raw: post("abc", ""), err: errCLInvalid},
		{rule: "§8.6 plus sign", raw: post("+5", "hello"), err: errCLInvalid},
		{rule: "§8.6 minus sign", raw: post("-1", ""), err: errCLInvalid},
		{rule: "§8.6 minus zero", raw: post("-0", ""), err: errCLInvalid},
		{rule: "§8.6 hex", raw: post("0x5", ""), err: errCLInvalid},
		{rule: "§8.6 octal prefix", raw: post("0o5", ""), err: errCLInvalid},
		{rule: "§8.6 underscore", raw: post("1_0", ""), err: errCLInvalid},
		{rule: "§8.6 space inside", raw: post("1 0", ""), err: errCLInvalid},
		{rule: "§8.6 trailing letter", raw: post("1Z", ""), err: errCLInvalid},
		{rule: "§8.6 list of different values", raw: post("5, 10", ""), err: errCLList},
		{rule: "§8.6 list of identical values (strict)", raw: post("5, 5", "hello"), err: errCLList},
		{rule: "§8.6 list without space", raw: post("5,5", "hello"), err: errCLList},
		{rule: "§8.6 two lines, different", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", err: errCLMultiple},
		{rule: "§8.6 two lines, identical (strict)", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", err: errCLMultiple},
		{rule: "§8.6 Content_Length is another field", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent_Length: 99\r\n\r\nhi", check: cl(2)},
		{rule: "413 over MaxBodySize", lim: Limits{MaxBodySize: 4}, raw: post("5", "hello"), err: errBodyTooLarge},
		{rule: "413 at MaxBodySize", lim: Limits{MaxBodySize: 5}, raw: post("5", "hello"), check: cl(5)},
		{rule: "413 default MaxBodySize is 100 MiB", raw: post("104857601", ""), err: errBodyTooLarge},
		{rule: "413 default MaxBodySize, at the limit", raw: post("104857600", ""), incomplete: true},
		{rule: "§6.3 body incomplete", raw: post("10", "hello"), incomplete: true},
	}
	return cases
}

// TestContentLength runs contentLengthCases.
func TestContentLength(t *testing.T) { runHeadCases(t, contentLengthCases()) }

// transferEncodingCases covers RFC 9112 §6.1, §6.3 and §7.
func transferEncodingCases() []headCase {
	te := func(fields string) string {
		return "POST / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n0\r\n\r\n"
	}
	chunked := checkMsg(func(m msg) bool { return m.Chunked && m.ContentLength == -1 }, "chunked")
	return []headCase{
		{rule: "§6.1 chunked", raw: te("Transfer-Encoding: chunked\r\n"), check: chunked},
		{rule: "§6.1 coding names are case-insensitive", raw: te("Transfer-Encoding: cHuNkEd\r\n"), check: chunked},
		{rule: "§6.1 field name case-insensitive", raw: te("TRANSFER-ENCODING: chunked\r\n"), check: chunked},
		{rule: "§6.1 OWS around chunked", raw: te("Transfer-Encoding: \t chunked \t\r\n"), check: chunked},
		{rule: "empty member refused: leading comma", raw: te("Transfer-Encoding: ,chunked\r\n"), err: errTEEmptyMember},
		{rule: "empty member refused: leading comma and OWS", raw: te("Transfer-Encoding: , chunked\r\n"), err: errTEEmptyMember},
		{rule: "empty member refused: trailing comma", raw: te("Transfer-Encoding: chunked,\r\n"), err: errTEEmptyMember},
		{rule: "empty member refused: trailing comma and OWS", raw: te("Transfer-Encoding: chunked , \r\n"), err: errTEEmptyMember},
		{rule: "empty member refused: in the middle", raw: te("Transfer-Encoding: gzip,,chunked\r\n"), err: errTEEmptyMember},
		{rule: "empty member refused: OWS and empty members", raw: te("Transfer-Encoding: , ,\tchunked , \r\n"), err: errTEEmptyMember},
		{rule: "empty member refused: empty line before chunked", raw: te("Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n"), err: errTEEmptyMember},
		{rule: "empty member refused: empty line after chunked", raw: te("Transfer-Encoding: chunked\r\nTransfer-Encoding: \r\n"), err: errTEEmptyMember},
		{rule: "§6.1 Transfer_Encoding is another field", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 1\r\n\r\nx",
			check: checkMsg(func(m msg) bool { return !m.Chunked && m.ContentLength == 1 }, "not chunked")},
		{rule: "§6.3(4) gzip alone", raw: te("Transfer-Encoding: gzip\r\n"), err: errTENotChunked},
		{rule: "§6.3(4) identity", raw: te("Transfer-Encoding: identity\r\n"), err: errTENotChunked},
		{rule: "§6.3(4) unknown coding alone", raw: te("Transfer-Encoding: pigeons\r\n"), err: errTENotChunked},
		{rule: "§6.3(4) chunkedchunked is not chunked", raw: te("Transfer-Encoding: chunkedchunked\r\n"), err: errTENotChunked},
		{rule: "§6.3(4) chunked not final", raw: te("Transfer-Encoding: chunked, gzip\r\n"), err: errTENotChunked},
		{rule: "§6.3(4) chunked not final across lines", raw: te("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"), err: errTENotChunked},
		{rule: "§6.3(4) empty value", raw: te("Transfer-Encoding: \r\n"), err: errTEEmptyMember},
		{rule: "§6.3(4) only empty members", raw: te("Transfer-Encoding: , ,\r\n"), err: errTEEmptyMember},
		{rule: "§7 chunked twice in one line", raw: te("Transfer-Encoding: chunked, chunked\r\n"), err: errTEChunkedTwice},
		{rule: "§7 chunked twice across lines", raw: te("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), err: errTEChunkedTwice},
		{rule: "§6.1 known coding before chunked -> 501", raw: te("Transfer-Encoding: gzip, chunked\r\n"), err: errTEUnsupported},
		{rule: "§6.1 coding line before chunked line -> 501", raw: te("Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n"), err: errTEUnsupported},
		{rule: "§6.1 unknown coding before chunked -> 501", raw: te("Transfer-Encoding: x-custom, chunked\r\n"), err: errTEUnsupported},
		{rule: "§6.1 parameters are refused", raw: te("Transfer-Encoding: chunked;ext=val\r\n"), err: errTEInvalid},
		{rule: "§6.1 VT before chunked", raw: te("Transfer-Encoding: \x0bchunked\r\n"), err: errFieldValueCTL},
		{rule: "§6.1 NUL after chunked", raw: te("Transfer-Encoding: chunked\x00\r\n"), err: errFieldValueNUL},
		{rule: "§6.1 obs-text around chunked", raw: te("Transfer-Encoding: \xffchunked\xff\r\n"), err: errTEInvalid},
		{rule: "§6.1 space inside a coding", raw: te("Transfer-Encoding: chun ked\r\n"), err: errTEInvalid},
		{rule: "§6.1 TE with CL", raw: te("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), err: errTEWithCL},
		{rule: "§6.1 CL with TE", raw: te("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), err: errTEWithCL},
		{rule: "§6.1 CL with TE: ,chunked", raw: te("Content-Length: 5\r\nTransfer-Encoding: , chunked\r\n"), err: errTEEmptyMember},
		{rule: "§6.1 invalid CL with TE", raw: te("Content-Length: x\r\nTransfer-Encoding: chunked\r\n"), err: errCLInvalid},
		{rule: "§6.1 TE in HTTP/1.0", raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", err: errTEHTTP10},
		{rule: "§6.1 TE and CL in HTTP/1.0", raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", err: errTEHTTP10},
	}
}

// TestTransferEncoding runs transferEncodingCases.
func TestTransferEncoding(t *testing.T) { runHeadCases(t, transferEncodingCases()) }

// headSemanticsCases covers Connection (RFC 9112 §9.3), Expect (RFC 9110
// §10.1.1), Upgrade (RFC 9110 §7.8) and the order of end-of-head verdicts.
func headSemanticsCases() []headCase {
	ka := func(want bool) func(*testing.T, msg) {
		return checkMsg(func(m msg) bool { return m.KeepAlive == want }, "KeepAlive")
	}
	req := func(version, fields string) string {
		return "GET / " + version + "\r\nHost: a\r\n" + fields + "\r\n"
	}
	return []headCase{
		{rule: "§9.3 HTTP/1.1 persistent by default", raw: req("HTTP/1.1", ""), check: ka(true)},
		{rule: "§9.6 close", raw: req("HTTP/1.1", "Connection: close\r\n"), check: ka(false)},
		{rule: "§9.6 Close, case-insensitive, with OWS", raw: req("HTTP/1.1", "Connection: Close\t\r\n"), check: ka(false)},
		{rule: "§9.6 close in a list", raw: req("HTTP/1.1", "Connection: keep-alive, close\r\n"), check: ka(false)},
		{rule: "§9.6 close on a second line", raw: req("HTTP/1.1", "Connection: keep-alive\r\nConnection: close\r\n"), check: ka(false)},
		{rule: "§9.3 HTTP/1.0 not persistent by default", raw: req("HTTP/1.0", ""), check: ka(false)},
		{rule: "§9.3 HTTP/1.0 keep-alive", raw: req("HTTP/1.0", "Connection: Keep-Alive\r\n"), check: ka(true)},
		{rule: "§9.3 HTTP/1.0 keep-alive and close", raw: req("HTTP/1.0", "Connection: keep-alive, close\r\n"), check: ka(false)},
		{rule: "§9.3 'closed' is not close", raw: req("HTTP/1.1", "Connection: closed\r\n"), check: ka(true)},
		{rule: "RFC 9110 §10.1.1 100-continue", raw: req("HTTP/1.1", "Expect: 100-Continue\r\n"), check: checkMsg(func(m msg) bool { return m.Expect100 }, "Expect100")},
		{rule: "RFC 9110 §10.1.1 100-continue ignored on HTTP/1.0", raw: req("HTTP/1.0", "Expect: 100-continue\r\n"), check: checkMsg(func(m msg) bool { return !m.Expect100 }, "no Expect100")},
		{rule: "RFC 9110 §10.1.1 empty Expect is no expectation", raw: req("HTTP/1.1", "Expect: \r\n"), check: checkMsg(func(m msg) bool { return !m.Expect100 }, "no Expect100")},
		{rule: "RFC 9110 §10.1.1 other expectation -> 417", raw: req("HTTP/1.1", "Expect: 200-ok\r\n"), err: errExpectation},
		{rule: "RFC 9110 §10.1.1 100-continue plus another -> 417", raw: req("HTTP/1.1", "Expect: 100-continue, foo\r\n"), err: errExpectation},
		{rule: "RFC 9110 §10.1.1 other expectation on HTTP/1.0 -> 417", raw: req("HTTP/1.0", "Expect: foo\r\n"), err: errExpectation},
		{rule: "RFC 9110 §7.8 Upgrade with Connection: upgrade", raw: req("HTTP/1.1", "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"), check: checkMsg(func(m msg) bool { return m.Upgrade && m.KeepAlive }, "Upgrade")},
		{rule: "RFC 9110 §7.8 Upgrade field without the option", raw: req("HTTP/1.1", "Upgrade: websocket\r\n"), check: checkMsg(func(m msg) bool { return !m.Upgrade }, "no Upgrade")},
		{rule: "RFC 9110 §7.8 option without Upgrade field", raw: req("HTTP/1.1", "Connection: upgrade\r\n"), check: checkMsg(func(m msg) bool { return !m.Upgrade }, "no Upgrade")},
		{rule: "RFC 9110 §7.8 Upgrade ignored on HTTP/1.0", raw: req("HTTP/1.0", "Connection: upgrade\r\nUpgrade: websocket\r\n"), check: checkMsg(func(m msg) bool { return !m.Upgrade }, "no Upgrade")},
		{rule: "order: missing Host (400) before unsupported coding (501)", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: errHostMissing},
		{rule: "order: framing (400) before body size (413)", lim: Limits{MaxBodySize: 1}, raw: "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", err: errHostMissing},
		{rule: "order: body size (413) before expectation (417)", lim: Limits{MaxBodySize: 1}, raw: "POST / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nContent-Length: 5\r\n\r\n", err: errBodyTooLarge},
		{rule: "order: coding (501) before expectation (417)", raw: "POST / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: errTEUnsupported},
		{rule: "order: field syntax errors come where they are", raw: "POST / HTTP/1.1\r\nX: \x01\r\n\r\n", err: errFieldValueCTL},
	}
}

// TestHeadSemantics runs headSemanticsCases.
func TestHeadSemantics(t *testing.T) { runHeadCases(t, headSemanticsCases()) }
