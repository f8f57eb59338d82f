package engine_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// routes every end-to-end test shares.
func testRoutes(t testing.TB, counter *atomic.Int64) *engine.Router {
	hello := engine.HandlerFunc(func(c *engine.Ctx) {
		counter.Add(1)
		c.SetContentType("text/plain")
		c.WriteString("Hello, World!") //nolint:errcheck
	})
	return enginetest.Router(t,
		&engine.Route{Path: "/", Methods: []string{"GET"}, Handler: hello},
		&engine.Route{Path: "/len", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			counter.Add(1)
			fmt.Fprintf(c, "%d:%s", len(c.Body()), c.Body())
		})},
		&engine.Route{Path: "/status/", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			var code int
			fmt.Sscanf(string(c.Path()), "/status/%d", &code)
			c.SetStatus(code)
			c.WriteString("body") //nolint:errcheck
		})},
		&engine.Route{Path: "/inject", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			c.SetHeader("X-Evil", "a\r\nSet-Cookie: x=1")
			c.WriteString("should not be sent") //nolint:errcheck
		})},
		&engine.Route{Path: "/panic", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			panic("boom")
		})},
		&engine.Route{Path: "/stream", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			for i := 0; i < 3; i++ {
				fmt.Fprintf(c, "part%d;", i)
				if err := c.Flush(); err != nil {
					return
				}
			}
		})},
		&engine.Route{Path: "/sleep", Blocking: true, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			select {
			case <-time.After(3 * time.Second):
			case <-c.Context().Done():
			}
			c.WriteString("late") //nolint:errcheck
		})},
	)
}

type goExec struct{}

func (goExec) Submit(_ int, t engine.Task) bool { go t.Run(); return true }

func forBackends(t *testing.T, fn func(t *testing.T, b loop.Backend)) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) { fn(t, b) })
	}
}

func start(t *testing.T, b loop.Backend, mod func(*engine.Config)) (*enginetest.Server, *atomic.Int64) {
	var n atomic.Int64
	cfg := engine.Config{Router: testRoutes(t, &n), Loops: 2, ServerHeader: "asyncd", Executor: goExec{},
		KeepAlive: 5 * time.Second, HeaderTimeout: 2 * time.Second, BodyTimeout: 2 * time.Second}
	cfg.Limits.MaxBodySize = 1 << 20
	if mod != nil {
		mod(&cfg)
	}
	return enginetest.Start(t, b, cfg), &n
}

