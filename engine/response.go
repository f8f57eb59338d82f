package engine

import (
	"net/http"
	"strconv"
	"time"
	"unsafe"
)

// statusLines holds "HTTP/1.1 <code> <reason>\r\n" for every code net/http
// knows, built once so that writing a status line is a copy.
var statusLines [600][]byte

// errorBodies holds errorBody's text for the same codes, so that the
// engine's own answers (404, parser rejections, timeouts) allocate nothing.
var errorBodies [600]string

func init() {
	for code := 100; code < 600; code++ {
		if t := http.StatusText(code); t != "" {
			statusLines[code] = []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + t + "\r\n")
			errorBodies[code] = strconv.Itoa(code) + " " + t + "\n"
		}
	}
}

// bodyAllowed reports whether a response with this status may carry a body
// (RFC 9110 §6.4.1: not 1xx, 204 or 304).
func bodyAllowed(status int) bool {
	return status >= 200 && status != 204 && status != 304
}

// appendDate appends an IMF-fixdate "Date: ...\r\n" header line for t.
func appendDate(b []byte, t time.Time) []byte {
	b = append(b, "Date: "...)
	b = t.UTC().AppendFormat(b, http.TimeFormat)
	return append(b, '\r', '\n')
}

// appendHead serializes the status line and headers of x's response with
// the given body length (-1 for chunked, -2 for close-delimited) into b.
func (x *Ctx) appendHead(b, date []byte, bodyLen int64, closing bool) []byte {
	b = append(b, statusLine(x.status)...)
	b = append(b, x.e.serverLine...)
	b = append(b, date...)
	if len(x.ctype) > 0 {
		b = append(b, "Content-Type: "...)
		b = append(b, x.ctype...)
		b = append(b, '\r', '\n')
	}
	b = append(b, x.hdrs...)
	switch {
	case x.status < 200 || x.status == 204 || x.status == 304:
		// RFC 9110 §8.6, RFC 9112 §6.3: no framing headers for these.
	case bodyLen == -1:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case bodyLen >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, bodyLen, 10)
		b = append(b, '\r', '\n')
	}
	if closing {
		b = append(b, "Connection: close\r\n"...)
	} else if x.req.Major == 1 && x.req.Minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, '\r', '\n')
}

// appendResponse serializes x's whole buffered response into b. A HEAD
// response carries the Content-Length a GET would have, and no body.
func (x *Ctx) appendResponse(b, date []byte, closing bool) []byte {
	n := int64(len(x.out))
	if x.contentLen >= 0 && len(x.out) == 0 && isHead(&x.req) {
		n = x.contentLen
	}
	// b may already hold the responses to earlier pipelined requests:
	// count only this one's bytes.
	start := len(b)
	b = x.appendHead(b, date, n, closing)
	if bodyAllowed(x.status) && !isHead(&x.req) {
		b = append(b, x.out...)
		x.bodySent = int64(len(x.out))
	}
	x.bytesOut += int64(len(b) - start)
	return b
}

// setError replaces the response with a plain-text error.
func (x *Ctx) setError(status int) {
	x.status = status
	x.ctype = append(x.ctype[:0], "text/plain; charset=utf-8"...)
	x.hdrs = x.hdrs[:0]
	x.out = append(x.out[:0], errorBody(status)...)
}

// s2b and b2s view strings as bytes and back without copying; the results
// must not be modified or kept past the source's lifetime.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// asciiEqualFold compares b with the ASCII string s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x|0x20 != y|0x20 || (x|0x20) < 'a' || (x|0x20) > 'z' {
			if x != y {
				return false
			}
		}
	}
	return true
}

// asciiContainsTokenFold reports whether the comma-separated list v holds
// token tok, ignoring case and surrounding whitespace.
func asciiContainsTokenFold(v []byte, tok string) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		item := v[:i]
		for len(item) > 0 && (item[0] == ' ' || item[0] == '\t') {
			item = item[1:]
		}
		for len(item) > 0 && (item[len(item)-1] == ' ' || item[len(item)-1] == '\t') {
			item = item[:len(item)-1]
		}
		if asciiEqualFold(item, tok) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

// findHeaderLine finds name in serialized "Name: value\r\n" lines.
func findHeaderLine(hdrs []byte, name string) []byte {
	for len(hdrs) > 0 {
		end := 0
		for end+1 < len(hdrs) && !(hdrs[end] == '\r' && hdrs[end+1] == '\n') {
			end++
		}
		line := hdrs[:end]
		if colon := indexByte(line, ':'); colon > 0 && asciiEqualFold(line[:colon], name) {
			v := line[colon+1:]
			for len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			return v
		}
		if end+2 > len(hdrs) {
			break
		}
		hdrs = hdrs[end+2:]
	}
	return nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// Canned answers the engine sends itself.
var (
	continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")
)

// errorBody is the plain-text body of the engine's own error answers.
func errorBody(status int) string {
	if status >= 100 && status < 600 && errorBodies[status] != "" {
		return errorBodies[status]
	}
	return strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
}
