package httpparse

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// pipeline builds n requests of mixed kinds in one buffer.
func pipeline(n int) (string, []msg) {
	var b strings.Builder
	var want []msg
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "GET /g%d?x=%d HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", i, i)
			want = append(want, msg{Method: "GET", Target: fmt.Sprintf("/g%d?x=%d", i, i)})
		case 1:
			body := strings.Repeat("b", i)
			fmt.Fprintf(&b, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			want = append(want, msg{Method: "POST", Target: "/p", Body: body})
		case 2:
			fmt.Fprintf(&b, "PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n%x\r\n%s\r\n0\r\nT: %d\r\n\r\n", i, strings.Repeat("z", i), i)
			want = append(want, msg{Method: "PUT", Target: "/c", Body: "abc" + strings.Repeat("z", i), Trailers: [][2]string{{"T", fmt.Sprint(i)}}})
		case 3:
			fmt.Fprintf(&b, "\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
			want = append(want, msg{Method: "OPTIONS", Target: "*"})
		}
	}
	return b.String(), want
}

// TestPipeline parses many pipelined requests from one buffer, at once, byte
// at a time and in uneven pieces, the way the engine feeds the parser.
func TestPipeline(t *testing.T) {
	raw, want := pipeline(60)
	for _, o := range []streamOpts{{}, {step: 1}, {step: 13, copyEach: true}, {step: 4096}} {
		got := runStream([]byte(raw), o)
		if got.err != nil || got.incomplete || got.stopped != "" || len(got.msgs) != len(want) {
			t.Fatalf("step %d: %v", o.step, got)
		}
		for i, m := range got.msgs {
			w := want[i]
			if m.Method != w.Method || m.Target != w.Target || m.Body != w.Body || (w.Trailers != nil && !reflect.DeepEqual(m.Trailers, w.Trailers)) {
				t.Fatalf("step %d: message %d = %v, want %v", o.step, i, m, w)
			}
		}
	}
}

// TestPipelineStops checks that a non-persistent request or a CONNECT ends
// the stream: what follows is never parsed as a request (checklist 45).
func TestPipelineStops(t *testing.T) {
	for _, c := range []struct {
		raw, stopped string
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGARBAGE\x00\r\n", "close"},
		{"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n", "close"},
		{"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03\x01", "tunnel"},
	} {
		got := runStream([]byte(c.raw), streamOpts{})
		if got.err != nil || got.stopped != c.stopped || len(got.msgs) != 1 || got.rest == 0 {
			t.Errorf("%q: %v", c.raw, got)
		}
	}
}

