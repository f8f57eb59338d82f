package accesslog

import (
	"unicode/utf8"
	"unsafe"
)

const hexDigits = "0123456789abcdef"

// appendEscaped appends v for the text log so that a client cannot forge
// or break log lines: control characters (CR, LF, TAB, ESC ...), DEL and
// every byte >= 0x80 become \xNN, and '"' and '\' become \" and \\.
// Everything else (printable ASCII) is copied. Gunicorn escapes only '"'.
func appendEscaped(b, v []byte) []byte {
	start := 0
	for i, ch := range v {
		if !textEscape[ch] {
			continue
		}
		b = append(b, v[start:i]...)
		if ch == '"' || ch == '\\' {
			b = append(b, '\\', ch)
		} else {
			b = append(b, '\\', 'x', hexDigits[ch>>4], hexDigits[ch&0xf])
		}
		start = i + 1
	}
	return append(b, v[start:]...)
}

// textEscape marks the bytes appendEscaped rewrites; copying the runs in
// between whole is what keeps rendering cheap.
var textEscape = func() (t [256]bool) {
	for i := range t {
		t[i] = i < 0x20 || i >= 0x7f || i == '"' || i == '\\'
	}
	return t
}()

// appendJSONString appends v as a quoted JSON string.
func appendJSONString(b, v []byte) []byte {
	b = append(b, '"')
	b = appendJSONBody(b, v)
	return append(b, '"')
}

// appendJSONBody appends v JSON-escaped, without quotes. Valid UTF-8 is
// kept as text; each byte of an invalid sequence becomes \u00XX (its
// Latin-1 reading, as Gunicorn's WSGI strings are), so the line is always
// valid JSON and no byte is lost. Control characters, '"' and '\' are
// escaped, the C1 controls (U+0080..U+009F) included: U+0085 (NEL) ends a
// line for Python's str.splitlines and for \R in Java, Perl and PCRE
// regular expressions, and the others are as invisible as C0's. So are
// U+2028 and U+2029, which JavaScript readers and the same splitters
// treat as line ends.
// The text log needs none of this: it escapes every byte >= 0x80.
func appendJSONBody(b, v []byte) []byte {
	start := 0
	for i := 0; i < len(v); {
		ch := v[i]
		if !jsonEscape[ch] {
			i++
			continue
		}
		b = append(b, v[start:i]...)
		switch {
		case ch == '"' || ch == '\\':
			b = append(b, '\\', ch)
			i++
		case ch < 0x80:
			b = append(b, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xf])
			i++
		default:
			r, n := utf8.DecodeRune(v[i:])
			switch {
			case r == utf8.RuneError && n <= 1:
				b = append(b, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xf])
				n = 1
			case r < 0xa0: // a C1 control, U+0080..U+009F
				b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
			case r == '\u2028' || r == '\u2029':
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			default:
				b = append(b, v[i:i+n]...)
			}
			i += n
		}
		start = i
	}
	return append(b, v[start:]...)
}

// jsonEscape marks the bytes appendJSONBody must look at: control
// characters, '"', '\' and every non-ASCII byte (checked as UTF-8).
var jsonEscape = func() (t [256]bool) {
	for i := range t {
		t[i] = i < 0x20 || i >= 0x7f || i == '"' || i == '\\'
	}
	return t
}()

// appendRaw escapes v for the text log, or for the inside of a JSON
// string.
func appendRaw(b, v []byte, js bool) []byte {
	if js {
		return appendJSONBody(b, v)
	}
	return appendEscaped(b, v)
}

// percentDecode appends p with %XX sequences decoded, as Gunicorn's
// PATH_INFO is; a '%' not followed by two hex digits is kept as is.
func percentDecode(dst, p []byte) []byte {
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			hi, ok1 := unhex(p[i+1])
			lo, ok2 := unhex(p[i+2])
			if ok1 && ok2 {
				dst = append(dst, hi<<4|lo)
				i += 2
				continue
			}
		}
		dst = append(dst, p[i])
	}
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// s2b views a string as bytes without copying; the result must not be
// modified.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
