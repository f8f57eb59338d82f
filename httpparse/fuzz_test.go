package httpparse

import (
	"github.com/asyncd/asyncd/internal/conformance"

	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"slices"
	"testing"
)

// allHeadCases and allChunkCases collect the table cases, the fuzz seeds.
func allHeadCases() []headCase {
	var all []headCase
	for _, f := range []func() []headCase{requestLineCases, versionCases, targetCases, requestLineLimitCases,
		fieldSyntaxCases, fieldLimitsCases, hostCases, contentLengthCases, transferEncodingCases, headSemanticsCases} {
		all = append(all, f()...)
	}
	return all
}

func allChunkCases() []chunkCase {
	return append(chunkedCases(), forbiddenTrailersCases()...)
}

// addHeadSeeds seeds f with the table cases, the benchmark inputs, a
// pipeline, and the shared conformance vectors when they are present.
func addHeadSeeds(f *testing.F) {
	for _, c := range allHeadCases() {
		if len(c.raw) < 1<<12 {
			f.Add([]byte(c.raw))
		}
	}
	for _, s := range []string{minimalGET, browserGET, chunkedPOST} {
		f.Add([]byte(s))
	}
	raw, _ := pipeline(8)
	f.Add([]byte(raw))
	for _, v := range conformanceSeeds() {
		f.Add(v)
	}
}

// conformanceSeeds returns the vectors' bytes, or nothing if they are absent.
func conformanceSeeds() [][]byte {
	dir := conformance.Dir()
	if dir == "" {
		return nil
	}
	vs, err := conformance.Load(dir)
	if err != nil {
		return nil
	}
	out := make([][]byte, len(vs))
	for i, v := range vs {
		out[i] = latin1(v.Raw)
	}
	return out
}

// inside reports whether s is a sub-slice of buf (or empty).
func inside(s, buf []byte) bool {
	if len(s) == 0 {
		return true
	}
	off := cap(buf) - cap(s)
	return off >= 0 && off+len(s) <= len(buf) && &buf[off] == &s[0]
}

var statuses = map[int]bool{400: true, 413: true, 414: true, 417: true, 431: true, 501: true, 505: true}

// FuzzParseHead checks that no input makes ParseHead or Decode panic or
// return slices outside their input, and that verdicts are well-formed.
func FuzzParseHead(f *testing.F) {
	addHeadSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Parser
		var req Request
		lim := Limits{MaxRequestLine: 200, MaxFieldSize: 300, MaxHeaderCount: 10, MaxBodySize: 1 << 16, MaxChunkExtension: 20}
		p.Limits = lim
		n, err := p.ParseHead(data, &req)
		if err != nil {
			e, ok := err.(*Error)
			if !ok || !statuses[e.Status] || e.Reason == "" || n != 0 {
				t.Fatalf("bad rejection n=%d err=%#v", n, err)
			}
			return
		}
		if n == 0 {
			return
		}
		if n > len(data) || n != req.HeadLen {
			t.Fatalf("n=%d HeadLen=%d len=%d", n, req.HeadLen, len(data))
		}
		head := data[:n]
		for _, s := range [][]byte{req.Method, req.Target, req.Path, req.Query, req.Host} {
			if !inside(s, head) {
				t.Fatalf("slice %q outside the head", s)
			}
		}
		if len(req.Headers) > lim.MaxHeaderCount {
			t.Fatalf("%d headers", len(req.Headers))
		}
		for _, h := range req.Headers {
			if !inside(h.Name, head) || !inside(h.Value, head) || len(h.Name) == 0 {
				t.Fatalf("header %q: %q outside the head", h.Name, h.Value)
			}
		}
		if req.Major != 1 || req.Minor > 9 || req.Version() == "" || (req.Chunked && req.ContentLength != -1) {
			t.Fatalf("inconsistent request %+v", req)
		}
		if req.Chunked {
			var d ChunkedDecoder
			d.Limits = lim
			body, c, done, err := d.Decode(nil, data[n:])
			if err != nil {
				if e, ok := err.(*Error); !ok || !statuses[e.Status] {
					t.Fatalf("bad decode error %#v", err)
				}
				return
			}
			if c < 0 || c > len(data)-n || (!done && c != len(data)-n) || int64(len(body)) > lim.MaxBodySize || len(body) > c {
				t.Fatalf("consumed=%d done=%v body=%d of %d", c, done, len(body), len(data)-n)
			}
		}
	})
}

// FuzzDecode checks the chunked decoder alone: no panic, consumed within the
// input, decoded bytes never more than consumed, and the same verdict
// whether the body arrives at once or in pieces.
func FuzzDecode(f *testing.F) {
	for _, c := range allChunkCases() {
		f.Add([]byte(c.body), uint8(1))
	}
	f.Add([]byte(chunkedPOSTBody+"0\r\nA: b\r\n\r\nGET"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		lim := Limits{MaxFieldSize: 64, MaxHeaderCount: 4, MaxBodySize: 1 << 16, MaxChunkExtension: 16}
		d1 := ChunkedDecoder{Limits: lim}
		out1, rest1, done1, err1 := decodeAll(&d1, data, 0)
		d2 := ChunkedDecoder{Limits: lim}
		out2, rest2, done2, err2 := decodeAll(&d2, data, int(step%16)+1)
		if !bytes.Equal(out1, out2) || rest1 != rest2 || done1 != done2 || err1 != err2 ||
			!reflect.DeepEqual(trailerPairs(d1.Trailers), trailerPairs(d2.Trailers)) {
			t.Fatalf("one feed: %q %d %v %v; step %d: %q %d %v %v", out1, rest1, done1, err1, step%16+1, out2, rest2, done2, err2)
		}
		if e, ok := err1.(*Error); err1 != nil && (!ok || !statuses[e.Status]) {
			t.Fatalf("bad error %#v", err1)
		}
		if len(out1) > len(data) || rest1 < 0 || rest1 > len(data) {
			t.Fatalf("out=%d rest=%d len=%d", len(out1), rest1, len(data))
		}
	})
}