func TestConnectionSemantics(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, _ := start(t, b, nil)
		cases := []struct {
			name       string
			raw        string
			want       []int // statuses
			wantClosed bool
			check      func(t *testing.T, rs []*enginetest.Response)
		}{
			{name: "HTTP/1.1 keeps alive by default", raw: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", want: []int{200},
				check: func(t *testing.T, rs []*enginetest.Response) {
					if rs[0].Close {
						t.Error("1.1 response says close")
					}
					if got := rs[0].Header.Get("Server"); got != "asyncd" {
						t.Errorf("Server = %q", got)
					}
					if rs[0].Header.Get("Date") == "" {
						t.Error("no Date header")
					}
					if string(rs[0].Body) != "Hello, World!" || rs[0].ContentLength != 13 {
						t.Errorf("body %q length %d", rs[0].Body, rs[0].ContentLength)
					}
				}},
			{name: "Connection: close is honoured", raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
				want: []int{200}, wantClosed: true},
			{name: "HTTP/1.0 closes without keep-alive", raw: "GET / HTTP/1.0\r\n\r\n", want: []int{200}, wantClosed: true},
			{name: "HTTP/1.0 keep-alive is honoured", raw: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
				want: []int{200, 200}, wantClosed: true,
				check: func(t *testing.T, rs []*enginetest.Response) {
					if rs[0].Header.Get("Connection") != "keep-alive" {
						t.Errorf("first 1.0 response Connection = %q", rs[0].Header.Get("Connection"))
					}
				}},
			{name: "pipelined requests answered in order", raw: "GET /len HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nAGET /len HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nBBGET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n",
				want: []int{200, 200, 201},
				check: func(t *testing.T, rs []*enginetest.Response) {
					if string(rs[0].Body) != "1:A" || string(rs[1].Body) != "2:BB" {
						t.Errorf("bodies %q %q", rs[0].Body, rs[1].Body)
					}
				}},
			{name: "204 and 304 carry no body", raw: "GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\nGET /status/304 HTTP/1.1\r\nHost: a\r\n\r\nGET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n",
				want: []int{204, 304, 200},
				check: func(t *testing.T, rs []*enginetest.Response) {
					if len(rs[0].Body) != 0 || len(rs[1].Body) != 0 || string(rs[2].Body) != "body" {
						t.Errorf("bodies %q %q %q", rs[0].Body, rs[1].Body, rs[2].Body)
					}
					if rs[0].Header.Get("Content-Length") != "" {
						t.Error("204 has Content-Length")
					}
				}},
			{name: "OPTIONS * answers the server's methods", raw: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", want: []int{200},
				check: func(t *testing.T, rs []*enginetest.Response) {
					if !strings.Contains(rs[0].Header.Get("Allow"), "GET") {
						t.Errorf("Allow = %q", rs[0].Header.Get("Allow"))
					}
				}},
			{name: "unknown path is 404 and keeps the connection", raw: "GET /nope/x HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", want: []int{200, 200}},
			{name: "method not allowed is 405 with Allow", raw: "POST / HTTP/1.1\r\nHost: a\r\n\r\n", want: []int{405},
				check: func(t *testing.T, rs []*enginetest.Response) {
					if rs[0].Header.Get("Allow") != "GET, HEAD" {
						t.Errorf("Allow = %q", rs[0].Header.Get("Allow"))
					}
				}},
			{name: "chunked request body", raw: "POST /len HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\nGET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n",
				want: []int{200, 200},
				check: func(t *testing.T, rs []*enginetest.Response) {
					if string(rs[0].Body) != "5:abcde" {
						t.Errorf("body %q", rs[0].Body)
					}
				}},
			{name: "body over the limit is 413 and closes", raw: "POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\nxx", want: []int{413}, wantClosed: true},
			{name: "Expect 100-continue gets 100 then the answer", raw: "POST /len HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", want: []int{200}},
			{name: "other expectations are 417", raw: "POST /len HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 3\r\n\r\nabc", want: []int{417}, wantClosed: true},
			{name: "parser rejection answers 400 with close", raw: "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", want: []int{400}, wantClosed: true,
				check: func(t *testing.T, rs []*enginetest.Response) {
					if !rs[0].Close {
						t.Error("400 without Connection: close")
					}
				}},
			{name: "505 for HTTP/2.0", raw: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", want: []int{505}, wantClosed: true},
			{name: "header injection by a handler is a 500", raw: "GET /inject HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", want: []int{500, 200},
				check: func(t *testing.T, rs []*enginetest.Response) {
					if rs[0].Header.Get("Set-Cookie") != "" || rs[0].Header.Get("X-Evil") != "" {
						t.Error("injected header went out")
					}
				}},
			{name: "handler panic is a 500 and the connection carries on", raw: "GET /panic HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", want: []int{500, 200}},
			{name: "streamed response is chunked", raw: "GET /stream HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", want: []int{200, 200},
				check: func(t *testing.T, rs []*enginetest.Response) {
					if string(rs[0].Body) != "part0;part1;part2;" || len(rs[0].TransferEncoding) == 0 {
						t.Errorf("stream body %q TE %v", rs[0].Body, rs[0].TransferEncoding)
					}
				}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				n := len(tc.want)
				if tc.wantClosed {
					n = 0
				}
				rs, closed := s.Exchange(t, tc.raw, n)
				if len(rs) != len(tc.want) {
					t.Fatalf("got %d responses, want %d", len(rs), len(tc.want))
				}
				for i, r := range rs {
					if r.StatusCode != tc.want[i] {
						t.Errorf("response %d: status %d, want %d (body %q)", i, r.StatusCode, tc.want[i], r.Body)
					}
				}
				if closed != tc.wantClosed {
					t.Errorf("closed = %v, want %v", closed, tc.wantClosed)
				}
				if tc.check != nil {
					tc.check(t, rs)
				}
			})
		}
	})
}

