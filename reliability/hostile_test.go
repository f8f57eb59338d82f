package reliability_test

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// Building blocks of the attack payloads.
const (
	// smuggled is the request an attacker hides where a request must not be
	// found (in a body, after a conflicting framing header); it must never
	// reach a handler as a request.
	smuggled = "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
	// tail is a harmless request sent after the attack on the same
	// connection: it is served only when the server rightly kept framing,
	// and it closes the connection so that every exchange ends.
	tail = "GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	// post starts a POST to the recorder.
	post = "POST / HTTP/1.1\r\nHost: a\r\n"
)

// chunk frames s as one chunk.
func chunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }

// chunkedBody frames s as a whole chunked body.
func chunkedBody(s string) string { return chunk(s) + "0\r\n\r\n" }

// withCL is a POST whose Content-Length frames body.
func withCL(body string) string {
	return fmt.Sprintf("%sContent-Length: %d\r\n\r\n%s", post, len(body), body)
}

var (
	afterRec = record{Method: "GET", Target: "/after", Host: "a"}
	firstRec = record{Method: "GET", Target: "/first", Host: "a"}
	first    = "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
)

func postRec(body string) record { return record{Method: "POST", Target: "/", Host: "a", Body: body} }

// attack is one hostile exchange: the raw bytes a client sends on one
// connection, the statuses of the responses in order (the server must close
// the connection after the last one), and exactly what the handlers must
// have seen from that connection, in order.
type attack struct {
	name string
	raw  string
	want []int
	seen []record
}

