package httpparse

import (
	"bytes"
	"math"
)

// Chunked-decoder states (RFC 9112 §7.1).
const (
	csSize0         uint8 = iota // start of a chunk line: first HEXDIG
	csSize                       // more HEXDIG
	csSizeWS                     // BWS after the size: only ';' may follow
	csExtSemi                    // after ';': BWS, then a name
	csExtName                    // in chunk-ext-name
	csExtNameWS                  // BWS after a name: '=' or ';'
	csExtEq                      // after '=': BWS, then a value
	csExtToken                   // in a token value
	csExtQuoted                  // in a quoted-string value
	csExtQuotedPair              // after '\' in a quoted-string
	csExtQuotedEnd               // right after the closing quote
	csExtValueWS                 // BWS after a value: only ';' may follow
	csLineLF                     // after the CR ending a chunk line
	csData                       // in chunk data
	csDataCR                     // after chunk data: CR
	csDataLF                     // after chunk data: LF
	csTrailerStart               // at the start of a trailer line (or the final CRLF)
	csTrailerLine                // inside a trailer line
	csEndLF                      // after the final CR
	csDone
)

// ChunkedDecoder decodes one chunked body incrementally. The zero value is
// ready; set Limits (zero fields take the defaults) and call Reset before
// the next body.
//
// Decode never needs the same bytes twice: it consumes all of its input
// until the body ends, keeping partial chunk lines as state and partial
// trailer lines in its own buffer, so a body arriving in pieces is decoded in
// linear time. A body cut short is not an error here (Decode just wants more
// input); the engine treats EOF or a timeout before done as the failure.
type ChunkedDecoder struct {
	Limits Limits
	// Trailers holds the trailer fields in order. Names and values point
	// into the decoder's own buffer and are valid until Reset.
	Trailers []Header

	lim    Limits
	inited bool
	st     uint8
	size   int64 // chunk size being read, then bytes of chunk data left
	digits int
	extLen int      // bytes after the size digits on this chunk line
	total  int64    // decoded bytes so far
	buf    []byte   // the trailer section, copied from the input
	line   lineScan // the current trailer line in buf
}

// Reset prepares the decoder for the next body, keeping its buffers.
func (d *ChunkedDecoder) Reset() {
	d.Trailers = d.Trailers[:0]
	d.buf = d.buf[:0]
	d.inited = false
	d.st = csSize0
	d.size, d.digits, d.extLen, d.total = 0, 0, 0, 0
}