func TestHead(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, _ := start(t, b, nil)
		c := s.Dial(t)
		io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		r, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Header.Get("Content-Length") != "13" {
			t.Errorf("HEAD Content-Length = %q, want GET's 13", r.Header.Get("Content-Length"))
		}
		r2, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request after HEAD mis-framed: %v", err)
		}
		body, _ := io.ReadAll(r2.Body)
		if string(body) != "body" {
			t.Errorf("request after HEAD mis-framed: %q", body)
		}
	})
}

func TestServerHeaderOff(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, _ := start(t, b, func(c *engine.Config) { c.ServerHeader = "" })
		rs, _ := s.Exchange(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1)
		if _, ok := rs[0].Header["Server"]; ok {
			t.Errorf("Server header sent: %q", rs[0].Header.Get("Server"))
		}
	})
}

func TestTimeouts(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out real timeouts, seconds on each backend; make test runs it")
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, _ := start(t, b, func(c *engine.Config) {
			c.KeepAlive = 300 * time.Millisecond
			c.HeaderTimeout = 300 * time.Millisecond
			c.BodyTimeout = 300 * time.Millisecond
			c.RequestTimeout = 300 * time.Millisecond
		})
		t.Run("idle keep-alive closes", func(t *testing.T) {
			c := s.Dial(t)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			enginetest.ReadResponses(t, c, 1, 2*time.Second)
			if !enginetest.WaitClosed(c, 3*time.Second) {
				t.Fatal("idle connection not closed after keepalive")
			}
		})
		t.Run("slowloris head is cut off with 408 while others are served", func(t *testing.T) {
			slow := s.Dial(t)
			io.WriteString(slow, "GET / HTTP/1.1\r\nHo")
			done := make(chan bool)
			go func() {
				// trickle a byte every 50ms: progress, but never a full head
				for i := 0; i < 40; i++ {
					if _, err := slow.Write([]byte("o")); err != nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				close(done)
			}()
			// meanwhile another client is served normally
			rs, _ := s.Exchange(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1)
			if rs[0].StatusCode != 200 {
				t.Fatalf("other client got %d", rs[0].StatusCode)
			}
			rs2, closed := enginetest.ReadResponses(t, slow, 0, 3*time.Second)
			if !closed || len(rs2) != 1 || rs2[0].StatusCode != 408 {
				t.Fatalf("slow client: closed=%v responses=%d", closed, len(rs2))
			}
			<-done
		})
		t.Run("slow body is cut off", func(t *testing.T) {
			c := s.Dial(t)
			io.WriteString(c, "POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
			rs, closed := enginetest.ReadResponses(t, c, 0, 3*time.Second)
			if !closed || len(rs) != 1 || rs[0].StatusCode != 408 {
				t.Fatalf("closed=%v responses=%d", closed, len(rs))
			}
		})
		t.Run("request_timeout answers 503", func(t *testing.T) {
			rs, closed := s.Exchange(t, "GET /sleep HTTP/1.1\r\nHost: a\r\n\r\n", 0)
			if len(rs) != 1 || rs[0].StatusCode != 503 || !closed {
				t.Fatalf("responses=%d closed=%v", len(rs), closed)
			}
		})
	})
}