// TestIncrementalResumes checks that a head arriving in pieces is not
// rescanned: after each call the parser stands at the end of the input (or
// on a CR waiting for its LF), so total work is linear in the input.
func TestIncrementalResumes(t *testing.T) {
	raw := []byte("GET /" + strings.Repeat("p", 3000) + " HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("v", 8000) + "\r\nY: z\r\n\r\n")
	var p Parser
	var req Request
	for k := 1; k <= len(raw); k++ {
		n, err := p.ParseHead(raw[:k], &req)
		if err != nil {
			t.Fatalf("prefix %d: %v", k, err)
		}
		if n > 0 {
			if k != len(raw) || n != len(raw) {
				t.Fatalf("complete at %d with n=%d, want %d", k, n, len(raw))
			}
			break
		}
		at := p.pos
		if !p.lineEnd {
			at = p.lfScan // the request line waits for its end (deferLine)
		}
		if p.state == stFields {
			at = p.line.pos
		}
		if at != k && !(at == k-1 && raw[k-1] == '\r') {
			t.Fatalf("prefix %d: parser resumes at %d, would rescan", k, at)
		}
	}
	if v, ok := req.Header("x-long"); !ok || len(v) != 8000 {
		t.Fatalf("X-Long: %d %v", len(v), ok)
	}
}

// TestMovedInput checks that when the caller's bytes move between calls
// every slice of the result points into the last buffer.
func TestMovedInput(t *testing.T) {
	raw := []byte("POST http://h/p?q HTTP/1.1\r\nHost: a\r\nX: 1\r\nContent-Length: 0\r\n\r\n")
	var p Parser
	var req Request
	var last []byte
	for k := 1; k <= len(raw); k++ {
		last = append(make([]byte, 0, k+k%5), raw[:k]...)
		n, err := p.ParseHead(last, &req)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
	}
	in := func(s []byte) bool {
		return len(s) == 0 || &s[0] == &last[cap(last)-cap(s)] // s sits inside last
	}
	for _, s := range [][]byte{req.Method, req.Target, req.Path, req.Query, req.Host} {
		if !in(s) || !bytes.Contains(raw, s) {
			t.Fatalf("slice %q does not point into the last buffer", s)
		}
	}
	for _, h := range req.Headers {
		if !in(h.Name) || !in(h.Value) {
			t.Fatalf("header %q does not point into the last buffer", h.Name)
		}
	}
	for i := range last {
		last[i] = '#'
	}
	if string(req.Method) != "####" {
		t.Fatalf("Method = %q: not a view of the last buffer", req.Method)
	}
}

// TestInputShrunk checks that a caller bug (fewer bytes than already parsed)
// is an error, not a panic.
func TestInputShrunk(t *testing.T) {
	var p Parser
	var req Request
	raw := []byte("GET / HTTP/1.1\r\nHost: a\r\nX: y")
	if n, err := p.ParseHead(raw, &req); n != 0 || err != nil {
		t.Fatalf("prefix: %d %v", n, err)
	}
	if _, err := p.ParseHead(raw[:10], &req); err != errInputShrunk {
		t.Fatalf("shrunk input: %v", err)
	}
}

// TestRequestAPI covers Header, Version, Reset and repeated ParseHead calls.
func TestRequestAPI(t *testing.T) {
	var p Parser
	var req Request
	raw := []byte("GET / HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nx-dup: 2\r\nEmpty:\r\n\r\n")
	n, err := p.ParseHead(raw, &req)
	if err != nil || n != len(raw) {
		t.Fatalf("%d %v", n, err)
	}
	for _, c := range []struct {
		name, want string
		ok         bool
	}{{"X-DUP", "1", true}, {"host", "a", true}, {"empty", "", true}, {"missing", "", false}, {"X-Du", "", false}} {
		v, ok := req.Header(c.name)
		if ok != c.ok || string(v) != c.want {
			t.Errorf("Header(%q) = %q, %v", c.name, v, ok)
		}
	}
	if req.Version() != "HTTP/1.1" {
		t.Errorf("Version = %q", req.Version())
	}
	if n2, err := p.ParseHead(raw, &req); n2 != n || err != nil {
		t.Errorf("second call on a complete head: %d %v", n2, err)
	}
	req.Reset()
	if req.Method != nil || len(req.Headers) != 0 || cap(req.Headers) != DefaultMaxHeaderCount || req.ContentLength != -1 || req.Version() != "" {
		t.Errorf("Reset: %+v", req)
	}
	p.Reset()
	if n, err := p.ParseHead([]byte("GET / HTTP/1.0\r\n\r\n"), &req); err != nil || n != 18 || req.Version() != "HTTP/1.0" {
		t.Errorf("after Reset: %d %v %q", n, err, req.Version())
	}
}

// TestNoAllocs proves the parse paths allocate nothing once the Request,
// Parser and ChunkedDecoder exist.
func TestNoAllocs(t *testing.T) {
	heads := [][]byte{[]byte(minimalGET), []byte(browserGET), []byte(chunkedPOSTHead)}
	var p Parser
	var req Request
	p.ParseHead(heads[0], &req) // allocates the Headers backing array once
	for _, h := range heads {
		if a := testing.AllocsPerRun(100, func() {
			p.Reset()
			if _, err := p.ParseHead(h, &req); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("ParseHead(%.20q...) allocates %.1f", h, a)
		}
	}
	if a := testing.AllocsPerRun(100, func() {
		p.Reset()
		for k := 7; ; k += 7 {
			n, err := p.ParseHead(heads[1][:min(k, len(heads[1]))], &req)
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				break
			}
		}
	}); a != 0 {
		t.Errorf("incremental ParseHead allocates %.1f", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		if _, ok := req.Header("cookie"); !ok {
			t.Fatal("no cookie")
		}
		_ = req.Version()
	}); a != 0 {
		t.Errorf("Header/Version allocate %.1f", a)
	}
	var d ChunkedDecoder
	dst := make([]byte, 0, 4096)
	body := []byte(chunkedPOSTBody + "0\r\nX-Sum: 1\r\n\r\n")
	d.Decode(dst, body) // sizes the trailer buffer once
	if a := testing.AllocsPerRun(100, func() {
		d.Reset()
		if _, _, done, err := d.Decode(dst[:0], body); err != nil || !done {
			t.Fatal(err, done)
		}
	}); a != 0 {
		t.Errorf("Decode allocates %.1f", a)
	}
	bad := []byte("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n")
	if a := testing.AllocsPerRun(100, func() {
		p.Reset()
		if _, err := p.ParseHead(bad, &req); err == nil {
			t.Fatal("want error")
		}
	}); a != 0 {
		t.Errorf("rejecting allocates %.1f", a)
	}
}
