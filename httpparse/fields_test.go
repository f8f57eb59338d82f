package httpparse

import (
	"strconv"
	"strings"
	"testing"
)

func get11(fields string) string { return "GET / HTTP/1.1\r\n" + hostA + fields + "\r\n" }

// fieldSyntaxCases covers RFC 9110 §5.1, §5.5 and RFC 9112 §2.2, §5.
func fieldSyntaxCases() []headCase {
	return []headCase{
		{rule: "§5.1 name as sent, value OWS-trimmed", raw: get11("X-Foo: \t bar baz \t \r\n"), check: checkHeaders([2]string{"Host", "a"}, [2]string{"X-Foo", "bar baz"})},
		{rule: "§5.5 empty value", raw: get11("X:\r\nY: \r\n"), check: checkHeaders([2]string{"Host", "a"}, [2]string{"X", ""}, [2]string{"Y", ""})},
		{rule: "§5.5 HTAB inside value kept", raw: get11("X: a\tb\r\n"), check: checkHeaders([2]string{"Host", "a"}, [2]string{"X", "a\tb"})},
		{rule: "§5.5 obs-text kept byte-exact, 0x85/0xA0 are not OWS", raw: get11("X: \xa0\x85v\xff\x80\xa0\r\n"), check: checkHeaders([2]string{"Host", "a"}, [2]string{"X", "\xa0\x85v\xff\x80\xa0"})},
		{rule: "§5.5 long value with every VCHAR", raw: get11("X: " + vchars() + "\r\n"), check: checkHeaders([2]string{"Host", "a"}, [2]string{"X", vchars()})},
		{rule: "§5.1 token names with every tchar", raw: get11("!#$%&'*+-.^_`|~09azAZ: v\r\n"), check: checkHeaders([2]string{"Host", "a"}, [2]string{"!#$%&'*+-.^_`|~09azAZ", "v"})},
		{rule: "§5.3 repeated fields kept in order", raw: get11("A: 1\r\nB: 2\r\nA: 3\r\n"), check: checkHeaders([2]string{"Host", "a"}, [2]string{"A", "1"}, [2]string{"B", "2"}, [2]string{"A", "3"})},
		{rule: "§5.1 empty name", raw: get11(": x\r\n"), err: errFieldNameEmpty},
		{rule: "§5.1 colon only", raw: get11(":\r\n"), err: errFieldNameEmpty},
		{rule: "§5.1 space inside name", raw: get11("A space: x\r\n"), err: errWSBeforeColon},
		{rule: "§5.1 space before colon", raw: get11("Foo : bar\r\n"), err: errWSBeforeColon},
		{rule: "§5.1 HTAB before colon", raw: get11("Foo\t: bar\r\n"), err: errWSBeforeColon},
		{rule: "§5.1 '[' in name", raw: get11("Bad[Name: v\r\n"), err: errFieldName},
		{rule: "§5.1 '{' name", raw: get11("{: v\r\n"), err: errFieldName},
		{rule: "§5.1 '/' name", raw: get11("/: v\r\n"), err: errFieldName},
		{rule: "§5.1 '@' in name", raw: get11("Fo@: v\r\n"), err: errFieldName},
		{rule: "§5.1 NUL in name", raw: get11("a\x00b: c\r\n"), err: errFieldName},
		{rule: "§5.1 obs-text in name", raw: get11("Content-Length\x85: 1\r\n"), err: errFieldName},
		{rule: "§5.1 ESC in name", raw: get11("a\x1bb: c\r\n"), err: errFieldName},
		{rule: "§5.1 no colon", raw: get11("NoColonHere\r\n"), err: errFieldNoColon},
		{rule: "§5.1 no colon, then obs-fold", raw: "GET / HTTP/1.1\r\nname\r\n : value\r\n\r\n", err: errFieldNoColon},
		{rule: "§5.5 NUL in value", raw: get11("X: a\x00b\r\n"), err: errFieldValueNUL},
		{rule: "§5.5 0x01 in value", raw: get11("X: w\x01rld\r\n"), err: errFieldValueCTL},
		{rule: "§5.5 VT in value", raw: get11("X: a\x0bb\r\n"), err: errFieldValueCTL},
		{rule: "§5.5 FF as value", raw: get11("X: \x0c\r\n"), err: errFieldValueCTL},
		{rule: "§5.5 ESC in value", raw: get11("X: c\x1b\r\n"), err: errFieldValueCTL},
		{rule: "§5.5 DEL in value", raw: get11("X: a\x7fb\r\n"), err: errFieldValueCTL},
		{rule: "§5.5 CTL in a long value found by the word scan", raw: get11("X: " + strings.Repeat("v", 21) + "\x07" + strings.Repeat("v", 20) + "\r\n"), err: errFieldValueCTL},
		{rule: "§2.2 bare CR in value", raw: get11("X: val\rue\r\n"), err: errBareCR},
		{rule: "§2.2 bare CR in name", raw: get11("Content\rLength: 3\r\n"), err: errBareCR},
		{rule: "§2.2 bare CR at line start, rejected without waiting for LF", raw: "PUT /url HTTP/1.1\r\nContent-Length: 3\r\n\rabc", err: errBareCR},
		{rule: "§2.2 bare CR then request smuggled", raw: "GET / HTTP/1.1\r\nHost: a\r\n\rZGET /evil: HTTP/1.1\r\n", err: errBareCR},
		{rule: "§2.2 bare LF ends a field line (strict: rejected)", raw: "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", err: errBareLF},
		{rule: "§2.2 bare LF ends the head", raw: "GET / HTTP/1.1\r\nHost: a\r\n\n", err: errBareLF},
		{rule: "§2.2 bare LF right after the colon", raw: get11("x:\nTransfer-Encoding: chunked\r\n"), err: errBareLF},
		{rule: "§5.2 obs-fold rejected", raw: get11("X: a\r\n b\r\n"), err: errObsFold},
		{rule: "§5.2 obs-fold with HTAB", raw: get11("X: a\r\n\tb\r\n"), err: errObsFold},
		{rule: "§5.2 whitespace-only continuation", raw: get11("X: a\r\n \r\n"), err: errObsFold},
		{rule: "§2.2 whitespace line after the request line", raw: "GET / HTTP/1.1\r\n \r\nHost: a\r\n\r\n", err: errWSAfterStartLine},
		{rule: "§2.2 first field indented", raw: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", err: errWSAfterStartLine},
		{rule: "incomplete field line", raw: "GET / HTTP/1.1\r\nHost: a\r\nX: b", incomplete: true},
		{rule: "incomplete after a field's CR", raw: "GET / HTTP/1.1\r\nHost: a\r\nX: b\r", incomplete: true},
		{rule: "incomplete before the final LF", raw: "GET / HTTP/1.1\r\nHost: a\r\n\r", incomplete: true},
		{rule: "incomplete name", raw: "GET / HTTP/1.1\r\nHo", incomplete: true},
	}
}

// TestFieldSyntax runs fieldSyntaxCases.
func TestFieldSyntax(t *testing.T) { runHeadCases(t, fieldSyntaxCases()) }

func vchars() string {
	var b strings.Builder
	for c := 0x21; c < 0x7f; c++ {
		b.WriteByte(byte(c))
	}
	return b.String()
}

// fieldLimitsCases covers the 431 limits (Gunicorn limit_request_fields and
// limit_request_field_size), enforced before a line's LF arrives.
func fieldLimitsCases() []headCase {
	lim := Limits{MaxFieldSize: 16, MaxHeaderCount: 3}
	field := func(n int) string { // field line of n bytes without CRLF
		return "X:" + strings.Repeat("v", n-2) + "\r\n"
	}
	fields := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString("F" + strconv.Itoa(i) + ": v\r\n")
		}
		return b.String()
	}
	return []headCase{
		{rule: "431 field line of exactly the limit", lim: lim, raw: get11(field(16)), check: checkMsg(func(m msg) bool { return len(m.Headers[1][1]) == 14 }, "value")},
		{rule: "431 field line over the limit", lim: lim, raw: get11(field(17)), err: errFieldTooLarge},
		{rule: "431 trailing OWS counts", lim: lim, raw: get11("X:" + strings.Repeat("v", 14) + " \r\n"), err: errFieldTooLarge},
		{rule: "431 without waiting for LF", lim: lim, raw: "GET / HTTP/1.1\r\nX: " + strings.Repeat("v", 40), err: errFieldTooLarge},
		{rule: "431 long name without colon", lim: lim, raw: "GET / HTTP/1.1\r\n" + strings.Repeat("N", 20), err: errFieldTooLarge},
		{rule: "431 bare CR at the limit is still a bare CR", lim: lim, raw: "GET / HTTP/1.1\r\nX:" + strings.Repeat("v", 14) + "\rX", err: errBareCR},
		{rule: "431 prefix at the limit is incomplete", lim: lim, raw: "GET / HTTP/1.1\r\nX:" + strings.Repeat("v", 14) + "\r", incomplete: true},
		{rule: "431 exactly MaxHeaderCount fields", lim: lim, raw: "GET / HTTP/1.1\r\n" + hostA + fields(2) + "\r\n", check: checkMsg(func(m msg) bool { return len(m.Headers) == 3 }, "3 fields")},
		{rule: "431 one field over MaxHeaderCount", lim: lim, raw: "GET / HTTP/1.1\r\n" + hostA + fields(3) + "\r\n", err: errTooManyFields},
		{rule: "431 default MaxHeaderCount is 100", raw: "GET / HTTP/1.1\r\n" + hostA + fields(99) + "\r\n", check: checkMsg(func(m msg) bool { return len(m.Headers) == 100 }, "100 fields")},
		{rule: "431 default MaxHeaderCount + 1", raw: "GET / HTTP/1.1\r\n" + hostA + fields(100) + "\r\n", err: errTooManyFields},
		{rule: "431 default MaxFieldSize is 8190", raw: get11(field(8190)), check: checkMsg(func(m msg) bool { return len(m.Headers[1][1]) == 8188 }, "value")},
		{rule: "431 default MaxFieldSize + 1", raw: get11(field(8191)), err: errFieldTooLarge},
	}
}

// TestFieldLimits runs fieldLimitsCases.
func TestFieldLimits(t *testing.T) { runHeadCases(t, fieldLimitsCases()) }
