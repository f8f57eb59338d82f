package proxy_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/conformance"
	"github.com/asyncd/asyncd/loop"
)

// TestVectorsThroughProxy sends every conformance vector that carries a
// body (a framing field, or a body in what the vector parsed) through the
// proxy plugin to a raw upstream, one at a time, and checks what the
// upstream parsed: exactly one request for each request the server
// accepted, framed as the client framed it (chunked stays chunked, a
// length stays that length) with the same body bytes, and nothing for the
// requests the server rejects. The proxy keeps no idle upstream
// connection (max_idle_conns 0), so each exchange ends with the upstream
// reading its connections to their end: a request hidden in a body is
// parsed before the check, never after it.
func TestVectorsThroughProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: every vector through the proxy on every backend (half a minute); make test runs it")
	}
	dir := conformance.Dir()
	if dir == "" {
		t.Skip("shared/conformance not found next to the checkout: the vectors live outside the repository")
	}
	all, err := conformance.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var vs []conformance.Vector
	for _, v := range all {
		if carriesBody(t, v) {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		t.Fatalf("no vector with a body in %s", dir)
	}
	t.Logf("%d of %d vectors carry a body", len(vs), len(all))
	forBackends(t, func(t *testing.T, b loop.Backend) {
		up := newRawUpstream(t, nil)
		s := serve(t, b, &engine.Route{Path: "/", Handler: build(t, "/", map[string]any{"upstream": up.URL(), "max_idle_conns": 0})})
		for _, v := range vs {
			t.Run(v.ID, func(t *testing.T) { checkThroughProxy(t, s.Addr, up, v) })
		}
	})
}

// carriesBody reports whether v has a framing field or a parsed body.
func carriesBody(t *testing.T, v conformance.Vector) bool {
	raw := bytes.ToLower(v.Bytes())
	if bytes.Contains(raw, []byte("content-length")) || bytes.Contains(raw, []byte("transfer-encoding")) {
		return true
	}
	ms, err := conformance.Messages(v.Parsed)
	if err != nil {
		t.Fatalf("%s: %v", v.ID, err)
	}
	for _, m := range ms {
		if m.Body != "" {
			return true
		}
	}
	return false
}

func checkThroughProxy(t *testing.T, addr string, up *rawUpstream, v conformance.Vector) {
	want, err := conformance.Messages(v.Parsed)
	if err != nil {
		t.Fatal(err)
	}
	before := len(up.requests())
	statuses := sendVector(t, addr, v, want)
	if !up.waitClosed(10 * time.Second) {
		t.Fatal("the proxy kept an upstream connection open (max_idle_conns is 0)")
	}
	got := up.requests()[before:]
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s (%s) %q\nanswers %v; the upstream parsed:%s\n"+format,
			append([]any{v.ID, v.File, v.Raw, statuses, describeUp(got)}, args...)...)
	}
	// The requests the server forwarded: its 2xx answers, less those it
	// answers itself (OPTIONS *).
	forwarded := 0
	for i, st := range statuses {
		if st >= 200 && st < 300 && !(i < len(want) && answeredBySelf(want[i])) {
			forwarded++
		}
	}
	switch v.Expect {
	case "reject":
		if len(statuses) == 0 || statuses[len(statuses)-1] != v.Status {
			fail("want %d accepted, then %d", v.MessagesBefore, v.Status)
		}
		if forwarded != v.MessagesBefore || len(got) != v.MessagesBefore {
			fail("want %d requests forwarded before the rejection and nothing of the rejected one", v.MessagesBefore)
		}
		return
	case "incomplete":
		if len(got) != 0 || forwarded != 0 {
			fail("a valid prefix reached the upstream")
		}
		return
	}
	if len(got) != forwarded {
		fail("the server forwarded %d requests", forwarded)
		return
	}
	proxied := 0
	for _, m := range want {
		if !answeredBySelf(m) {
			proxied++
		}
	}
	if forwarded < proxied && !(v.AltOK && len(statuses) > 0 && statuses[len(statuses)-1] >= 400) {
		fail("want %d requests forwarded", proxied)
		return
	}
	j := 0
	for _, m := range want {
		if answeredBySelf(m) {
			continue
		}
		if j == len(got) {
			break
		}
		g := got[j]
		j++
		chunked := false
		for _, h := range m.Headers {
			if strings.EqualFold(h[0], "Transfer-Encoding") {
				chunked = true
			}
		}
		body := string(conformance.Latin1(m.Body))
		switch {
		case g.Method != m.Method:
			fail("request %d: method %q, want %q", j, g.Method, m.Method)
		case g.BodyErr != "":
			fail("request %d: the upstream could not read the body: %s", j, g.BodyErr)
		case g.Body != body:
			fail("request %d: body %q, want %q", j, g.Body, body)
		case chunked && (len(g.TransferEncoding) != 1 || g.TransferEncoding[0] != "chunked"):
			fail("request %d: the client sent it chunked, the upstream got Transfer-Encoding %q", j, g.TransferEncoding)
		case !chunked && (len(g.TransferEncoding) != 0 || g.ContentLength != int64(len(body))):
			fail("request %d: the client sent a length of %d, the upstream got Transfer-Encoding %q, Content-Length %d",
				j, len(body), g.TransferEncoding, g.ContentLength)
		}
	}
}

// answeredBySelf reports the requests the server answers without a
// handler: OPTIONS * (200) and CONNECT (501: asyncd is not a forward proxy).
func answeredBySelf(m conformance.Message) bool {
	return m.Target == "*" || m.Method == "CONNECT"
}

// sendVector writes v on a new connection and reads the final answers: as
// many as v expects (a rejection's after the messages before it), none
// for an incomplete one (the server must stay quiet), then until the
// server closes or goes quiet. It returns their statuses.
func sendVector(t *testing.T, addr string, v conformance.Vector, want []conformance.Message) []int {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(v.Bytes()); err != nil {
		t.Fatal(err)
	}
	expected := len(want)
	switch v.Expect {
	case "reject":
		expected = v.MessagesBefore + 1
	case "incomplete":
		expected = 0
	}
	br := bufio.NewReader(c)
	var statuses []int
	for {
		// Up to the expected answers the server may take its time (the
		// upstream's round trip); after them it must be quiet or close.
		wait := 5 * time.Second
		if len(statuses) >= expected {
			wait = 300 * time.Millisecond
		}
		c.SetReadDeadline(time.Now().Add(wait)) //nolint:errcheck
		if _, err := br.Peek(1); err != nil {
			return statuses
		}
		var req *http.Request
		if n := len(statuses); n < len(want) {
			req = &http.Request{Method: want[n].Method} // HEAD answers have no body
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("%s: bad response bytes after %d answers: %v", v.ID, len(statuses), err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
		if resp.StatusCode >= 200 {
			statuses = append(statuses, resp.StatusCode)
		}
	}
}