// TestPipelineWithoutReading checks back-pressure: a client that pipelines
// without reading gets only as many requests served as fit under the output
// limit (plus the kernel's socket buffers), not all of them.
func TestPipelineWithoutReading(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: fills the socket buffers until TCP flow control stops the client, seconds on each backend; make test runs it")
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, served := start(t, b, func(c *engine.Config) { c.OutputBufferLimit = 64 << 10 })
		c := s.Dial(t)
		req := bytes.Repeat([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1000)
		var written atomic.Int64
		go func() {
			// Never interrupt a write: a torn request would be a parse error.
			for i := 0; i < 200; i++ {
				if _, err := c.Write(req); err != nil {
					return
				}
				written.Add(1000)
			}
		}()
		time.Sleep(1500 * time.Millisecond)
		n := served.Load()
		// Each response is ~130 bytes; the output limit plus the kernel's
		// socket buffers hold a few MB of them at most. Without
		// back-pressure every request written would have been served.
		if w := written.Load(); n >= w || n > 100000 {
			t.Fatalf("served %d of %d pipelined requests without the client reading", n, w)
		}
		// Now read everything: the server must resume and serve the rest.
		before := n
		go io.Copy(io.Discard, c)
		if !enginetest.Eventually(5*time.Second, func() bool { return served.Load() > before }) {
			t.Fatal("server did not resume after the client read")
		}
	})
}

// TestStreamedRequestBody checks bodies larger than the body buffer: the
// handler streams them (off the loop, even under an inline class), the
// client is paused while the handler does not read, and 100 Continue is sent
// only when the handler reads.
func TestStreamedRequestBody(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		var n atomic.Int64
		release := make(chan struct{})
		sum := engine.HandlerFunc(func(c *engine.Ctx) {
			if c.Path()[len(c.Path())-1] == 'w' {
				<-release // a slow reader
			}
			if string(c.Path()) == "/after" {
				fmt.Fprintf(c, "%d", len(c.Body()))
				return
			}
			if !c.BodyStreamed() || c.Body() != nil {
				c.SetStatus(500)
				return
			}
			total, err := io.Copy(io.Discard, c.BodyReader())
			if err != nil {
				c.SetStatus(400)
			}
			n.Add(1)
			fmt.Fprintf(c, "%d", total)
		})
		cfg := engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: sum}), Loops: 1,
			BodyBufferSize: 1024, Executor: goExec{}}
		cfg.Limits.MaxBodySize = 64 << 20
		s := enginetest.Start(t, b, cfg)

		t.Run("content-length", func(t *testing.T) {
			body := strings.Repeat("x", 5<<20)
			rs, _ := s.Exchange(t, "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 5242880\r\n\r\n"+body+"GET /after HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 2)
			if rs[0].StatusCode != 200 || string(rs[0].Body) != "5242880" {
				t.Fatalf("%d %q", rs[0].StatusCode, rs[0].Body)
			}
			if rs[1].StatusCode != 200 || string(rs[1].Body) != "0" {
				t.Fatalf("request after a streamed body: %d %q", rs[1].StatusCode, rs[1].Body)
			}
		})
		t.Run("chunked", func(t *testing.T) {
			var req strings.Builder
			req.WriteString("POST /ch HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
			for i := 0; i < 300; i++ {
				req.WriteString("400\r\n" + strings.Repeat("y", 1024) + "\r\n")
			}
			req.WriteString("0\r\n\r\n")
			rs, _ := s.Exchange(t, req.String(), 1)
			if rs[0].StatusCode != 200 || string(rs[0].Body) != "307200" {
				t.Fatalf("%d %q", rs[0].StatusCode, rs[0].Body)
			}
		})
		t.Run("100-continue only when the handler reads", func(t *testing.T) {
			c := s.Dial(t)
			io.WriteString(c, "POST /slow HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4096\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			var one [1]byte
			if _, err := c.Read(one[:]); err == nil {
				t.Fatal("100 Continue (or an answer) sent before the handler read the body")
			}
			close(release)
			br := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			r, err := http.ReadResponse(br, nil)
			if err != nil || r.StatusCode != 100 {
				t.Fatalf("want 100 Continue once the handler reads: %v %v", r, err)
			}
			io.WriteString(c, strings.Repeat("z", 4096))
			r, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r.Body)
			if r.StatusCode != 200 || string(got) != "4096" {
				t.Fatalf("%d %q", r.StatusCode, got)
			}
		})
	})
}
