package conformance_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/conformance"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/echo"
)

// echoed is the echo plugin's JSON.
type echoed struct {
	Method   string      `json:"method"`
	Target   string      `json:"target"`
	Proto    string      `json:"proto"`
	Headers  [][2]string `json:"headers"`
	Body     string      `json:"body"`
	Trailers [][2]string `json:"trailers"`
}

func latin1(s string) string { return string(conformance.Latin1(s)) }

func (e echoed) message() conformance.Message {
	return conformance.Message{Method: e.Method, Target: e.Target, Version: e.Proto, Headers: e.Headers,
		Body: e.Body, Trailers: e.Trailers}
}

func normalize(m conformance.Message) conformance.Message {
	m.Method, m.Target, m.Body = latin1(m.Method), latin1(m.Target), latin1(m.Body)
	hs := make([][2]string, 0, len(m.Headers))
	for _, h := range m.Headers {
		hs = append(hs, [2]string{latin1(h[0]), latin1(h[1])})
	}
	m.Headers = hs
	ts := make([][2]string, 0, len(m.Trailers))
	for _, h := range m.Trailers {
		ts = append(ts, [2]string{latin1(h[0]), latin1(h[1])})
	}
	m.Trailers = ts
	return m
}

// TestVectorsOverSockets sends every vector to a server whose "/" route is
// the echo plugin, on every backend, and checks the server's verdict:
// rejections answer the vector's status and close; accepted requests are
// echoed exactly as the vector parsed them; incomplete ones get no answer.
func TestVectorsOverSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: every vector over sockets on every backend (about a minute); httpparse's TestConformance checks them against the parser; make test runs it")
	}
	dir := conformance.Dir()
	if dir == "" {
		t.Skip("shared/conformance not found next to the checkout: the vectors live outside the repository; httpparse's table tests still cover every rule")
	}
	vs, err := conformance.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatalf("no vectors in %s", dir)
	}
	h, err := plugins.Build(plugins.Route{Path: "/", Handler: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) {
			s := startEcho(t, b, h)
			for _, v := range vs {
				t.Run(v.ID, func(t *testing.T) {
					t.Parallel()
					checkVector(t, s, v)
				})
			}
		})
	}
}

func startEcho(t *testing.T, b loop.Backend, h engine.Handler) *enginetest.Server {
	r := enginetest.Router(t, &engine.Route{Path: "/", Handler: h})
	return enginetest.Start(t, b, engine.Config{Router: r, Loops: 2, ServerHeader: "asyncd",
		KeepAlive: 10 * time.Second, HeaderTimeout: 10 * time.Second, BodyTimeout: 10 * time.Second})
}

type answer struct {
	status int
	body   []byte
	close  bool
}

// exchange writes the vector and collects final answers until the server
// closes or stays quiet for quiet.
func exchange(t *testing.T, s *enginetest.Server, raw []byte, methods []string, quiet time.Duration) (answers []answer, closed bool) {
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		if _, err := br.Peek(1); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return answers, false
			}
			return answers, true
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var req *http.Request
		if n := len(answers); n < len(methods) {
			req = &http.Request{Method: methods[n]} // HEAD answers have no body
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("bad response bytes after %d answers: %v", len(answers), err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 200 {
			answers = append(answers, answer{status: resp.StatusCode, body: body, close: resp.Close})
		}
	}
}

func checkVector(t *testing.T, s *enginetest.Server, v conformance.Vector) {
	raw := v.Bytes()
	quiet := 400 * time.Millisecond
	want, err := conformance.Messages(v.Parsed)
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	for _, m := range want {
		methods = append(methods, m.Method)
	}
	answers, closed := exchange(t, s, raw, methods, quiet)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s (%s) %q\nwhy: %s %s\n"+format, append([]any{v.ID, v.File, v.Raw, v.Why, v.Note}, args...)...)
	}
	switch v.Expect {
	case "reject":
		if len(answers) != v.MessagesBefore+1 {
			fail("got %d answers, want %d accepted then %d", len(answers), v.MessagesBefore, v.Status)
			return
		}
		last := answers[len(answers)-1]
		if last.status != v.Status {
			fail("answered %d, want %d", last.status, v.Status)
		}
		if !closed || !last.close {
			fail("connection not closed after the rejection (closed=%v, Connection: close=%v)", closed, last.close)
		}
	case "incomplete":
		if len(answers) == 1 && answers[0].status == 413 && closed {
			// A declared body over limit_request_body may be refused before
			// it arrives (RFC 9110 §15.5.14).
			return
		}
		if len(answers) != 0 {
			fail("a valid prefix was answered %d", answers[0].status)
		}
		if closed {
			fail("server closed the connection on a valid prefix")
		}
	case "accept":
		if v.AltOK && len(answers) >= 1 && answers[len(answers)-1].status >= 400 && closed {
			return // the strict alternative: refused and closed
		}
		connect := len(want) > 0 && want[len(want)-1].Method == "CONNECT"
		if connect {
			// asyncd is not a proxy: a well-formed CONNECT is answered 501
			// and the connection closes (no tunnel).
			if len(answers) != len(want) || answers[len(answers)-1].status != 501 || !closed {
				fail("CONNECT: answers %v closed=%v, want %d answers ending in 501 and a close", statuses(answers), closed, len(want))
			}
			return
		}
		if len(answers) != len(want) {
			fail("got %d answers %v, want %d", len(answers), statuses(answers), len(want))
			return
		}
		for i, a := range answers {
			if want[i].Target == "*" && a.status == 200 {
				continue // OPTIONS * is answered by the engine itself
			}
			if a.status != 200 {
				fail("message %d answered %d, body %s", i, a.status, a.body)
				continue
			}
			if want[i].Method == "HEAD" {
				continue // no body to compare
			}
			var e echoed
			if err := json.Unmarshal(a.body, &e); err != nil {
				fail("message %d: echo JSON: %v: %s", i, err, a.body)
				continue
			}
			got, w := normalize(e.message()), normalize(want[i])
			if len(w.Trailers) == 0 {
				got.Trailers, w.Trailers = nil, nil
			}
			if !reflect.DeepEqual(got, w) {
				fail("message %d:\n got  %q\n want %q", i, got, w)
			}
		}
		switch v.After {
		case "close", "close-ignore-rest":
			if !closed {
				fail("connection left open after a non-persistent request")
			}
		case "incomplete", "":
			if closed && (len(answers) == 0 || !answers[len(answers)-1].close) {
				fail("server closed a persistent connection")
			}
		}
	default:
		t.Fatalf("%s: unknown expect %q", v.ID, v.Expect)
	}
}

func statuses(as []answer) []int {
	var out []int
	for _, a := range as {
		out = append(out, a.status)
	}
	return out
}
