// Package uripath normalizes the path of a request-target, so that the
// router, the method check and every handler (the proxy's forwarded path,
// the files plugin's lookup) judge one path rather than each its own
// reading of the bytes a client sent.
//
// The normal form is RFC 3986 §6.2.2's: percent-escapes of unreserved
// characters decoded and every other escape's hex digits in upper case
// (§6.2.2.1, §6.2.2.2), dot segments removed (§6.2.2.3, §5.2.4), and, as
// nginx does with merge_slashes on, runs of '/' merged into one. A path
// the normal form cannot represent without changing what it means to
// some reader is an error (a 400 to the client): an escaped '/' or '\'
// (%2F, %5C: a separator to some upstreams, data to others), a raw NUL
// or '\' (the request parser never lets them through), a malformed
// escape, a ".." that climbs above the root (nginx answers 400 too), and a
// "." or ".." segment followed by a ';' parameter ("..;/": servlet
// containers strip the parameter and walk up). An escaped NUL (%00) stays
// escaped: it separates nothing, and HTTP conformance suites expect it
// accepted; a handler that decodes the path must refuse it (files does).
//
// It owns only that function: it allocates nothing for a path that is
// already normal, and appends into the caller's buffer otherwise.
package uripath

import (
	"encoding/binary"
	"errors"
)

// The reasons a path has no normal form. Each is a 400 for the client.
var (
	ErrNotAbsolute  = errors.New("path does not start with /")
	ErrBadEscape    = errors.New("malformed percent-escape in path")
	ErrEncodedSlash = errors.New("encoded / or \\ in path")
	ErrBackslash    = errors.New("\\ in path")
	ErrNUL          = errors.New("NUL in path")
	ErrAboveRoot    = errors.New("path climbs above the root")
	ErrDotParameter = errors.New("dot segment with a ; parameter in path")
)

// unreserved marks RFC 3986 §2.3's unreserved characters, the only ones
// whose escapes §6.2.2.2 decodes.
var unreserved [256]bool

// special marks the bytes IsNormal must look at: '/' (what follows it),
// and '%', '\\' and NUL (never normal).
var special = [256]bool{'/': true, '%': true, '\\': true, 0: true}

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		unreserved[c] = b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			b == '-' || b == '.' || b == '_' || b == '~'
	}
}

// IsNormal reports whether p is already in normal form, so that Append
// would return it unchanged. It is the hot path: one pass, no allocation.
// It is conservative: it answers false for every path with a '%' (even an
// escape already in normal form), which Append then copies.
func IsNormal(p []byte) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	i := 0 // at a '/'
	for {
		i++
		if i < len(p) && (p[i] == '/' || p[i] == '.' && dotSegment(p[i:])) {
			return false
		}
		// Plain bytes, the bulk of a path: eight at a time, then one by
		// one up to the next special byte.
		for i+8 <= len(p) && !hasSpecial8(binary.LittleEndian.Uint64(p[i:])) {
			i += 8
		}
		for i < len(p) && !special[p[i]] {
			i++
		}
		if i >= len(p) {
			return true
		}
		if p[i] != '/' {
			return false
		}
	}
}

// hasSpecial8 reports whether the eight bytes in w hold a special byte
// ('/', '%', '\\' or NUL), with the zero-byte test of "Bit Twiddling
// Hacks" (exact for whether there is one, which is all that is asked).
func hasSpecial8(w uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	a, b, c := w^('/'*lo), w^('%'*lo), w^('\\'*lo)
	return ((a-lo)&^a|(b-lo)&^b|(c-lo)&^c|(w-lo)&^w)&hi != 0
}

// dotSegment reports whether s (a segment and what follows it, starting
// with '.') starts with a "." or ".." segment, alone or with a parameter.
func dotSegment(s []byte) bool {
	n := 1
	if len(s) > 1 && s[1] == '.' {
		n = 2
	}
	return len(s) == n || s[n] == '/' || s[n] == ';'
}

// Append appends the normal form of p to dst and returns it, or an error
// saying why p has none (dst's contents are then unspecified). p is the
// path of a request-target, before any '?'; it must start with '/'.
func Append(dst, p []byte) ([]byte, error) {
	if len(p) == 0 || p[0] != '/' {
		return dst, ErrNotAbsolute
	}
	root := len(dst)
	dst = append(dst, '/')
	// dst[root:] always ends in '/' between segments: each segment is
	// decoded onto its end, then judged.
	i := 1
	for i <= len(p) {
		start := len(dst)
		for i < len(p) && p[i] != '/' {
			c := p[i]
			switch c {
			case '%':
				if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
					return dst, ErrBadEscape
				}
				v := unhex(p[i+1])<<4 | unhex(p[i+2])
				switch {
				case unreserved[v]:
					dst = append(dst, v)
				case v == '/' || v == '\\':
					return dst, ErrEncodedSlash
				default:
					dst = append(dst, '%', upperHex[v>>4], upperHex[v&0xf])
				}
				i += 3
				continue
			case '\\':
				return dst, ErrBackslash
			case 0:
				return dst, ErrNUL
			}
			dst = append(dst, c)
			i++
		}
		seg := dst[start:]
		last := i >= len(p) // no '/' follows this segment
		i++                 // past the '/'
		switch {
		case len(seg) == 0:
			// "//" merges; a trailing '/' is already there.
		case len(seg) == 1 && seg[0] == '.':
			dst = dst[:start]
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			if start == root+1 {
				return dst, ErrAboveRoot
			}
			j := start - 2 // the '/' ending the previous segment is at start-1
			for dst[j] != '/' {
				j--
			}
			dst = dst[:j+1]
		case seg[0] == '.' && dotParameter(seg):
			return dst, ErrDotParameter
		case !last:
			dst = append(dst, '/')
		}
	}
	return dst, nil
}

// dotParameter reports whether seg is "." or ".." followed by a ';'
// parameter, raw or escaped (%3B, already upper case here).
func dotParameter(seg []byte) bool {
	n := 1
	if len(seg) > 1 && seg[1] == '.' {
		n = 2
	}
	rest := seg[n:]
	return len(rest) > 0 && rest[0] == ';' ||
		len(rest) >= 3 && rest[0] == '%' && rest[1] == '3' && rest[2] == 'B'
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