// Decode consumes chunked framing from in and appends the decoded body bytes
// to dst. It returns the extended dst, how many bytes of in it consumed,
// done once the last chunk and the trailer section (with its final CRLF) are
// complete, or an *Error. On done, in[consumed:] is the next request. Bytes
// not consumed (none, before done) are to be presented again at the front of
// the next call's in.
func (d *ChunkedDecoder) Decode(dst, in []byte) (out []byte, consumed int, done bool, err error) {
	if !d.inited {
		d.lim = d.Limits.withDefaults()
		d.inited = true
	}
	i := 0
	for i < len(in) {
		c := in[i]
		switch d.st {
		case csData:
			n := int64(len(in) - i)
			if n > d.size {
				n = d.size
			}
			dst = append(dst, in[i:i+int(n)]...)
			i += int(n)
			d.size -= n
			if d.size == 0 {
				d.st = csDataCR
				if i+1 < len(in) && in[i] == '\r' && in[i+1] == '\n' {
					i += 2
					d.st = csSize0
					d.size, d.digits, d.extLen = 0, 0, 0
				}
			}
			continue
		case csDataCR:
			switch c {
			case '\r':
				d.st = csDataLF
			case '\n':
				return dst, i, false, errBareLF
			default:
				return dst, i, false, errChunkData
			}
		case csDataLF:
			if c != '\n' {
				return dst, i, false, errChunkData
			}
			d.st = csSize0
			d.size, d.digits, d.extLen = 0, 0, 0
		case csTrailerStart:
			d.buf = d.buf[:0]
			d.line.reset(0)
			d.st = csTrailerLine
			continue
		case csTrailerLine:
			// Copy up to the line's LF into the decoder's own buffer (the
			// trailers must outlive the input), no further than the scanner
			// needs to reach a verdict on the line's length, then scan it.
			take := len(in) - i
			if j := bytes.IndexByte(in[i:], '\n'); j >= 0 {
				take = j + 1
			}
			if room := d.line.start + d.lim.MaxFieldSize + 2 - len(d.buf); take > room {
				take = room // MaxFieldSize+2 bytes always settle a line
			}
			if take <= 0 {
				return dst, i, false, errFieldTooLarge // unreachable; never spin
			}
			d.buf = append(d.buf, in[i:i+take]...)
			i += take
			res, lf, err := d.line.scan(d.buf, d.lim.MaxFieldSize, false)
			switch {
			case err != nil:
				return dst, i, false, err
			case res == lineEmpty:
				d.st = csDone
				return dst, i, true, nil
			case res == lineField:
				if err := d.trailer(lf); err != nil {
					return dst, i, false, err
				}
				d.line.reset(lf + 1)
			}
			continue
		case csDone:
			return dst, 0, true, nil
		case csSize0:
			// Fast path for the usual "1a\r\n": the whole line is here and has
			// no extension. Anything else goes byte by byte below.
			j := i
			for j < len(in) && j-i < 16 && hexTab[in[j]] {
				j++
			}
			if j > i && j+1 < len(in) && in[j] == '\r' && in[j+1] == '\n' && (j-i < 16 || hexVal[in[i]] < 8) {
				var size int64
				for _, h := range in[i:j] {
					size = size<<4 | int64(hexVal[h])
				}
				d.size = size
				if err := d.endChunkLine(); err != nil {
					return dst, j + 1, false, err
				}
				i = j + 2
				continue
			}
			fallthrough
		default:
			n, err := d.chunkLine(in[i:])
			i += n
			if err != nil {
				return dst, i, false, err
			}
			continue
		}
		i++
	}
	if d.st == csDone {
		return dst, 0, true, nil
	}
	return dst, i, false, nil
}

// chunkLine runs the chunk-line state machine over in until the line ends
// (its LF consumed) or in does; it returns the bytes consumed, and on error
// the index of the offending byte.
func (d *ChunkedDecoder) chunkLine(in []byte) (int, *Error) {
	for i, c := range in {
		if err := d.chunkLineByte(c); err != nil {
			return i, err
		}
		if d.st == csData || d.st == csTrailerStart {
			return i + 1, nil
		}
	}
	return len(in), nil
}

