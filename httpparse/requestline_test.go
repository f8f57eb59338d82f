package httpparse

import (
	"strings"
	"testing"
)

const hostA = "Host: a\r\n"

// requestLineCases covers RFC 9112 §3: method SP request-target SP
// HTTP-version CRLF, and the leading empty lines of §2.2.
func requestLineCases() []headCase {
	return []headCase{
		{rule: "§3 minimal GET", raw: "GET / HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "/", "/", nil, "a")},
		{rule: "§3.1 method is case-sensitive token, kept as sent", raw: "get / HTTP/1.1\r\n" + hostA + "\r\n", check: want("get", "/", "/", nil, "a")},
		{rule: "§3.1 extension method token", raw: "M-SEARCH! / HTTP/1.1\r\n" + hostA + "\r\n", check: want("M-SEARCH!", "/", "/", nil, "a")},
		{rule: "§3.1 method with '=' is not a token", raw: "G=T / HTTP/1.1\r\n", err: errMethod},
		{rule: "§3.1 method with ':' is not a token", raw: ":GET / HTTP/1.1\r\n", err: errMethod},
		{rule: "§3.1 NUL in method", raw: "G\x00T / HTTP/1.1\r\n", err: errMethod},
		{rule: "§3.1 TLS handshake rejected before any CRLF", raw: "\x16\x03\x01\x00", err: errMethod},
		{rule: "§3.1 h2 preface method is a token, version decides", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", err: errVersionUnsupported},
		{rule: "§3 empty method", raw: " / HTTP/1.1\r\n", err: errMethodEmpty},
		{rule: "§3 HTAB between method and target", raw: "GET\t/ HTTP/1.1\r\n", err: errRequestLineWS},
		{rule: "§3 two SP after method", raw: "GET  / HTTP/1.1\r\n", err: errTargetEmpty},
		{rule: "§3 two SP after target", raw: "GET /  HTTP/1.1\r\n", err: errRequestLineWS},
		{rule: "§3 SP inside target", raw: "GET /a b HTTP/1.1\r\n", err: errVersion},
		{rule: "§3 four parts", raw: "GET / / HTTP/1.0\r\n", err: errVersion},
		{rule: "§3 SP after version", raw: "GET / HTTP/1.1 \r\n", err: errRequestLineWS},
		{rule: "§3 missing target", raw: "GET HTTP/1.1\r\n", err: errHTTP09},
		{rule: "§3 HTTP/0.9 simple request", raw: "GET /\r\n", err: errHTTP09},
		{rule: "§3 HTTP/0.9 rejected at the CR, before the LF", raw: "GET /\r", err: errHTTP09},
		{rule: "§2.2 bare CR ending the request line", raw: "GET / HTTP/1.1\rHost: a\r\n\r\n", err: errBareCR},
		{rule: "§2.2 bare LF ending the request line (strict: rejected)", raw: "GET / HTTP/1.1\nHost: a\r\n\r\n", err: errBareLF},
		{rule: "§2.2 one leading CRLF ignored, counted in HeadLen", raw: "\r\nGET / HTTP/1.1\r\n" + hostA + "\r\n",
			check: checkMsg(func(m msg) bool { return m.Method == "GET" && m.HeadLen == 2+16+9+2 }, "HeadLen includes the leading CRLF")},
		{rule: "§2.2 eight leading CRLFs ignored", raw: strings.Repeat("\r\n", 8) + "GET / HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "/", "/", nil, "a")},
		{rule: "§2.2 nine leading CRLFs rejected", raw: strings.Repeat("\r\n", 9) + "GET / HTTP/1.1\r\n", err: errTooManyEmptyLine},
		{rule: "§2.2 leading CRLF alone is incomplete", raw: "\r\n", incomplete: true},
		{rule: "§2.2 leading bare LF", raw: "\nGET / HTTP/1.1\r\n", err: errBareLF},
		{rule: "§2.2 leading bare CR", raw: "\rGET / HTTP/1.1\r\n", err: errBareCR},
		{rule: "§2.2 whitespace-only line is not an empty line", raw: "   \r\n\r\n", err: errMethodEmpty},
		{rule: "incomplete request line", raw: "GET / HTTP/1.", incomplete: true},
		{rule: "incomplete after CR", raw: "GET / HTTP/1.1\r", incomplete: true},
		{rule: "incomplete in percent-escape", raw: "GET /%4", incomplete: true},
	}
}

// TestRequestLine runs requestLineCases.
func TestRequestLine(t *testing.T) { runHeadCases(t, requestLineCases()) }

// versionCases covers RFC 9112 §2.3 and RFC 9110 §2.5.
func versionCases() []headCase {
	ver := func(v string) func(*testing.T, msg) {
		return checkMsg(func(m msg) bool { return m.Version == v }, "version "+v)
	}
	return []headCase{
		{rule: "§2.3 HTTP/1.0", raw: "GET / HTTP/1.0\r\n\r\n", check: ver("HTTP/1.0")},
		{rule: "§2.3 HTTP/1.1", raw: "GET / HTTP/1.1\r\n" + hostA + "\r\n", check: ver("HTTP/1.1")},
		{rule: "RFC 9110 §2.5 HTTP/1.2 kept as sent, processed as 1.1 (persistent)", raw: "GET / HTTP/1.2\r\n" + hostA + "\r\n",
			check: checkMsg(func(m msg) bool { return m.Version == "HTTP/1.2" && m.KeepAlive }, "1.2 as 1.1")},
		{rule: "RFC 9110 §2.5 HTTP/1.9 needs Host like 1.1", raw: "GET / HTTP/1.9\r\n\r\n", err: errHostMissing},
		{rule: "§2.3 HTTP/2.0 -> 505", raw: "GET / HTTP/2.0\r\n\r\n", err: errVersionUnsupported},
		{rule: "§2.3 HTTP/0.9 as a version -> 505", raw: "GET / HTTP/0.9\r\n\r\n", err: errVersionUnsupported},
		{rule: "§2.3 HTTP/9.9 -> 505", raw: "GET / HTTP/9.9\r\n" + hostA + "\r\n", err: errVersionUnsupported},
		{rule: "§2.3 505 waits for a well-formed line", raw: "GET / HTTP/2.0x\r\n", err: errVersion},
		{rule: "§2.3 two-digit minor", raw: "GET / HTTP/1.01\r\n", err: errVersion},
		{rule: "§2.3 two-digit major", raw: "GET / HTTP/11.1\r\n", err: errVersion},
		{rule: "§2.3 leading zero major", raw: "GET / HTTP/01.1\r\n", err: errVersion},
		{rule: "§2.3 no minor", raw: "GET / HTTP/1\r\n", err: errVersion},
		{rule: "§2.3 lower-case name", raw: "GET / http/1.1\r\n", err: errVersion},
		{rule: "§2.3 space after slash", raw: "GET / HTTP/ 1.1\r\n", err: errRequestLineWS},
		{rule: "§2.3 other protocol", raw: "GET / ICE/1.0\r\n", err: errVersion},
		{rule: "§2.3 RTSP", raw: "GET / RTSP/1.0\r\n", err: errVersion},
	}
}

// TestVersion runs versionCases.
func TestVersion(t *testing.T) { runHeadCases(t, versionCases()) }

// targetCases covers RFC 9112 §3.2 and RFC 3986's character set.
func targetCases() []headCase {
	bad := func(target string, err *Error) headCase {
		return headCase{rule: "§3.2 reject " + target, raw: "GET " + target + " HTTP/1.1\r\n" + hostA + "\r\n", err: err}
	}
	cases := []headCase{
		{rule: "§3.2.1 origin-form path and query", raw: "GET /a/b?c=d&e HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "/a/b?c=d&e", "/a/b", sp("c=d&e"), "a")},
		{rule: "§3.2.1 empty query is not nil", raw: "GET /p? HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "/p?", "/p", sp(""), "a")},
		{rule: "§3.2.1 second '?' belongs to the query", raw: "GET /p?a?b HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "/p?a?b", "/p", sp("a?b"), "a")},
		{rule: "§3.2.1 RFC 3986 sub-delims, ':' and '@' in path", raw: "GET /!$&'()*+,;=:@-._~ HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "/!$&'()*+,;=:@-._~", "/!$&'()*+,;=:@-._~", nil, "a")},
		{rule: "§3.2.1 valid percent-escapes kept as sent", raw: "GET /%2F%aF%00 HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "/%2F%aF%00", "/%2F%aF%00", nil, "a")},
		{rule: "§3.2.1 '//' path is origin-form", raw: "GET //user@host/p HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "//user@host/p", "//user@host/p", nil, "a")},
		{rule: "§3.2.2 absolute-form authority overrides Host", raw: "GET http://other.example:8080/x?y HTTP/1.1\r\n" + hostA + "\r\n",
			check: want("GET", "http://other.example:8080/x?y", "/x", sp("y"), "other.example:8080")},
		{rule: "§3.2.2 absolute-form without path", raw: "GET http://h HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "http://h", "", nil, "h")},
		{rule: "§3.2.2 absolute-form query without path", raw: "GET http://h?q HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "http://h?q", "", sp("q"), "h")},
		{rule: "§3.2.2 absolute-form scheme is case-insensitive", raw: "GET HTTP://H/ HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "HTTP://H/", "/", nil, "H")},
		{rule: "§3.2.2 absolute-form IPv6 literal", raw: "GET http://[::1]:80/ HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "http://[::1]:80/", "/", nil, "[::1]:80")},
		{rule: "§3.2.2 absolute-form empty port", raw: "GET http://h:/ HTTP/1.1\r\n" + hostA + "\r\n", check: want("GET", "http://h:/", "/", nil, "h:")},
		{rule: "§3.2.2 absolute-form still needs a valid Host field", raw: "GET http://h/ HTTP/1.1\r\nHost: a/b\r\n\r\n", err: errHostInvalid},
		{rule: "§3.2.2 absolute-form still needs Host in 1.1", raw: "GET http://h/ HTTP/1.1\r\n\r\n", err: errHostMissing},
		{rule: "§3.2.2 absolute-form with an empty Host: the target's authority", raw: "GET http://h:81/x HTTP/1.1\r\nHost:\r\n\r\n", check: want("GET", "http://h:81/x", "/x", nil, "h:81")},
		{rule: "§3.2 origin-form with an empty Host names no host", raw: "GET /x HTTP/1.1\r\nHost:\r\n\r\n", err: errHostEmpty},
		{rule: "§3.2.3 CONNECT authority-form, Host is the target", raw: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
			check: checkMsg(func(m msg) bool {
				return m.Form == AuthorityForm && m.Host == "example.com:443" && m.Path == "" && m.Query == nil
			}, "authority-form")},
		{rule: "§3.2.3 CONNECT IPv6 authority", raw: "CONNECT [::1]:443 HTTP/1.1\r\n" + hostA + "\r\n", check: checkMsg(func(m msg) bool { return m.Host == "[::1]:443" }, "host")},
		{rule: "§3.2.3 CONNECT origin-form", raw: "CONNECT / HTTP/1.1\r\n" + hostA + "\r\n", err: errConnectForm},
		{rule: "§3.2.3 CONNECT without port", raw: "CONNECT localhost HTTP/1.1\r\n" + hostA + "\r\n", err: errConnectForm},
		{rule: "§3.2.3 CONNECT empty port", raw: "CONNECT localhost: HTTP/1.1\r\n" + hostA + "\r\n", err: errConnectForm},
		{rule: "§3.2.3 CONNECT port over 65535", raw: "CONNECT h:65536 HTTP/1.1\r\n" + hostA + "\r\n", err: errConnectForm},
		{rule: "§3.2.3 CONNECT userinfo", raw: "CONNECT u@h:1 HTTP/1.1\r\n" + hostA + "\r\n", err: errConnectForm},
		{rule: "§3.2.3 CONNECT absolute-form", raw: "CONNECT http://h:1/ HTTP/1.1\r\n" + hostA + "\r\n", err: errConnectForm},
		{rule: "§3.2.3 CONNECT asterisk", raw: "CONNECT * HTTP/1.1\r\n" + hostA + "\r\n", err: errAsteriskForm},
		{rule: "§3.2.3 authority-form only for CONNECT", raw: "GET h:80 HTTP/1.1\r\n" + hostA + "\r\n", err: errTargetForm},
		{rule: "§3.2.3 authority-form not for OPTIONS", raw: "OPTIONS h:80 HTTP/1.1\r\n" + hostA + "\r\n", err: errTargetForm},
		{rule: "§3.2.4 OPTIONS asterisk-form", raw: "OPTIONS * HTTP/1.1\r\n" + hostA + "\r\n",
			check: checkMsg(func(m msg) bool { return m.Form == AsteriskForm && m.Target == "*" && m.Path == "" && m.Host == "a" }, "asterisk")},
		{rule: "§3.2.4 asterisk-form for GET", raw: "GET * HTTP/1.1\r\n" + hostA + "\r\n", err: errAsteriskForm},
		{rule: "§3.2.4 asterisk-form for PRI on 1.1", raw: "PRI * HTTP/1.1\r\n" + hostA + "\r\n", err: errAsteriskForm},
		{rule: "§3.2.4 asterisk-form is exactly '*'", raw: "OPTIONS *x HTTP/1.1\r\n" + hostA + "\r\n", err: errTargetForm},
		bad("http://u@h/", errTargetUserinfo),
		bad("http://u:p@h/", errTargetUserinfo),
		bad("http://a%12:b!&*$@hypnotoad.org:1234/toto", errTargetUserinfo),
		bad("http:///", errTargetHost),
		bad("http://:80/", errTargetHost),
		bad("http://[::1/", errTargetHost),
		bad("http://[::1]x/", errTargetHost),
		bad("http://h:99999/", errTargetHost),
		bad("http://h:1:2/", errTargetHost),
		bad("http://h/[x]", errTargetChar),
		bad("http:/h", errTargetForm),
		bad("urn:isbn:1", errTargetForm),
		bad("1http://h/", errTargetForm),
		bad("../etc/passwd", errTargetForm),
		bad("/a[b]", errTargetChar),
		bad("/#frag", errTargetFragment),
		bad("/p?q#frag", errTargetFragment),
		bad("/%", errTargetPercent),
		bad("/%1", errTargetPercent),
		bad("/%1g", errTargetPercent),
		bad("/%zz", errTargetPercent),
		bad("/\x7f", errTargetChar),
		bad("/\x00", errTargetChar),
		bad("/\x80", errTargetChar),
		bad("/caf\xc3\xa9", errTargetChar),
		bad("/\xc0\xaf", errTargetChar),
		bad("/\xff", errTargetChar),
		bad("/a\tb", errRequestLineWS),
	}
	for _, c := range `"\|{}^` + "`<>" {
		cases = append(cases, bad("/a"+string(c), errTargetChar))
	}
	return cases
}

// TestTarget runs targetCases.
func TestTarget(t *testing.T) { runHeadCases(t, targetCases()) }

// requestLineLimitCases covers the 414 limit (Gunicorn limit_request_line),
// enforced before the line's CRLF arrives.
func requestLineLimitCases() []headCase {
	lim := Limits{MaxRequestLine: 32}
	line := func(n int) string { // request line of n bytes without CRLF
		return "GET /" + strings.Repeat("a", n-len("GET / HTTP/1.1")) + " HTTP/1.1"
	}
	return []headCase{
		{rule: "414 line of exactly the limit", lim: lim, raw: line(32) + "\r\n" + hostA + "\r\n", check: checkMsg(func(m msg) bool { return len(m.Target) == 19 }, "target")},
		{rule: "414 one byte over", lim: lim, raw: line(33) + "\r\n" + hostA + "\r\n", err: errRequestLineTooLong},
		{rule: "414 without waiting for CRLF", lim: lim, raw: "GET /" + strings.Repeat("a", 40), err: errRequestLineTooLong},
		{rule: "414 in the method", lim: lim, raw: strings.Repeat("G", 33), err: errRequestLineTooLong},
		{rule: "414 prefix at the limit is still incomplete", lim: lim, raw: "GET /" + strings.Repeat("a", 27), incomplete: true},
		{rule: "414 leading CRLFs do not count", lim: lim, raw: "\r\n\r\n" + line(32) + "\r\n" + hostA + "\r\n", check: checkMsg(func(m msg) bool { return m.HeadLen == 4+34+9+2 }, "HeadLen")},
		{rule: "414 default limit is 4094", raw: line(4094) + "\r\n" + hostA + "\r\n", check: checkMsg(func(m msg) bool { return m.Method == "GET" }, "accepted")},
		{rule: "414 default limit + 1", raw: line(4095) + "\r\n" + hostA + "\r\n", err: errRequestLineTooLong},
	}
}

// TestRequestLineLimit runs requestLineLimitCases.
func TestRequestLineLimit(t *testing.T) { runHeadCases(t, requestLineLimitCases()) }
