package httpparse

import (
	"encoding/binary"
	"math/bits"
)

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// Results of lineScan.scan.
const (
	lineMore  = iota // the line is not complete yet
	lineField        // a complete field line
	lineEmpty        // the empty line (CRLF) that ends a section
)

// lineScan is the resumable state of one field line (RFC 9110 §5.1, §5.5;
// RFC 9112 §2.2, §5.1, §5.2): field-name ":" OWS field-value OWS CRLF.
//
// It looks at every byte once, in order, and decides at the first byte that
// proves the line bad, so its verdict does not depend on how the input was
// split. For the byte at index j the checks run in this order:
//  1. after a CR, anything but LF is a bare CR;
//  2. at or beyond start+max, anything but a CR exactly at start+max (which
//     may still end the line) exceeds the limit (431);
//  3. the byte itself against the grammar; a CR waits for the next byte.
type lineScan struct {
	start int // first byte of the line
	pos   int // next byte to examine (a CR that waits for its LF is re-examined)
	colon int // index of the ':' once found, else -1
}

// reset points the scanner at a new line starting at start.
func (ls *lineScan) reset(start int) {
	ls.start, ls.pos, ls.colon = start, start, -1
}

// scan advances over buf[ls.pos:]. For lineField and lineEmpty it returns the
// index of the line's LF. first marks the first line after the request line,
// where a leading SP/HTAB is a whitespace line rather than obs-fold (both are
// rejected, RFC 9112 §2.2 and §5.2).
func (ls *lineScan) scan(buf []byte, max int, first bool) (int, int, *Error) {
	s, i, n := ls.start, ls.pos, len(buf)
	limit := s + max
	if ls.colon < 0 {
		if i == s && i < n && (buf[i] == ' ' || buf[i] == '\t') {
			if first {
				return 0, 0, errWSAfterStartLine
			}
			return 0, 0, errObsFold
		}
		end := min(n, limit)
		for i < end && tokenTab[buf[i]] {
			i++
		}
		if i == n {
			ls.pos = i
			return lineMore, 0, nil
		}
		c := buf[i]
		if c == '\r' {
			if i+1 == n {
				ls.pos = i
				return lineMore, 0, nil
			}
			if buf[i+1] != '\n' {
				return 0, 0, errBareCR
			}
			if i == s {
				return lineEmpty, i + 1, nil
			}
			return 0, 0, errFieldNoColon
		}
		if i >= limit {
			return 0, 0, errFieldTooLarge
		}
		switch c {
		case ':':
			if i == s {
				return 0, 0, errFieldNameEmpty
			}
			ls.colon = i
			i++
		case ' ', '\t':
			return 0, 0, errWSBeforeColon
		case '\n':
			return 0, 0, errBareLF
		default:
			return 0, 0, errFieldName
		}
	}
	for {
		end := min(n, limit)
		if i < end {
			if k := badValueByte(buf[i:end]); k >= 0 {
				i += k
			} else {
				i = end
			}
		}
		if i == n {
			ls.pos = i
			return lineMore, 0, nil
		}
		c := buf[i]
		if c == '\r' {
			if i+1 == n {
				ls.pos = i
				return lineMore, 0, nil
			}
			if buf[i+1] != '\n' {
				return 0, 0, errBareCR
			}
			return lineField, i + 1, nil
		}
		if i >= limit {
			return 0, 0, errFieldTooLarge
		}
		switch c {
		case '\t':
			i++
		case '\n':
			return 0, 0, errBareLF
		case 0:
			return 0, 0, errFieldValueNUL
		default:
			return 0, 0, errFieldValueCTL
		}
	}
}

// field returns the name and the OWS-trimmed value of the complete field
// line whose LF is at lf.
func (ls *lineScan) field(buf []byte, lf int) (name, value []byte) {
	return buf[ls.start:ls.colon], trimOWS(buf[ls.colon+1 : lf-1])
}

// badValueByte returns the index of the first byte not allowed in a field
// value (anything but HTAB, SP, VCHAR, obs-text) or HTAB, or -1; the caller
// steps over HTAB. It tests eight bytes at a time for a byte below 0x20 or
// equal to 0x7F with the "has less than" and "has zero" word tricks: the
// lowest flagged byte is always a real one (a borrow only runs upwards from
// one), so its position is exact. CR, which ends the value, is such a byte.
func badValueByte(v []byte) int {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64(v[i:])
		y := x ^ (lo8 * 0x7f)
		if m := ((x-lo8*0x20)&^x | (y-lo8)&^y) & hi8; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return i
		}
	}
	return -1
}