// chunkLineByte advances the chunk-line state machine by one byte:
// chunk-size [ chunk-ext ] CRLF with chunk-size = 1*HEXDIG and
// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ).
func (d *ChunkedDecoder) chunkLineByte(c byte) *Error {
	if d.st == csLineLF {
		if c != '\n' {
			return errBareCR
		}
		return d.endChunkLine()
	}
	if c == '\n' {
		return errBareLF
	}
	if d.st == csSize0 || d.st == csSize {
		if hexTab[c] {
			// more than 16 digits, or a value over 2^63-1, overflows
			d.digits++
			if d.digits > 16 || d.size > math.MaxInt64>>4 {
				return errChunkSizeOverflow
			}
			d.size = d.size<<4 | int64(hexVal[c])
			d.st = csSize
			return nil
		}
		if d.st == csSize0 {
			return errChunkSize
		}
	}
	if c == '\r' {
		switch d.st {
		case csSize, csExtName, csExtToken, csExtQuotedEnd:
			d.st = csLineLF
			return nil
		case csExtQuoted, csExtQuotedPair:
			return errBareCR
		case csSizeWS:
			return errChunkSize
		}
		return errChunkExtension
	}
	d.extLen++
	if d.extLen > d.lim.MaxChunkExtension {
		return errChunkExtTooLong
	}
	ws := c == ' ' || c == '\t'
	switch d.st {
	case csSize:
		switch {
		case c == ';':
			d.st = csExtSemi
		case ws:
			d.st = csSizeWS
		default:
			return errChunkSize
		}
	case csSizeWS:
		switch {
		case c == ';':
			d.st = csExtSemi
		case !ws:
			return errChunkSize
		}
	case csExtSemi:
		switch {
		case tokenTab[c]:
			d.st = csExtName
		case !ws:
			return errChunkExtension
		}
	case csExtName:
		switch {
		case tokenTab[c]:
		case c == '=':
			d.st = csExtEq
		case c == ';':
			d.st = csExtSemi
		case ws:
			d.st = csExtNameWS
		default:
			return errChunkExtension
		}
	case csExtNameWS:
		switch {
		case c == '=':
			d.st = csExtEq
		case c == ';':
			d.st = csExtSemi
		case !ws:
			return errChunkExtension
		}
	case csExtEq:
		switch {
		case tokenTab[c]:
			d.st = csExtToken
		case c == '"':
			d.st = csExtQuoted
		case !ws:
			return errChunkExtension
		}
	case csExtToken:
		switch {
		case tokenTab[c]:
		case c == ';':
			d.st = csExtSemi
		case ws:
			d.st = csExtValueWS
		default:
			return errChunkExtension
		}
	case csExtQuoted:
		switch {
		case c == '"':
			d.st = csExtQuotedEnd
		case c == '\\':
			d.st = csExtQuotedPair
		case !qdtextTab[c]:
			return errChunkExtension
		}
	case csExtQuotedPair:
		// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
		if !qdtextTab[c] && c != '"' && c != '\\' {
			return errChunkExtension
		}
		d.st = csExtQuoted
	case csExtQuotedEnd, csExtValueWS:
		switch {
		case c == ';':
			d.st = csExtSemi
		case ws:
			d.st = csExtValueWS
		default:
			return errChunkExtension
		}
	}
	return nil
}

// endChunkLine acts on a complete chunk line: the last chunk leads to the
// trailer section, any other to its data, within MaxBodySize.
func (d *ChunkedDecoder) endChunkLine() *Error {
	if d.size == 0 {
		d.st = csTrailerStart
		return nil
	}
	if d.size > d.lim.MaxBodySize-d.total {
		return errBodyTooLarge
	}
	d.total += d.size
	d.st = csData
	return nil
}

// trailer takes the complete trailer field line ending at d.buf[lf] and
// refuses fields that must not come after the content (RFC 9110 §6.5.1).
// Trailers accumulate in d.buf: each line starts where the previous one
// ended, so earlier Trailers entries stay intact.
func (d *ChunkedDecoder) trailer(lf int) *Error {
	if len(d.Trailers) >= d.lim.MaxHeaderCount {
		return errTooManyFields
	}
	name, value := d.line.field(d.buf, lf)
	if forbiddenTrailer(name) {
		return errTrailerField
	}
	d.Trailers = append(d.Trailers, Header{Name: name, Value: value})
	return nil
}

// forbiddenTrailer lists fields a trailer must not carry because they frame
// the message, route it, manage the connection, authenticate, or ask
// something before the content is read: merging any of them after the body
// would let a sender change what was already acted on. Fields describing the
// content (Content-Type, Content-Encoding ...) are accepted and left to the
// handler, since a trailer never replaces a header field here.
func forbiddenTrailer(name []byte) bool {
	switch len(name) {
	case 2:
		return tokenEqualFold(name, "te")
	case 4:
		return tokenEqualFold(name, "host")
	case 6:
		return tokenEqualFold(name, "expect")
	case 7:
		return tokenEqualFold(name, "trailer") || tokenEqualFold(name, "upgrade")
	case 10:
		return tokenEqualFold(name, "connection") || tokenEqualFold(name, "keep-alive")
	case 13:
		return tokenEqualFold(name, "authorization")
	case 14:
		return tokenEqualFold(name, "content-length")
	case 16:
		return tokenEqualFold(name, "proxy-connection")
	case 17:
		return tokenEqualFold(name, "transfer-encoding")
	case 19:
		return tokenEqualFold(name, "proxy-authorization")
	}
	return false
}
