package echo_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/plugins"
	"github.com/asyncd/asyncd/plugins/echo"
)

// bufSize is the engine's body_buffer_size in these tests: bodies above it
// are streamed, and echo must still report them whole.
const bufSize = 1024

type goExec struct{}

func (goExec) Submit(_ int, t engine.Task) bool { go t.Run(); return true }

func startEcho(t *testing.T, b loop.Backend, d engine.Dispatch) *enginetest.Server {
	t.Helper()
	return startEchoWith(t, b, d, nil)
}

func startEchoWith(t *testing.T, b loop.Backend, d engine.Dispatch, opts map[string]any) *enginetest.Server {
	t.Helper()
	h, err := echo.New(plugins.Route{Path: "/echo/", Handler: "echo", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/echo/", Handler: h}),
		Loops: 1, Dispatch: d, Executor: goExec{}, BodyBufferSize: bufSize, KeepAlive: 5 * time.Second,
		HeaderTimeout: 5 * time.Second, BodyTimeout: 5 * time.Second}
	cfg.Limits.MaxBodySize = 1 << 20
	return enginetest.Start(t, b, cfg)
}

type echoed struct {
	Method        string     `json:"method"`
	Body          string     `json:"body"`
	BodyLength    int64      `json:"body_length"`
	BodySHA256    string     `json:"body_sha256"`
	BodyTruncated bool       `json:"body_truncated"`
	Trailers      [][]string `json:"trailers"`
}

// limit is echo's default body_limit.
const limit = 64 << 10

// checkBody checks that e reports body: its length and hash, and its first
// shown bytes verbatim.
func checkBody(t *testing.T, e echoed, body string, shown int) {
	t.Helper()
	shown = min(shown, len(body))
	sum := sha256.Sum256([]byte(body))
	if e.Body != body[:shown] || e.BodyLength != int64(len(body)) || e.BodySHA256 != hex.EncodeToString(sum[:]) ||
		e.BodyTruncated != (shown < len(body)) {
		t.Fatalf("body of %d bytes reported as %d bytes shown (want %d), length %d, sha256 %s, truncated %v",
			len(body), len(e.Body), shown, e.BodyLength, e.BodySHA256, e.BodyTruncated)
	}
}

func decode(t *testing.T, r *enginetest.Response) echoed {
	t.Helper()
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %q", r.StatusCode, r.Body)
	}
	var e echoed
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("echo answer is not JSON: %v: %.200q", err, r.Body)
	}
	return e
}

func chunked(body string, size int) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(size, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\nX-Sum: 1\r\n\r\n")
	return b.String()
}

// pattern is a body whose every position differs from its neighbours', so
// a lost, repeated or reordered piece changes it.
func pattern(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%07d,", i)
	}
	return b.String()[:n]
}

// TestEchoReportsEveryBody: under an inline (sync) and an off-loop class,
// a body over body_buffer_size (Content-Length or chunked) is reported by
// length and hash, and verbatim up to body_limit, as is one at or under
// it, and the connection carries on.
func TestEchoReportsEveryBody(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		for _, d := range []struct {
			name string
			d    engine.Dispatch
		}{{"sync", engine.Inline}, {"async", engine.OffLoop}} {
			t.Run(b.Name()+"/"+d.name, func(t *testing.T) {
				s := startEcho(t, b, d.d)
				for _, n := range []int{0, 10, bufSize, bufSize + 1, limit, limit + 1, 300 << 10} {
					body := pattern(n)
					t.Run(fmt.Sprintf("content-length %d", n), func(t *testing.T) {
						raw := fmt.Sprintf("POST /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", n, body) +
							"GET /echo/next HTTP/1.1\r\nHost: a\r\n\r\n"
						rs, _ := s.Exchange(t, raw, 2)
						checkBody(t, decode(t, rs[0]), body, limit)
						if e := decode(t, rs[1]); e.Method != "GET" || e.Body != "" {
							t.Fatalf("next request: %+v", e)
						}
					})
					t.Run(fmt.Sprintf("chunked %d", n), func(t *testing.T) {
						raw := "POST /echo/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 700)
						rs, _ := s.Exchange(t, raw, 1)
						e := decode(t, rs[0])
						checkBody(t, e, body, limit)
						if len(e.Trailers) != 1 || e.Trailers[0][0] != "X-Sum" {
							t.Fatalf("trailers %v", e.Trailers)
						}
					})
				}
				t.Run("streamed body over limit_request_body is 413", func(t *testing.T) {
					raw := "POST /echo/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
						chunked(pattern(2<<20), 64<<10)
					rs, _ := s.Exchange(t, raw, 1)
					if rs[0].StatusCode != 413 || !rs[0].Close {
						t.Fatalf("got %d close=%v, want 413 with close", rs[0].StatusCode, rs[0].Close)
					}
				})
			})
		}
	}
}

// TestEchoExpectContinue: a client that waits for 100 Continue gets it
// because echo reads the body, then the echo of the body it sent.
func TestEchoExpectContinue(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) {
			s := startEcho(t, b, engine.Inline)
			for _, n := range []int{10, 5000} {
				c := s.Dial(t)
				body := pattern(n)
				fmt.Fprintf(c, "POST /echo/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", n)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				r, err := http.ReadResponse(br, nil)
				if err != nil || r.StatusCode != 100 {
					t.Fatalf("%d bytes: want 100 Continue first: %v %v", n, r, err)
				}
				io.WriteString(c, body)
				r, err = http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(r.Body)
				checkBody(t, decode(t, &enginetest.Response{Response: r, Body: got}), body, limit)
				if r.Close {
					t.Errorf("%d bytes: a body read whole must keep the connection", n)
				}
			}
		})
	}
}

// TestEchoBodyLimitOption: body_limit sets how much of the body is shown;
// 0 shows none (length and hash only); a negative one is refused.
func TestEchoBodyLimitOption(t *testing.T) {
	if _, err := echo.New(plugins.Route{Path: "/", Handler: "echo", Options: map[string]any{"body_limit": -1}}); err == nil ||
		!strings.Contains(err.Error(), "options.body_limit") {
		t.Errorf("body_limit -1: %v, want an error naming options.body_limit", err)
	}
	b := enginetest.Backends(t)[0]
	for _, lim := range []int{0, 16} {
		s := startEchoWith(t, b, engine.OffLoop, map[string]any{"body_limit": lim})
		for _, n := range []int{0, 16, 17, 5000} {
			body := pattern(n)
			rs, _ := s.Exchange(t, fmt.Sprintf("POST /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", n, body), 1)
			checkBody(t, decode(t, rs[0]), body, lim)
		}
	}
}
