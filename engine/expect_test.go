package engine_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// expectRoutes: /len reads Body, /reader reads BodyReader, /body reads Body
// and falls back to BodyReader for a body too large to buffer (answering
// a failed read with its status), /ignore never touches the body, /inline
// is an InlineHandler that reads Body, /r allows GET only; nothing else
// is routed.
func expectRoutes(t *testing.T) *engine.Router {
	return enginetest.Router(t,
		&engine.Route{Path: "/r", Methods: []string{"GET"}, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			c.WriteString("root") //nolint:errcheck
		})},
		&engine.Route{Path: "/len", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			fmt.Fprintf(c, "%d:%s", len(c.Body()), c.Body())
		})},
		&engine.Route{Path: "/reader", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			b, err := io.ReadAll(c.BodyReader())
			if err != nil {
				c.SetStatus(400)
			}
			fmt.Fprintf(c, "%d:%s", len(b), b)
		})},
		&engine.Route{Path: "/body", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			b := c.Body()
			how := "buffered"
			if b == nil && c.BodyStreamed() {
				how = "streamed"
				var err error
				if b, err = io.ReadAll(c.BodyReader()); err != nil {
					var pe *httpparse.Error
					if errors.As(err, &pe) {
						c.SetStatus(pe.Status)
					} else {
						c.SetStatus(400)
					}
				}
			}
			fmt.Fprintf(c, "%s:%d:%s", how, len(b), b)
		})},
		&engine.Route{Path: "/ignore", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			c.WriteString("ignored") //nolint:errcheck
		})},
		&engine.Route{Path: "/inline", Handler: inlineLen{}},
	)
}

type inlineLen struct{}

func (inlineLen) Inline() bool { return true }
func (inlineLen) Serve(c *engine.Ctx) {
	fmt.Fprintf(c, "%d:%s", len(c.Body()), c.Body())
}

// expectConn is one client connection reading raw responses, 100 included.
type expectConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialExpect(t *testing.T, s *enginetest.Server, head string) *expectConn {
	c := s.Dial(t)
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return &expectConn{t: t, c: c, br: bufio.NewReader(c)}
}

// next reads the next response, interim ones included.
func (e *expectConn) next() (*http.Response, string) {
	e.t.Helper()
	r, err := http.ReadResponse(e.br, nil)
	if err != nil {
		e.t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		e.t.Fatalf("reading a body: %v", err)
	}
	return r, string(b)
}

// send writes more of the request (ignoring errors: the server may have
// closed, which the reads then show).
func (e *expectConn) send(s string) { io.WriteString(e.c, s) } //nolint:errcheck

// closedWithout reads until the server closes and fails if anything that
// looks like another response arrives meanwhile.
func (e *expectConn) closedWithout() {
	e.t.Helper()
	rest, err := io.ReadAll(e.br)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		e.t.Fatalf("connection not closed: %v", err)
	}
	if len(rest) > 0 {
		e.t.Fatalf("bytes after the final answer: %q", rest)
	}
}

// TestExpectContinue checks RFC 9110 §10.1.1 as docs/design.md states it:
// "100 Continue" is sent only when the handler reads the body (Body or
// BodyReader, under an inline and an off-loop class alike); a request the
// engine answers itself (404, 405, 413, 417) or a handler that answers
// without reading gets its final status without a 100, with Connection:
// close, and the connection closes without reading what the client sends
// next as a request. An InlineHandler route, which must get its body whole
// on the loop, is sent 100 by the engine before the body is collected.
func TestExpectContinue(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: every Expect: 100-continue case on each backend, seconds in all; make test runs it")
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, d := range []struct {
			name string
			d    engine.Dispatch
		}{{"sync", engine.Inline}, {"async", engine.OffLoop}} {
			t.Run(d.name, func(t *testing.T) {
				cfg := engine.Config{Router: expectRoutes(t), Loops: 1, Dispatch: d.d, Executor: goExec{},
					BodyBufferSize: 1024, KeepAlive: 5 * time.Second, HeaderTimeout: 5 * time.Second,
					BodyTimeout: time.Second}
				cfg.Limits.MaxBodySize = 1 << 20
				s := enginetest.Start(t, b, cfg)
				testExpect(t, s)
			})
		}
	})
}

