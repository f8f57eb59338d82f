package engine

import "unsafe"

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