// attacks is the table of hostile payloads. The verdicts follow RFC 9112
// and RFC 9110: a request whose framing is ambiguous or malformed is a 400
// (§6.1, §6.3: both Transfer-Encoding and Content-Length, a final coding
// other than chunked, an invalid or repeated Content-Length), an unknown
// transfer coding a 501 (§6.1), a body over the limit a 413, and the
// connection closes after every rejection (§6.3: the server cannot know
// where the next request starts). Rows whose raw bytes are well-formed
// (a request hidden in a body, an absolute-form target) check that the
// server framed them right: the hidden request is body, never a request.
func attacks() []attack {
	sm := smuggled
	return []attack{
		// Framing conflicts: CL.TE, TE.CL and TE.TE.
		{name: "CL.TE", raw: post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + sm + tail, want: []int{400}},
		{name: "TE.CL", raw: post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "CL.TE with Content-Length 0", raw: post + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE in HTTP/1.0", raw: "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE chunked then identity on two lines", raw: post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE chunked, identity", raw: post + "Transfer-Encoding: chunked, identity\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE xchunked", raw: post + "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello" + sm + tail, want: []int{400}},
		{name: "TE.TE xchunked without Content-Length", raw: post + "Transfer-Encoding: xchunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE chunked with a vertical tab", raw: post + "Transfer-Encoding: \x0bchunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE chunked with a form feed", raw: post + "Transfer-Encoding: chunked\x0c\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE chunked with NUL", raw: post + "Transfer-Encoding: chunked\x00\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE quoted chunked", raw: post + "Transfer-Encoding: \"chunked\"\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE chunked with a parameter", raw: post + "Transfer-Encoding: chunked;q=1\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE chunked and junk", raw: post + "Transfer-Encoding: chunked x\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE non-ASCII lookalike", raw: post + "Transfer-Encoding: chunk\xc3\xa9d\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE chunked twice on one line", raw: post + "Transfer-Encoding: chunked, chunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE chunked twice on two lines", raw: post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE space before the colon", raw: post + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello" + sm + tail, want: []int{400}},
		{name: "TE.TE tab before the colon", raw: post + "Transfer-Encoding\t: chunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE value on a folded line", raw: post + "Transfer-Encoding:\r\n chunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE identity folded after chunked", raw: post + "Transfer-Encoding: chunked\r\n , identity\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE header hidden in a folded line", raw: post + "X-A: b\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello" + tail, want: []int{400}},
		{name: "TE.TE empty value", raw: post + "Transfer-Encoding: \r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE only commas", raw: post + "Transfer-Encoding: , ,\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE.TE chunked, gzip", raw: post + "Transfer-Encoding: chunked, gzip\r\n\r\n" + chunkedBody(sm) + tail, want: []int{400}},
		{name: "TE gzip, chunked is not implemented", raw: post + "Transfer-Encoding: gzip, chunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{501}},
		{name: "TE identity alone", raw: post + "Transfer-Encoding: identity\r\n\r\n" + sm + tail, want: []int{400}},
		{name: "Transfer_Encoding is another field: Content-Length frames",
			raw:  post + "Transfer_Encoding: chunked\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(sm)) + sm + tail,
			want: []int{200, 200}, seen: []record{postRec(sm), afterRec}},
		{name: "TE Chunked in capitals frames as chunked",
			raw:  post + "Transfer-Encoding: CHUNKED\r\n\r\n" + chunkedBody(sm) + tail,
			want: []int{200, 200}, seen: []record{postRec(sm), afterRec}},
		{name: "TE chunked surrounded by tabs frames as chunked",
			raw:  post + "Transfer-Encoding:\t chunked \t\r\n\r\n" + chunkedBody(sm) + tail,
			want: []int{200, 200}, seen: []record{postRec(sm), afterRec}},

		// Content-Length.
		{name: "CL twice, same value", raw: post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + sm + tail, want: []int{400}},
		{name: "CL twice, different values", raw: post + "Content-Length: 5\r\nContent-Length: 37\r\n\r\nhello" + sm + tail, want: []int{400}},
		{name: "CL list", raw: post + "Content-Length: 5, 5\r\n\r\nhello" + sm + tail, want: []int{400}},
		{name: "CL with a plus sign", raw: post + "Content-Length: +5\r\n\r\nhello" + sm + tail, want: []int{400}},
		{name: "CL negative", raw: post + "Content-Length: -1\r\n\r\n" + sm + tail, want: []int{400}},
		{name: "CL in hex", raw: post + "Content-Length: 0x5\r\n\r\nhello" + sm + tail, want: []int{400}},
		{name: "CL with an inner space", raw: post + "Content-Length: 1 0\r\n\r\nhello" + sm + tail, want: []int{400}},
		{name: "CL with NUL", raw: post + "Content-Length: 5\x00\r\n\r\nhello" + sm + tail, want: []int{400}},
		{name: "CL empty", raw: post + "Content-Length: \r\n\r\n" + sm + tail, want: []int{400}},
		{name: "CL overflows int64", raw: post + "Content-Length: 99999999999999999999\r\n\r\n" + sm + tail, want: []int{400}},
		{name: "CL 2^63 wraps to negative", raw: post + "Content-Length: 9223372036854775808\r\n\r\n" + sm + tail, want: []int{400}},
		{name: "CL over the body limit", raw: post + "Content-Length: 2000000\r\n\r\n" + sm + tail, want: []int{413}},

		// Chunked bodies.
		{name: "chunk size overflows int64 (17 digits)", raw: post + "Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n" + sm + tail, want: []int{400}},
		{name: "chunk size 2^64-1", raw: post + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n" + sm + tail, want: []int{400}},
		{name: "chunk size with leading zeros then overflow", raw: post + "Transfer-Encoding: chunked\r\n\r\n00000000000000010000000000000000\r\n" + sm + tail, want: []int{400}},
		{name: "chunk size MaxInt64 is over the body limit", raw: post + "Transfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\n" + sm + tail, want: []int{413}},
		{name: "chunk size over the configured body limit", raw: post + "Transfer-Encoding: chunked\r\n\r\n200000\r\n" + sm + tail, want: []int{413}},
		{name: "chunks adding up over the configured body limit", raw: post + "Transfer-Encoding: chunked\r\n\r\n" + strings.Repeat("80000\r\n"+strings.Repeat("x", 0x80000)+"\r\n", 3) + "0\r\n\r\n" + tail, want: []int{413}},
		{name: "chunk size negative", raw: post + "Transfer-Encoding: chunked\r\n\r\n-1\r\n" + sm + tail, want: []int{400}},
		{name: "chunk size in 0x form", raw: post + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n" + tail, want: []int{400}},
		{name: "chunk size with leading space", raw: post + "Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n" + tail, want: []int{400}},
		{name: "chunk size empty", raw: post + "Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n" + tail, want: []int{400}},
		{name: "chunk data longer than its size", raw: post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc" + sm + "\r\n0\r\n\r\n" + tail, want: []int{400}},
		{name: "chunk data shorter than its size", raw: post + "Transfer-Encoding: chunked\r\n\r\n5\r\nabc\r\n0\r\n\r\n" + tail, want: []int{400}},
		{name: "bare LF after the chunk size", raw: post + "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n" + tail, want: []int{400}},
		{name: "bare LF after chunk data", raw: post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n" + tail, want: []int{400}},
		{name: "bare CR in a chunk extension", raw: post + "Transfer-Encoding: chunked\r\n\r\n3;a\rb\r\nabc\r\n0\r\n\r\n" + tail, want: []int{400}},
		{name: "chunk extension too long", raw: post + "Transfer-Encoding: chunked\r\n\r\n3;" + strings.Repeat("a", 5000) + "\r\nabc\r\n0\r\n\r\n" + tail, want: []int{400}},
		{name: "request smuggled as a trailer line", raw: post + "Transfer-Encoding: chunked\r\n\r\n0\r\n" + sm + tail, want: []int{400}},
		{name: "Content-Length in the trailer", raw: post + "Transfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 37\r\n\r\n" + sm + tail, want: []int{400}},
		{name: "Transfer-Encoding in the trailer", raw: post + "Transfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n" + tail, want: []int{400}},
		{name: "Host in the trailer", raw: post + "Transfer-Encoding: chunked\r\n\r\n0\r\nHost: evil\r\n\r\n" + tail, want: []int{400}},
		{name: "allowed trailer is accepted",
			raw:  post + "Transfer-Encoding: chunked\r\n\r\n" + chunk(sm) + "0\r\nX-Checksum: 1\r\n\r\n" + tail,
			want: []int{200, 200}, seen: []record{postRec(sm), afterRec}},

		// Line endings and bytes that parsers disagree on.
		{name: "bare LF ends the request line", raw: "GET /x HTTP/1.1\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "bare LF ends a field line", raw: "GET /x HTTP/1.1\r\nHost: a\nX: y\r\n\r\n" + tail, want: []int{400}},
		{name: "bare LF ends the head", raw: "GET /x HTTP/1.1\r\nHost: a\r\n\n" + tail, want: []int{400}},
		{name: "bare LF head with a smuggled request", raw: "GET /x HTTP/1.1\nHost: a\n\n" + sm + tail, want: []int{400}},
		{name: "bare CR ends the request line", raw: "GET /x HTTP/1.1\rHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "bare CR inside a field value", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX: a\rContent-Length: 37\r\n\r\n" + sm + tail, want: []int{400}},
		{name: "bare CR ends a field line", raw: "GET /x HTTP/1.1\r\nX: a\rHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "NUL in the method", raw: "G\x00T /x HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "NUL in the target", raw: "GET /x\x00/admin HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "NUL in a field name", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX\x00Y: z\r\n\r\n" + tail, want: []int{400}},
		{name: "NUL in a field value", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n" + tail, want: []int{400}},
		{name: "DEL in the target", raw: "GET /x\x7f HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "obs-fold", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX: a\r\n  b\r\n\r\n" + tail, want: []int{400}},
		{name: "whitespace line after the request line", raw: "GET /x HTTP/1.1\r\n Host: a\r\n\r\n" + tail, want: []int{400}},
		{name: "space before the colon of Host", raw: "GET /x HTTP/1.1\r\nHost : a\r\n\r\n" + tail, want: []int{400}},
		{name: "space before the colon of Content-Length", raw: post + "Content-Length : 37\r\n\r\n" + sm + tail, want: []int{400}},
		{name: "empty field name", raw: "GET /x HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n" + tail, want: []int{400}},
		{name: "field line without a colon", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX-Nothing\r\n\r\n" + tail, want: []int{400}},
		{name: "space inside a field name", raw: "GET /x HTTP/1.1\r\nHost: a\r\nContent Length: 37\r\n\r\n" + tail, want: []int{400}},
		{name: "non-ASCII field name", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX-\xff: y\r\n\r\n" + tail, want: []int{400}},

		// Request lines.
		{name: "method is not a token", raw: "GE(T /x HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "non-ASCII method", raw: "G\xc9T /x HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "tab after the method", raw: "GET\t/x HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "empty method", raw: " /x HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "two spaces after the method", raw: "GET  /x HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "space inside the target", raw: "GET /x /admin HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "fragment in the target", raw: "GET /x#/admin HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "bad percent-encoding", raw: "GET /x%zz HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "relative target", raw: "GET ../admin HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "asterisk with GET", raw: "GET * HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "absolute-form with userinfo", raw: "GET http://user@a/admin HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "absolute-form with a broken authority", raw: "GET http://[::1/admin HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "brackets in an origin-form target", raw: "GET /[x] HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "HTTP/0.9 request", raw: "GET /admin\r\n\r\n" + tail, want: []int{400}},
		{name: "lower-case version", raw: "GET /x http/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "three-digit version", raw: "GET /x HTTP/1.10\r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "space after the version", raw: "GET /x HTTP/1.1 \r\nHost: a\r\n\r\n" + tail, want: []int{400}},
		{name: "HTTP/2.0 version", raw: "GET /x HTTP/2.0\r\nHost: a\r\n\r\n" + tail, want: []int{505}},
		{name: "HTTP/2 preface", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + tail, want: []int{505}},
		{name: "CONNECT is not proxied", raw: "CONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n" + sm + tail, want: []int{501}},
		{name: "request line too long", raw: "GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{414}},
		{name: "field line too long", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 9000) + "\r\n\r\n" + tail, want: []int{431}},
		{name: "too many field lines", raw: "GET /x HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 120) + "\r\n" + tail, want: []int{431}},
		{name: "too many empty lines before the request", raw: strings.Repeat("\r\n", 20) + "GET /x HTTP/1.1\r\nHost: a\r\n\r\n" + tail, want: []int{400}},

		// Host.
		{name: "HTTP/1.1 without Host", raw: "GET /x HTTP/1.1\r\n\r\n" + tail, want: []int{400}},
		{name: "two Host fields", raw: "GET /x HTTP/1.1\r\nHost: a\r\nHost: evil\r\n\r\n" + tail, want: []int{400}},
		{name: "Host list", raw: "GET /x HTTP/1.1\r\nHost: a, evil\r\n\r\n" + tail, want: []int{400}},
		{name: "Host with userinfo", raw: "GET /x HTTP/1.1\r\nHost: a@evil\r\n\r\n" + tail, want: []int{400}},
		{name: "Host with a path", raw: "GET /x HTTP/1.1\r\nHost: evil/admin\r\n\r\n" + tail, want: []int{400}},
		{name: "Host with a space", raw: "GET /x HTTP/1.1\r\nHost: a evil\r\n\r\n" + tail, want: []int{400}},
		{name: "absolute-form with two Host fields", raw: "GET http://a/x HTTP/1.1\r\nHost: a\r\nHost: evil\r\n\r\n" + tail, want: []int{400}},
		{name: "absolute-form with a different Host: the target's authority wins (RFC 9112 §3.2.2)",
			raw:  "GET http://good.example/abs?q HTTP/1.1\r\nHost: evil.example\r\n\r\n" + tail,
			want: []int{200, 200}, seen: []record{{Method: "GET", Target: "http://good.example/abs?q", Host: "good.example"}, afterRec}},
		{name: "absolute-form in HTTP/1.0 with a different Host",
			raw:  "GET http://good.example/abs HTTP/1.0\r\nHost: evil.example\r\nConnection: keep-alive\r\n\r\n" + tail,
			want: []int{200, 200}, seen: []record{{Method: "GET", Target: "http://good.example/abs", Host: "good.example"}, afterRec}},

		// Requests hidden in bodies, and answers that must not read the body
		// as requests.
		{name: "request in a Content-Length body", raw: withCL(sm) + tail, want: []int{200, 200}, seen: []record{postRec(sm), afterRec}},
		{name: "request in a chunked body", raw: post + "Transfer-Encoding: chunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{200, 200}, seen: []record{postRec(sm), afterRec}},
		{name: "request split over chunks", raw: post + "Transfer-Encoding: chunked\r\n\r\n" + chunk(sm[:10]) + chunk(sm[10:]) + "0\r\n\r\n" + tail, want: []int{200, 200}, seen: []record{postRec(sm), afterRec}},
		{name: "request in a chunk extension", raw: post + "Transfer-Encoding: chunked\r\n\r\n3;x=\"GET /admin HTTP/1.1\"\r\nabc\r\n0\r\n\r\n" + tail, want: []int{200, 200}, seen: []record{postRec("abc"), afterRec}},
		{name: "request in a body after 100-continue", raw: post + fmt.Sprintf("Expect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(sm)) + sm + tail, want: []int{200, 200}, seen: []record{postRec(sm), afterRec}},
		{name: "request in the body of a GET", raw: fmt.Sprintf("GET /get HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", len(sm)) + sm + tail, want: []int{200, 200},
			seen: []record{{Method: "GET", Target: "/get", Host: "a", Body: sm}, afterRec}},
		{name: "request in the body of a 405", raw: fmt.Sprintf("POST /get HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", len(sm)) + sm + tail, want: []int{405}},
		{name: "request in the chunked body of a 405", raw: "POST /get HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(sm) + tail, want: []int{405}},
		{name: "request in the body of a 417", raw: post + fmt.Sprintf("Expect: x\r\nContent-Length: %d\r\n\r\n", len(sm)) + sm + tail, want: []int{417}},
		{name: "request after a body over the limit", raw: post + "Content-Length: 1048577\r\n\r\n" + sm + tail, want: []int{413}},
		{name: "empty lines before a request are skipped", raw: "\r\n\r\n" + tail, want: []int{200}, seen: []record{afterRec}},

		// Attacks pipelined after valid requests.
		{name: "valid then CL.TE", raw: first + post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + sm + tail,
			want: []int{200, 400}, seen: []record{firstRec}},
		{name: "valid then TE.TE folded", raw: first + post + "Transfer-Encoding:\r\n chunked\r\n\r\n" + chunkedBody(sm) + tail,
			want: []int{200, 400}, seen: []record{firstRec}},
		{name: "valid body then bare LF", raw: withCL("abc") + "GET /x HTTP/1.1\nHost: a\n\n" + tail,
			want: []int{200, 400}, seen: []record{postRec("abc")}},
		{name: "valid chunked then duplicate Content-Length", raw: post + "Transfer-Encoding: chunked\r\n\r\n" + chunkedBody("abc") + post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc" + sm + tail,
			want: []int{200, 400}, seen: []record{postRec("abc")}},
		{name: "three valid then chunk overflow", raw: first + first + withCL("x") + post + "Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n" + sm + tail,
			want: []int{200, 200, 200, 400}, seen: []record{firstRec, firstRec, postRec("x")}},
		{name: "nothing is read after Connection: close", raw: "GET /first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + sm + tail,
			want: []int{200}, seen: []record{firstRec}},
		{name: "nothing is read after an HTTP/1.0 request", raw: "GET /first HTTP/1.0\r\nHost: a\r\n\r\n" + sm + tail,
			want: []int{200}, seen: []record{firstRec}},
	}
}

// hostileServer starts the recorder on b with dispatch d and a body buffer
// of bodyBuffer bytes (0: the default).
func hostileServer(t *testing.T, b loop.Backend, d engine.Dispatch, bodyBuffer int) (*enginetest.Server, *recorder) {
	rec := newRecorder()
	cfg := baseConfig(recorderRoutes(t, rec), nil)
	cfg.Dispatch = d
	cfg.BodyBufferSize = bodyBuffer
	// Short enough that an exchange the server wrongly waits on ends in a
	// 408 within the test's read deadline, instead of hanging.
	cfg.HeaderTimeout, cfg.BodyTimeout = time.Second, time.Second
	return enginetest.Start(t, b, cfg), rec
}

// verdict is what one exchange produced.
type verdict struct {
	statuses []int
	closed   bool
	seen     []record
	err      error
}

func (v verdict) String() string {
	s := fmt.Sprintf("statuses %v closed=%v seen %v", v.statuses, v.closed, v.seen)
	if v.err != nil {
		s += " error: " + v.err.Error()
	}
	return s
}

// exchange sends parts on a new connection, pausing between them so that
// each arrives in its own segment (and, almost always, its own read on the
// server), then reads responses until the server closes.
func exchange(addr string, rec *recorder, pause time.Duration, parts ...string) verdict {
	c, err := dial(addr)
	if err != nil {
		return verdict{err: err}
	}
	defer c.Close()
	for i, p := range parts {
		if i > 0 && pause > 0 {
			time.Sleep(pause)
		}
		if _, err := c.Write([]byte(p)); err != nil {
			break // the server may rightly close before the rest is sent
		}
	}
	// The server's own timeouts are 1s and a lingering close ends within
	// 2s: an exchange still open after 3s will not end by itself.
	rs, closed, err := readAll(c, 0, 3*time.Second)
	// The handler ran before its response was written: what it saw is
	// complete once the responses are read.
	return verdict{statuses: statuses(rs), closed: closed, seen: rec.take(c), err: err}
}

func (a attack) check(v verdict) string {
	var problems []string
	if v.err != nil {
		problems = append(problems, v.err.Error())
	}
	if !reflect.DeepEqual(v.statuses, a.want) {
		problems = append(problems, fmt.Sprintf("statuses %v, want %v", v.statuses, a.want))
	}
	if !v.closed {
		problems = append(problems, "connection not closed after the last response")
	}
	if len(v.seen) != len(a.seen) || (len(a.seen) > 0 && !reflect.DeepEqual(v.seen, a.seen)) {
		problems = append(problems, fmt.Sprintf("handlers saw %v, want %v", v.seen, a.seen))
	}
	return strings.Join(problems, "; ")
}

// TestHostileRequests sends every attack whole, on every backend and in both
// dispatch modes, and checks the statuses, that the connection closes, and
// exactly what reached the handlers: a smuggled request never does.
func TestHostileRequests(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, mode := range dispatchModes {
			t.Run(mode.name, func(t *testing.T) {
				s, rec := hostileServer(t, b, mode.dispatch, mode.bodyBuffer)
				// The group returns once every parallel row has finished.
				t.Run("attacks", func(t *testing.T) {
					for _, a := range attacks() {
						t.Run(a.name, func(t *testing.T) {
							t.Parallel()
							if p := a.check(exchange(s.Addr, rec, 0, a.raw)); p != "" {
								t.Error(p)
							}
						})
					}
				})
				if n := rec.admin.Load(); n != 0 {
					t.Fatalf("%d smuggled requests reached /admin", n)
				}
			})
		}
	})
}

// splitPoints returns where to cut raw in two. With every set, it is every
// byte boundary (at most max of them, spread evenly, for the few rows that
// are long because of padding, where every boundary behaves alike).
// Otherwise it is the boundaries on both sides of each CR and LF (where
// lines, heads and chunks end) and sixteen more spread over the payload.
func splitPoints(raw string, every bool, max int) []int {
	n := len(raw)
	if n > 4096 {
		max = 16
	}
	var out []int
	if every {
		step := 1
		if n-1 > max {
			step = (n-1)/max + 1
		}
		for i := 1; i < n; i += step {
			out = append(out, i)
		}
		return out
	}
	seen := map[int]bool{}
	add := func(i int) {
		if i > 0 && i < n && !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	for i := 0; i < n && len(out) < max; i++ {
		if raw[i] == '\r' || raw[i] == '\n' {
			add(i)
			add(i + 1)
		}
	}
	for k := 1; k <= 16; k++ {
		add(k * n / 17)
	}
	return out
}

// TestHostileRequestsSplit sends every attack in two segments and requires
// the same verdict as the whole payload: how the bytes are cut into reads
// must never change how they are framed. In sync mode, where a head that
// arrives in pieces is parsed again in place, every byte boundary is tried
// (up to 256 per row); in the other modes, the boundaries around each CR
// and LF and sixteen more. The exchanges of all rows share one pool of
// connections, so that the test's length does not depend on -parallel;
// a row stops being tried after a few failing splits, and the whole mode
// after forty (each failure may cost a read timeout).
func TestHostileRequestsSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: every attack split at every boundary, a quarter of a minute; make test runs it")
	}
	const (
		workers     = 32
		maxFailures = 4  // per row
		maxTotal    = 40 // per mode: past this the server is failing wholesale
	)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, mode := range dispatchModes {
			t.Run(mode.name, func(t *testing.T) {
				s, rec := hostileServer(t, b, mode.dispatch, mode.bodyBuffer)
				rows := attacks()
				failures := make([][]string, len(rows))
				tried := make([]int, len(rows))
				var mu sync.Mutex
				totalFailures := 0
				type job struct{ row, at int }
				jobs := make(chan job)
				var wg sync.WaitGroup
				for w := 0; w < workers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for j := range jobs {
							a := rows[j.row]
							mu.Lock()
							skip := len(failures[j.row]) >= maxFailures || totalFailures >= maxTotal
							if !skip {
								tried[j.row]++
							}
							mu.Unlock()
							if skip {
								continue
							}
							p := a.check(exchange(s.Addr, rec, time.Millisecond, a.raw[:j.at], a.raw[j.at:]))
							if p != "" {
								mu.Lock()
								failures[j.row] = append(failures[j.row], fmt.Sprintf("split at %d (%q | %q): %s",
									j.at, clip(a.raw[:j.at], true), clip(a.raw[j.at:], false), p))
								totalFailures++
								mu.Unlock()
							}
						}
					}()
				}
				// Interleave the rows so that every row makes progress
				// together and a slow row does not hold the others back.
				points := make([][]int, len(rows))
				most := 0
				for r, a := range rows {
					points[r] = splitPoints(a.raw, mode.name == "sync", 256)
					most = max(most, len(points[r]))
				}
				for k := 0; k < most; k++ {
					for r := range rows {
						if k < len(points[r]) {
							jobs <- job{r, points[r][k]}
						}
					}
				}
				close(jobs)
				wg.Wait()
				total := 0
				for r, a := range rows {
					total += tried[r]
					t.Run(a.name, func(t *testing.T) {
						for _, f := range failures[r] {
							t.Error(f)
						}
						if len(failures[r]) >= maxFailures {
							t.Errorf("(stopped after %d failing splits of %d)", maxFailures, len(points[r]))
						}
					})
				}
				if totalFailures >= maxTotal {
					t.Errorf("stopped after %d failing split exchanges: rows not reported above may fail too", totalFailures)
				}
				t.Logf("%d split exchanges", total)
			})
		}
	})
}

// clip shortens s for a failure message, keeping the bytes next to the cut.
func clip(s string, keepEnd bool) string {
	const n = 24
	if len(s) <= n {
		return s
	}
	if keepEnd {
		return "..." + s[len(s)-n:]
	}
	return s[:n] + "..."
}

// byteRows are the rows sent one byte per segment: the framing conflicts
// and hidden requests, where a byte-wise parser bug would smuggle.
var byteRows = []string{
	"CL.TE", "TE.CL", "TE.TE value on a folded line", "TE.TE space before the colon",
	"bare CR inside a field value", "bare LF head with a smuggled request",
	"request in a Content-Length body", "request in a chunked body", "request split over chunks",
	"valid then CL.TE", "chunk size overflows int64 (17 digits)", "request smuggled as a trailer line",
	"absolute-form with a different Host: the target's authority wins (RFC 9112 §3.2.2)",
}

// TestHostileRequestsByteByByte sends the framing-sensitive attacks one byte
// per segment.
func TestHostileRequestsByteByByte(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the framing attacks one byte per segment, seconds on each backend; make test runs it")
	}
	rows := map[string]attack{}
	for _, a := range attacks() {
		rows[a.name] = a
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, mode := range dispatchModes {
			t.Run(mode.name, func(t *testing.T) {
				s, rec := hostileServer(t, b, mode.dispatch, mode.bodyBuffer)
				for _, name := range byteRows {
					a, ok := rows[name]
					if !ok {
						t.Fatalf("byteRows names %q, which is not in the table", name)
					}
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						parts := make([]string, len(a.raw))
						for i := range a.raw {
							parts[i] = a.raw[i : i+1]
						}
						if p := a.check(exchange(s.Addr, rec, 200*time.Microsecond, parts...)); p != "" {
							t.Error(p)
						}
					})
				}
			})
		}
	})
}

// TestUntrustedForwardingHeaders checks that a client that is not a trusted
// proxy cannot change its address or scheme with forwarding headers.
func TestUntrustedForwardingHeaders(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		type seenAddr struct{ remote, scheme string }
		got := make(chan seenAddr, 1)
		r := enginetest.Router(t, &engine.Route{Path: "/", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			got <- seenAddr{c.RemoteAddr().Addr().Unmap().String(), c.Scheme()}
		})})
		cfg := baseConfig(r, nil)
		p, err := engine.ParseProxies([]string{"10.9.9.9"}, map[string]string{"X-Forwarded-Proto": "https"})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Proxies = &p
		s := enginetest.Start(t, b, cfg)
		raw := "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6;proto=https\r\n" +
			"X-Forwarded-Proto: https\r\nX-Real-IP: 6.6.6.6\r\nConnection: close\r\n\r\n"
		v := exchange(s.Addr, newRecorder(), 0, raw)
		if v.err != nil || !reflect.DeepEqual(v.statuses, []int{200}) {
			t.Fatalf("%v", v)
		}
		if g := <-got; g.remote != "127.0.0.1" || g.scheme != "http" {
			t.Fatalf("untrusted client changed what the handler sees: remote %s scheme %s", g.remote, g.scheme)
		}
	})
}

