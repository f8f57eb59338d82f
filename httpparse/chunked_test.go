package httpparse

import (
	"reflect"
	"strings"
	"testing"
)

// chunkCase is one chunked body (after the head) and what decoding it gives.
type chunkCase struct {
	rule       string
	body       string // chunked framing; bytes after it are the next request
	lim        Limits
	err        *Error
	incomplete bool
	want       string      // decoded body
	trailers   [][2]string // expected trailers
	rest       int         // bytes after the body left unconsumed
}

// decodeAll feeds body to a decoder step bytes at a time (0: at once),
// presenting unconsumed bytes again as the API asks, and on every call hands
// the decoder a fresh copy so the trailers must live in its own buffer.
func decodeAll(d *ChunkedDecoder, body []byte, step int) (out []byte, rest int, done bool, err error) {
	pos, avail := 0, 0
	for {
		if step == 0 {
			avail = len(body)
		} else {
			avail = min(avail+step, len(body))
		}
		in := append([]byte(nil), body[pos:avail]...)
		var n int
		out, n, done, err = d.Decode(out, in)
		for i := range in {
			in[i] = '#' // the caller reuses its buffer
		}
		if err != nil {
			return out, 0, false, err
		}
		if n < 0 || n > len(in) {
			return out, 0, false, &Error{Status: 999, Reason: "consumed out of range"}
		}
		pos += n
		if done {
			return out, len(body) - pos, true, nil
		}
		if avail == len(body) {
			return out, 0, false, nil
		}
	}
}

func trailerPairs(hs []Header) [][2]string {
	var out [][2]string
	for _, h := range hs {
		out = append(out, [2]string{string(h.Name), string(h.Value)})
	}
	return out
}

func runChunkCases(t *testing.T, cases []chunkCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			type result struct {
				Out      string
				Rest     int
				Done     bool
				Err      error
				Trailers [][2]string
			}
			var first *result
			for _, step := range []int{0, 1, 2, 5} {
				d := ChunkedDecoder{Limits: c.lim}
				out, rest, done, err := decodeAll(&d, []byte(c.body), step)
				r := &result{Out: string(out), Rest: rest, Done: done, Err: err, Trailers: trailerPairs(d.Trailers)}
				if first == nil {
					first = r
				} else if !reflect.DeepEqual(r, first) {
					t.Fatalf("step %d: %+v, one feed: %+v", step, r, first)
				}
			}
			r := first
			switch {
			case c.err != nil:
				if r.Err != c.err {
					t.Fatalf("body=%q: want %v, got %+v", c.body, c.err, r)
				}
			case c.incomplete:
				if r.Err != nil || r.Done {
					t.Fatalf("body=%q: want incomplete, got %+v", c.body, r)
				}
			default:
				if r.Err != nil || !r.Done || r.Out != c.want || r.Rest != c.rest || !reflect.DeepEqual(r.Trailers, c.trailers) {
					t.Fatalf("body=%q: want %q rest=%d trailers=%q, got %+v", c.body, c.want, c.rest, c.trailers, r)
				}
			}
		})
	}
}