func testExpect(t *testing.T, s *enginetest.Server) {
	const smuggled = "GET /r HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name, head string
		status     int
	}{
		{"404", "POST /nope HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 28\r\n\r\n", 404},
		{"405", "POST /r HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 28\r\n\r\n", 405},
		{"413 declared too large", "POST /len HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n", 413},
		{"417", "POST /len HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\nContent-Length: 28\r\n\r\n", 417},
		{"handler ignores a content-length body", "POST /ignore HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 28\r\n\r\n", 200},
		{"handler ignores a chunked body", "POST /ignore HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n", 200},
	} {
		t.Run(tc.name+" gets no 100 and closes", func(t *testing.T) {
			e := dialExpect(t, s, tc.head)
			r, body := e.next()
			if r.StatusCode != tc.status {
				t.Fatalf("first response %d %q, want %d without a 100 first", r.StatusCode, body, tc.status)
			}
			if !r.Close {
				t.Errorf("%d without Connection: close, though the body was never read", r.StatusCode)
			}
			// A client that gave up waiting sends its body: it must not be
			// read as the next request.
			e.send(smuggled)
			e.closedWithout()
		})
	}

	for _, path := range []string{"/len", "/reader", "/body"} {
		want := map[string]string{"/len": "5:hello", "/reader": "5:hello", "/body": "buffered:5:hello"}[path]
		t.Run(path+" reads: 100, then the answer, and the connection stays", func(t *testing.T) {
			for _, framing := range []struct{ hdr, body string }{
				{"Content-Length: 5", "hello"},
				{"Transfer-Encoding: chunked", "2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"},
			} {
				e := dialExpect(t, s, "POST "+path+" HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"+framing.hdr+"\r\n\r\n")
				if r, _ := e.next(); r.StatusCode != 100 {
					t.Fatalf("%s: first response %d, want 100", framing.hdr, r.StatusCode)
				}
				e.send(framing.body)
				r, body := e.next()
				if r.StatusCode != 200 || body != want || r.Close {
					t.Fatalf("%s: %d %q close=%v, want 200 %q keep-alive", framing.hdr, r.StatusCode, body, r.Close, want)
				}
				e.send(smuggled)
				if r, body := e.next(); r.StatusCode != 200 || body != "root" {
					t.Fatalf("%s: next request %d %q", framing.hdr, r.StatusCode, body)
				}
			}
		})
	}

	t.Run("a chunked body deferred by Expect that outgrows the buffer is streamed whole", func(t *testing.T) {
		e := dialExpect(t, s, "POST /body HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
		if r, _ := e.next(); r.StatusCode != 100 {
			t.Fatalf("first response %d, want 100", r.StatusCode)
		}
		body := pattern(3000)
		for rest := body; rest != ""; rest = rest[min(500, len(rest)):] {
			e.send(fmt.Sprintf("%x\r\n%s\r\n", min(500, len(rest)), rest[:min(500, len(rest))]))
		}
		e.send("0\r\n\r\n")
		r, got := e.next()
		if want := "streamed:3000:" + body; r.StatusCode != 200 || got != want {
			t.Fatalf("%d %.60q..., want 200 %.60q...", r.StatusCode, got, want)
		}
	})

	t.Run("body_timeout applies once 100 was sent", func(t *testing.T) {
		e := dialExpect(t, s, "POST /body HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
		if r, _ := e.next(); r.StatusCode != 100 {
			t.Fatalf("first response %d, want 100", r.StatusCode)
		}
		e.send("ab") // then nothing, for longer than body_timeout
		r, body := e.next()
		if r.StatusCode != 408 || !r.Close {
			t.Fatalf("%d %q close=%v, want 408 with close", r.StatusCode, body, r.Close)
		}
		e.closedWithout()
	})

	t.Run("an inline route is sent 100 before its body is collected", func(t *testing.T) {
		e := dialExpect(t, s, "POST /inline HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		if r, _ := e.next(); r.StatusCode != 100 {
			t.Fatalf("first response %d, want 100", r.StatusCode)
		}
		e.send("hello")
		if r, body := e.next(); r.StatusCode != 200 || body != "5:hello" {
			t.Fatalf("%d %q", r.StatusCode, body)
		}
	})

	t.Run("a body sent with the head gets no 100", func(t *testing.T) {
		e := dialExpect(t, s, "POST /len HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
		if r, body := e.next(); r.StatusCode != 200 || body != "5:hello" {
			t.Fatalf("%d %q, want 200 at once", r.StatusCode, body)
		}
	})
}

// pattern is a body whose pieces all differ, so a lost, repeated or
// reordered piece changes it.
func pattern(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%07d,", i)
	}
	return b.String()[:n]
}