// TestStreamedBodyErrorClosesConnection covers a body that is streamed to
// the handler (larger than the body buffer) and turns out malformed or too
// large after streaming began. The server cannot know where the next
// request starts, so it must close the connection after its answer (RFC
// 9112 §6.3): bytes the client sends afterwards must never be parsed as a
// request. The error is sent in its own segment, after the streaming has
// started, and the smuggled request after the answer.
func TestStreamedBodyErrorClosesConnection(t *testing.T) {
	cases := []struct {
		name string
		bad  string // sent once the body is being streamed
		want int
	}{
		{"chunks over the body limit", "fffff\r\n" + strings.Repeat("x", 0xfffff) + "\r\n2\r\nab\r\n", 413},
		{"chunk data longer than its size", "3\r\nabcdef\r\n", 400},
		{"invalid chunk size", "zz\r\n", 400},
		{"bare LF after a chunk size", "3\nabc\r\n", 400},
		{"forbidden trailer", "0\r\nContent-Length: 5\r\n\r\n", 400},
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, mode := range dispatchModes {
			if mode.bodyBuffer == 0 {
				continue
			}
			s, rec := hostileServer(t, b, mode.dispatch, mode.bodyBuffer)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c, err := dial(s.Addr)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					// 16 bytes of body: over the 8-byte buffer, so the
					// handler is running and reading through the pipe.
					if _, err := c.Write([]byte(post + "Transfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n")); err != nil {
						t.Fatal(err)
					}
					time.Sleep(50 * time.Millisecond)
					if _, err := c.Write([]byte(tc.bad)); err != nil {
						t.Fatal(err)
					}
					rs, closed, err := readAll(c, 1, 5*time.Second)
					if err != nil || len(rs) != 1 || rs[0].Status != tc.want {
						t.Fatalf("answer to the bad body: %v closed=%v %v, want %d", statuses(rs), closed, err, tc.want)
					}
					if !closed {
						c.Write([]byte(smuggled + tail)) //nolint:errcheck // the server may have closed
						rs, closed, err = readAll(c, 0, 5*time.Second)
					}
					seen := rec.take(c)
					if len(rs) > 0 || len(seen) > 0 || !closed {
						t.Errorf("after a %d for a streamed body the connection stayed open and the bytes that followed were parsed as requests: "+
							"responses %v, handlers saw %v, closed=%v, err %v", tc.want, statuses(rs), seen, closed, err)
					}
				})
			}
			if n := rec.admin.Load(); n != 0 {
				t.Errorf("%d smuggled requests reached /admin", n)
			}
		}
	})
}
