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
		if end := min(n, limit); i < end {
			i = ctlIndex(buf, i, end)
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

// completeField recognises a whole field line at buf[s:] made of a token
// name, ':', value bytes and CRLF within max, and returns its name, its
// OWS-trimmed value and the index of its LF, exactly as lineScan's scan
// and field would. Anything else (an incomplete line, any byte scan would
// refuse, the limit) returns false and is left to scan, which stays the
// one place deciding errors. It saves scan's byte-by-byte bookkeeping on
// the lines nearly every request is made of.
func completeField(buf []byte, s, max int) (name, value []byte, lf int, ok bool) {
	// The CR may sit at s+max (scan accepts it there), nothing else. The
	// line's bytes are v[s:], its LF may be just past v; indexing v after
	// the checks below lets the compiler drop most bounds checks.
	v := buf[:min(len(buf), s+max+1)]
	i := s
	for i+8 <= len(v) {
		m := nameMask(binary.LittleEndian.Uint64(v[i:]))
		if m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			break
		}
		i += 8
	}
	for i < len(v) && tokenTab[v[i]] {
		i++
	}
	if i <= s || i >= len(v) || v[i] != ':' {
		return nil, nil, 0, false
	}
	name = v[s:i]
	i++
	if i < len(v) && v[i] == ' ' {
		i++ // the usual single SP
	}
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	// The value ends at its first byte below 0x20 or 0x7F (ctlIndex
	// inlined by hand: this is the hot loop); HTAB is stepped over.
	j := i
	for {
		if j+8 <= len(v) {
			m := ctlMask(binary.LittleEndian.Uint64(v[j:]))
			if m == 0 {
				j += 8
				continue
			}
			j += bits.TrailingZeros64(m) >> 3
		} else {
			rest := len(v) - j
			if rest <= 0 || len(v) < 8 {
				return nil, nil, 0, false
			}
			k := bits.TrailingZeros64(ctlMask(binary.LittleEndian.Uint64(v[len(v)-8:])>>(8*(8-rest)))) >> 3
			if k >= rest {
				return nil, nil, 0, false
			}
			j += k
		}
		if j >= len(v) {
			return nil, nil, 0, false
		}
		if v[j] == '\r' {
			break
		}
		if v[j] != '\t' {
			return nil, nil, 0, false
		}
		j++
	}
	if j+1 >= len(buf) || buf[j+1] != '\n' {
		return nil, nil, 0, false
	}
	// Trailing OWS; the leading OWS was skipped up to i.
	e := j
	for e > i && (v[e-1] == ' ' || v[e-1] == '\t') {
		e--
	}
	return name, v[i:e], j + 1, true
}

// hostField is completeField for the one line every HTTP/1.1 request has,
// "Host:" with a plain reg-name value: the name is recognised by one word
// compare and the value by one table pass, which also proves its bytes
// valid. Anything else about the line (a port, an IP-literal, odd bytes,
// an incomplete line) returns false and is left to completeField.
func hostField(buf []byte, s, max int) (name, value []byte, lf int, ok bool) {
	v := buf[:min(len(buf), s+max+1)] // as in completeField
	if s < 0 || s+5 >= len(v) || binary.LittleEndian.Uint32(v[s:])|0x20202020 != hostWord || v[s+4] != ':' {
		return nil, nil, 0, false
	}
	i := s + 5
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	j := i
	for j < len(v) && hostTab[v[j]] {
		j++
	}
	e := j
	for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
		j++
	}
	if e == i || j >= len(v) || v[j] != '\r' || j+1 >= len(buf) || buf[j+1] != '\n' {
		return nil, nil, 0, false
	}
	return v[s : s+4], v[i:e], j + 1, true
}

// nameMask has the top bit set in the bytes of x that are not an ASCII
// letter, digit or '-', what nearly every field name is made of; the
// caller goes on byte by byte from the first one, which may still be
// another tchar. Every byte is tested on its own low seven bits (no carry
// crosses a byte), and bytes with the top bit set are flagged.
func nameMask(x uint64) uint64 {
	t := x &^ hi8
	l := t | lo8*0x20 // letters to lower case
	letter := (l + lo8*(0x80-'a')) &^ (l + lo8*(0x80-'z'-1))
	digit := (t + lo8*(0x80-'0')) &^ (t + lo8*(0x80-'9'-1))
	z := t ^ lo8*'-'
	hyphen := ^(z + lo8*0x7f)
	return ^(letter|digit|hyphen)&hi8 | x&hi8
}

// ctlIndex returns the index of the first byte of buf[i:end] below 0x20 or
// equal to 0x7F (what a field value may not hold but HTAB, and the CR that
// ends it), or end when there is none. It tests eight bytes at a time with
// the "has less than" and "has zero" word tricks: the lowest flagged byte
// is always a real one (a borrow only runs upwards from one), so its
// position is exact. The last few bytes are tested as the top of the word
// ending at end when buf holds eight bytes before it, so a short value
// costs one word too; the zero bytes shifted in above them are flagged
// only above the bytes tested.
func ctlIndex(buf []byte, i, end int) int {
	for ; i+8 <= end; i += 8 {
		if m := ctlMask(binary.LittleEndian.Uint64(buf[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	if i >= end {
		return end
	}
	if end >= 8 {
		rest := end - i // 1..7
		x := binary.LittleEndian.Uint64(buf[end-8:end]) >> (8 * (8 - rest))
		return min(i+bits.TrailingZeros64(ctlMask(x))>>3, end)
	}
	for ; i < end; i++ {
		if c := buf[i]; c < 0x20 || c == 0x7f {
			return i
		}
	}
	return end
}

// ctlMask has the top bit set in the bytes of x below 0x20 or equal to
// 0x7F, exact for the lowest such byte.
func ctlMask(x uint64) uint64 {
	y := x ^ (lo8 * 0x7f)
	return ((x-lo8*0x20)&^x | (y-lo8)&^y) & hi8
}