// chunkedCases covers RFC 9112 §7.1 (chunks, extensions, trailers).
func chunkedCases() []chunkCase {
	return []chunkCase{
		{rule: "§7.1 last chunk only", body: "0\r\n\r\n", want: ""},
		{rule: "§7.1 two chunks", body: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", want: "hello world"},
		{rule: "§7.1 hex digits of both cases", body: "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n", want: "0123456789abcdefghijk"},
		{rule: "§7.1 leading zeros", body: "0005\r\nhello\r\n000\r\n\r\n", want: "hello"},
		{rule: "§7.1 sixteen digits", body: "0000000000000005\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{rule: "§7.1 next request left unconsumed", body: "1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", want: "x", rest: 16},
		{rule: "§7.1 chunk data may hold CRLF", body: "4\r\n\r\n\r\n\r\n0\r\n\r\n", want: "\r\n\r\n"},
		{rule: "§7.1.1 extension name", body: "5;a\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{rule: "§7.1.1 extension name=token", body: "5;a=b;c=d\r\nhello\r\n0;e\r\n\r\n", want: "hello"},
		{rule: "§7.1.1 BWS around ';' and '='", body: "5 ; a = b\t;\tc\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{rule: "§7.1.1 quoted-string value with quoted-pair", body: "5;a=\"q \\\" ; x\"\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{rule: "§7.1.1 quoted value then another extension", body: "5;a=\"x\";b\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{rule: "§7.1.1 obs-text in quoted value", body: "5;a=\"\xff\"\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{rule: "§7.1.3 trailers", body: "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nB:  c d \r\n\r\n", want: "hello", trailers: [][2]string{{"X-Checksum", "abc"}, {"B", "c d"}}},
		{rule: "§7.1.3 trailer that looks like a request line is a value", body: "0\r\nX: POST / HTTP/1.1\r\n\r\n", want: "", trailers: [][2]string{{"X", "POST / HTTP/1.1"}}},
		{rule: "§7.1.3 content-describing trailer allowed", body: "0\r\nContent-Type: text/evil\r\n\r\n", trailers: [][2]string{{"Content-Type", "text/evil"}}},
		{rule: "§7.1 prefix is incomplete", body: "5\r\nhel", incomplete: true},
		{rule: "§7.1 incomplete before the last CRLF", body: "0\r\n\r", incomplete: true},
		{rule: "§7.1 incomplete trailer", body: "0\r\nX: y", incomplete: true},
		{rule: "§7.1 large valid size waits for data", lim: Limits{MaxBodySize: 1 << 62}, body: "FFFFFFFFFFFFFFE\r\n...", incomplete: true},
		{rule: "§7.1 0x prefix", body: "0x5\r\nhello\r\n0\r\n\r\n", err: errChunkSize},
		{rule: "§7.1 plus sign", body: "+5\r\nhello\r\n0\r\n\r\n", err: errChunkSize},
		{rule: "§7.1 minus sign", body: "-1\r\nx\r\n0\r\n\r\n", err: errChunkSize},
		{rule: "§7.1 underscore", body: "1_0\r\n", err: errChunkSize},
		{rule: "§7.1 leading space", body: " 5\r\nhello\r\n0\r\n\r\n", err: errChunkSize},
		{rule: "§7.1 not hex", body: "z\r\n", err: errChunkSize},
		{rule: "§7.1 trailing garbage", body: "1x\r\na\r\n0\r\n\r\n", err: errChunkSize},
		{rule: "§7.1 empty size line", body: "\r\n", err: errChunkSize},
		{rule: "§7.1 size, space, junk", body: "2 junk\r\naa\r\n0\r\n\r\n", err: errChunkSize},
		{rule: "§7.1.1 BWS without ';'", body: "5 \r\nhello\r\n0\r\n\r\n", err: errChunkSize},
		{rule: "§7.1.1 BWS and HTAB without ';'", body: "5   \t \r\n01234\r\n0\r\n\r\n", err: errChunkSize},
		{rule: "§7.1 NUL after size", body: "10\x00\r\n", err: errChunkSize},
		{rule: "§7.1 seventeen digits", body: "00000000000000005\r\n", err: errChunkSizeOverflow},
		{rule: "§7.1 2^64-1", body: "FFFFFFFFFFFFFFFF\r\n", err: errChunkSizeOverflow},
		{rule: "§7.1 2^63", body: "8000000000000000\r\n", err: errChunkSizeOverflow},
		{rule: "§7.1 many digits, rejected before the line ends", body: strings.Repeat("9", 100), err: errChunkSizeOverflow},
		{rule: "413 largest int64 is over the body limit", body: "7FFFFFFFFFFFFFFF\r\n", err: errBodyTooLarge},
		{rule: "413 body over MaxBodySize across chunks", lim: Limits{MaxBodySize: 8}, body: "5\r\nhello\r\n4\r\n", err: errBodyTooLarge},
		{rule: "413 body at MaxBodySize", lim: Limits{MaxBodySize: 8}, body: "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", want: "helloabc"},
		{rule: "§7.1.1 ';' without name", body: "5;\r\nhello\r\n0\r\n\r\n", err: errChunkExtension},
		{rule: "§7.1.1 ';' without name, bare LF", body: "5;\nhello\r\n", err: errBareLF},
		{rule: "§7.1.1 bad name character", body: "5;bad[=x\r\n", err: errChunkExtension},
		{rule: "§7.1.1 NUL in extension", body: "5;\x00ext\r\n", err: errChunkExtension},
		{rule: "§7.1.1 '=' without value", body: "5;a=\r\n", err: errChunkExtension},
		{rule: "§7.1.1 BWS before CRLF", body: "5;a \r\n", err: errChunkExtension},
		{rule: "§7.1.1 BWS after a value before CRLF", body: "5;a=b \r\n", err: errChunkExtension},
		{rule: "§7.1.1 BWS after a quoted value before CRLF", body: "5;a=\"b\"\t\r\n", err: errChunkExtension},
		{rule: "§7.1.1 two names", body: "5;a b\r\n", err: errChunkExtension},
		{rule: "§7.1.1 unterminated quoted value", body: "5;a=\"abc\r\nhello\r\n", err: errBareCR},
		{rule: "§7.1.1 junk after quoted value", body: "5;a=\"x\"y\r\n", err: errChunkExtension},
		{rule: "§7.1.1 CTL in quoted value", body: "5;a=\"\x01\"\r\n", err: errChunkExtension},
		{rule: "§7.1.1 extension over MaxChunkExtension", lim: Limits{MaxChunkExtension: 8}, body: "5;abcdefgh\r\n", err: errChunkExtTooLong},
		{rule: "§7.1.1 extension at MaxChunkExtension", lim: Limits{MaxChunkExtension: 8}, body: "5;abcdefg\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{rule: "§7.1.1 default MaxChunkExtension is 4096", body: "1;" + strings.Repeat("x", 4095) + "\r\nx\r\n0\r\n\r\n", want: "x"},
		{rule: "§7.1.1 default MaxChunkExtension + 1", body: "1;" + strings.Repeat("x", 4096) + "\r\n", err: errChunkExtTooLong},
		{rule: "§7.1 bare LF after size (errata 7633)", body: "5\nhello\r\n0\r\n\r\n", err: errBareLF},
		{rule: "§7.1 bare LF after data", body: "5\r\nhello\n0\r\n\r\n", err: errBareLF},
		{rule: "§7.1 bare LF ending the last chunk", body: "0\n\r\n", err: errBareLF},
		{rule: "§7.1 bare LF ending the body", body: "0\r\n\n", err: errBareLF},
		{rule: "§7.1 bare CR after size", body: "5\rhello\r\n", err: errBareCR},
		{rule: "§7.1 bare CR before extension", body: "5\r;ABCD\r\n", err: errBareCR},
		{rule: "§7.1 bare CR in extension", body: "5;a\rX\r\n", err: errBareCR},
		{rule: "§7.1 bare CR ending the body", body: "0\r\n\rX", err: errBareCR},
		{rule: "§7.1 data longer than size", body: "5\r\nhello!!\r\n0\r\n\r\n", err: errChunkData},
		{rule: "§7.1 data shorter than size", body: "5\r\nhell\r\n0\r\n\r\n", err: errBareLF},
		{rule: "§7.1 next size glued to data", body: "5\r\nhello0\r\n\r\n", err: errChunkData},
		{rule: "§7.1 CR then junk after data", body: "3\r\nxxx\r_1a\r\n", err: errChunkData},
		{rule: "§7.1 missing CRLF after data, then a line", body: "3\r\nfoo\r\n\r\n", err: errChunkSize},
		{rule: "§7.1.3 trailer bare LF", body: "0\r\na: b\nc: d\r\n\r\n", err: errBareLF},
		{rule: "§7.1.3 trailer bare CR, rejected before the LF", body: "0\r\na: b\rc", err: errBareCR},
		{rule: "§7.1.3 trailer obs-fold", body: "0\r\na: b\r\n c\r\n\r\n", err: errObsFold},
		{rule: "§7.1.3 trailer starting with SP", body: "0\r\n a: b\r\n\r\n", err: errObsFold},
		{rule: "§7.1.3 trailer without colon", body: "0\r\nab\r\n\r\n", err: errFieldNoColon},
		{rule: "§7.1.3 trailer control character", body: "0\r\na: \x01\r\n\r\n", err: errFieldValueCTL},
		{rule: "431 trailer line over MaxFieldSize", lim: Limits{MaxFieldSize: 8}, body: "0\r\nX: 123456\r\n\r\n", err: errFieldTooLarge},
		{rule: "431 trailer over MaxFieldSize before its LF", lim: Limits{MaxFieldSize: 8}, body: "0\r\nX: " + strings.Repeat("v", 100), err: errFieldTooLarge},
		{rule: "431 trailer at MaxFieldSize", lim: Limits{MaxFieldSize: 8}, body: "0\r\nX: 12345\r\n\r\n", trailers: [][2]string{{"X", "12345"}}},
		{rule: "431 trailers over MaxHeaderCount", lim: Limits{MaxHeaderCount: 2}, body: "0\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n", err: errTooManyFields},
	}
}

// TestChunked runs chunkedCases.
func TestChunked(t *testing.T) { runChunkCases(t, chunkedCases()) }

// forbiddenTrailersCases covers RFC 9110 §6.5.1: framing, routing,
// connection, authentication and expectation fields refused in trailers.
func forbiddenTrailersCases() []chunkCase {
	var cases []chunkCase
	for _, name := range []string{"Content-Length", "transfer-encoding", "HOST", "Authorization", "Proxy-Authorization",
		"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade", "Expect"} {
		cases = append(cases, chunkCase{rule: "trailer " + name, body: "5\r\nhello\r\n0\r\n" + name + ": x\r\n\r\n", err: errTrailerField})
	}
	for _, name := range []string{"Content-Type", "Content-Lengthy", "X-Host", "Hos", "Digest", "Server-Timing"} {
		cases = append(cases, chunkCase{rule: "trailer " + name + " allowed", body: "0\r\n" + name + ": x\r\n\r\n", trailers: [][2]string{{name, "x"}}})
	}
	return cases
}

// TestForbiddenTrailers runs forbiddenTrailersCases.
func TestForbiddenTrailers(t *testing.T) { runChunkCases(t, forbiddenTrailersCases()) }

// TestChunkedReuse checks that Reset readies the decoder for another body,
// that Decode after done consumes nothing, and that earlier trailers stay
// intact while later ones are added (the buffer may grow).
func TestChunkedReuse(t *testing.T) {
	var d ChunkedDecoder
	long := strings.Repeat("v", 3000)
	body := "3\r\nabc\r\n0\r\nA: 1\r\nB: " + long + "\r\nC: 3\r\n\r\nNEXT"
	for round := 0; round < 3; round++ {
		d.Reset()
		out, n, done, err := d.Decode(nil, []byte(body))
		if err != nil || !done || string(out) != "abc" || n != len(body)-4 {
			t.Fatalf("round %d: out=%q n=%d done=%v err=%v", round, out, n, done, err)
		}
		want := [][2]string{{"A", "1"}, {"B", long}, {"C", "3"}}
		if got := trailerPairs(d.Trailers); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: trailers %q", round, got)
		}
		out2, n2, done2, err2 := d.Decode(out, []byte("more"))
		if n2 != 0 || !done2 || err2 != nil || string(out2) != "abc" {
			t.Fatalf("Decode after done: n=%d done=%v err=%v", n2, done2, err2)
		}
	}
}