// FuzzSplit checks that a stream of requests parses the same at once, byte
// at a time, in pieces of a fuzzed size with the bytes moving between
// calls, and with the fast paths turned off.
func FuzzSplit(f *testing.F) {
	addHeadSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxRequestLine: 64, MaxFieldSize: 48, MaxHeaderCount: 6, MaxBodySize: 1 << 12, MaxChunkExtension: 12}
		whole := runStream(data, streamOpts{limits: lim})
		step := 2
		if len(data) > 0 {
			step = int(data[0])%9 + 2
		}
		for _, o := range []streamOpts{{step: 1}, {step: step, copyEach: true}, {slowOnly: true}} {
			o.limits = lim
			if got := runStream(data, o); !reflect.DeepEqual(got, whole) {
				t.Fatalf("step %d (slow paths only: %v) differs\nwhole:\n%v\nsplit:\n%v", o.step, o.slowOnly, whole, got)
			}
		}
	})
}

// FuzzNetHTTP is a differential test against net/http's ReadRequest: where
// both accept the first request, method, target, version, Host, fields,
// body and trailers must agree. Disagreements that RFC 9110/9112 justify
// are normalised here and listed in docs/conformance.md:
//   - net/http moves Host out of the field map and, for chunked requests,
//     drops Transfer-Encoding, Content-Length and Trailer; both sides are
//     compared without those fields (Host is compared as the effective
//     authority, Content-Length through the body).
//   - net/http adds "Cache-Control: no-cache" for "Pragma: no-cache"
//     (RFC 7234 §5.4 compatibility); that added field is ignored.
//   - net/http keeps declared-but-absent trailer names with no values; only
//     trailers with values are compared.
//   - for an absolute-form target net/http percent-decodes the reg-name
//     into Host (url.Parse); we keep it as sent (RFC 3986 §3.2.2), so a Host
//     that decodes to net/http's agrees.
func FuzzNetHTTP(f *testing.F) {
	addHeadSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Parser
		var req Request
		p.Limits = Limits{MaxBodySize: 1 << 20}
		n, err := p.ParseHead(data, &req)
		if err != nil || n == 0 {
			return
		}
		var body []byte
		var trailers []Header
		switch {
		case req.Chunked:
			var d ChunkedDecoder
			var done bool
			body, _, done, err = d.Decode(nil, data[n:])
			if err != nil || !done {
				return
			}
			trailers = d.Trailers
		case req.ContentLength > 0:
			if int64(len(data)-n) < req.ContentLength {
				return
			}
			body = data[n : n+int(req.ContentLength)]
		}
		gr, gerr := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if gerr != nil {
			return
		}
		gbody, gerr := io.ReadAll(gr.Body)
		if gerr != nil {
			return
		}
		if gr.Method != string(req.Method) || gr.RequestURI != string(req.Target) || gr.Proto != req.Version() {
			t.Fatalf("request line: net/http %q %q %q, ours %q %q %q", gr.Method, gr.RequestURI, gr.Proto, req.Method, req.Target, req.Version())
		}
		if gr.Host != string(req.Host) && !sameDecodedHost(req.Host, gr.Host) {
			t.Fatalf("host: net/http %q, ours %q", gr.Host, req.Host)
		}
		if !bytes.Equal(gbody, body) {
			t.Fatalf("body: net/http %q, ours %q", gbody, body)
		}
		ours := fieldMap(req.Headers)
		theirs := http.Header{}
		for k, v := range gr.Header {
			theirs[k] = v
		}
		for _, k := range []string{"Host", "Transfer-Encoding", "Content-Length", "Trailer"} {
			delete(ours, k)
			delete(theirs, k)
		}
		if _, ok := ours["Cache-Control"]; !ok {
			delete(theirs, "Cache-Control")
		}
		if !reflect.DeepEqual(ours, theirs) {
			t.Fatalf("fields: net/http %q, ours %q", theirs, ours)
		}
		gt := http.Header{}
		for k, v := range gr.Trailer {
			if len(v) > 0 {
				gt[k] = v
			}
		}
		if ot := fieldMap(trailers); !reflect.DeepEqual(ot, gt) {
			t.Fatalf("trailers: net/http %q, ours %q", gt, ot)
		}
	})
}

// fieldMap groups fields the way net/http does: canonical names, values in
// order.
func fieldMap(hs []Header) http.Header {
	m := http.Header{}
	for _, h := range hs {
		k := textproto.CanonicalMIMEHeaderKey(string(h.Name))
		m[k] = append(m[k], string(h.Value))
	}
	for k, v := range m {
		m[k] = slices.Clip(v)
	}
	return m
}

// sameDecodedHost reports whether ours, percent-decoded as url.Parse
// decodes a reg-name, is net/http's Host.
func sameDecodedHost(ours []byte, theirs string) bool {
	d, err := url.PathUnescape(string(ours))
	return err == nil && d == theirs && bytes.IndexByte(ours, '%') >= 0
}
