package engine_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// logBuffer collects the engine's log lines (written from the loops'
// goroutines) for a test to search.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

// text returns what was logged so far.
func (l *logBuffer) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func totalConns(s *enginetest.Server) int {
	n := 0
	for _, c := range s.Engine.Stats().ConnsPerLoop {
		n += c
	}
	return n
}

// TestNativeHijack: an off-loop native handler (a blocking route under
// sync, any route under async) takes the connection with Ctx.Hijack and
// speaks its own protocol on it. Bytes the client sent right behind the
// request reach it (in unread, or still in the socket), the engine writes
// nothing of its own and forgets the connection; an inline handler is
// refused with ErrHijackInline and answers normally.
func TestNativeHijack(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, d := range []struct {
			name     string
			d        engine.Dispatch
			blocking bool
		}{{"sync, blocking route", engine.Inline, true}, {"async", engine.OffLoop, false}} {
			t.Run(d.name, func(t *testing.T) {
				shout := engine.HandlerFunc(func(c *engine.Ctx) {
					conn, unread, err := c.Hijack()
					if err != nil {
						c.SetStatus(500)
						c.WriteString(err.Error()) //nolint:errcheck
						return
					}
					defer conn.Close()
					io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\n") //nolint:errcheck
					br := bufio.NewReader(io.MultiReader(bytes.NewReader(unread), conn))
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if _, err := io.WriteString(conn, strings.ToUpper(line)); err != nil {
							return
						}
					}
				})
				inline := engine.HandlerFunc(func(c *engine.Ctx) {
					_, _, err := c.Hijack()
					fmt.Fprintf(c, "inline hijack: %v", errors.Is(err, engine.ErrHijackInline))
				})
				r := enginetest.Router(t, &engine.Route{Path: "/shout", Blocking: d.blocking, Handler: shout},
					&engine.Route{Path: "/inline", Handler: inline})
				s := enginetest.Start(t, b, engine.Config{Router: r, Loops: 1, Dispatch: d.d, Executor: goExec{},
					KeepAlive: 5 * time.Second, HeaderTimeout: 5 * time.Second})

				c := s.Dial(t)
				c.SetDeadline(time.Now().Add(10 * time.Second))                                                             //nolint:errcheck
				io.WriteString(c, "GET /shout HTTP/1.1\r\nHost: a\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\nearly\n") //nolint:errcheck
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != 101 {
					t.Fatalf("hijacker's response: %v %v", resp, err)
				}
				for _, want := range []string{"EARLY\n", "LATE\n", "AGAIN\n"} {
					if want != "EARLY\n" {
						io.WriteString(c, strings.ToLower(want)) //nolint:errcheck
					}
					got, err := br.ReadString('\n')
					if err != nil || got != want {
						t.Fatalf("got %q %v, want %q", got, err, want)
					}
				}
				// The engine let go: it counts neither the connection nor a
				// request in flight, though the connection is still open.
				if !enginetest.Eventually(5*time.Second, func() bool {
					st := s.Engine.Stats()
					return totalConns(s) == 0 && st.InFlight == 0
				}) {
					t.Fatalf("engine still holds the hijacked connection: %+v", s.Engine.Stats())
				}
				if d.d == engine.Inline {
					if rs, _ := s.Exchange(t, "GET /inline HTTP/1.1\r\nHost: a\r\n\r\n", 1); string(rs[0].Body) != "inline hijack: true" {
						t.Fatalf("inline handler: %d %q", rs[0].StatusCode, rs[0].Body)
					}
				}
			})
		}
	})
}

// TestRequestTimeoutStages: request_timeout bounds the wait for the
// response to start. Past it, a request whose response has not started
// gets 503, the connection closes, and it is logged. One whose response
// started (chunked or with a declared Content-Length) runs on past it to
// completion: its context loses its deadline once the head is sent and is
// not cancelled, nothing is logged, and the connection stays usable.
func TestRequestTimeoutStages(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out real timeouts, seconds on each backend; make test runs it")
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		const rt = 1500 * time.Millisecond
		r := enginetest.Router(t,
			&engine.Route{Path: "/before", Blocking: true, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
				waitCancelled(c)
				c.WriteString("late") //nolint:errcheck
			})},
			&engine.Route{Path: "/chunked", Blocking: true, Handler: flushOutlivingDeadline},
			&engine.Route{Path: "/length", Blocking: true, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
				c.SetContentLength(int64(len("part1;part2")))
				flushOutlivingDeadline(c)
			})},
		)
		var logs logBuffer
		s := enginetest.Start(t, b, engine.Config{Router: r, Loops: 1, Executor: goExec{},
			KeepAlive: 10 * time.Second, HeaderTimeout: 5 * time.Second, RequestTimeout: rt,
			Logger: logs.logger()})

		t.Run("before the response: 503", func(t *testing.T) {
			rs, closed := s.Exchange(t, "GET /before HTTP/1.1\r\nHost: a\r\n\r\n", 0)
			if len(rs) != 1 || rs[0].StatusCode != 503 || !closed {
				t.Fatalf("responses=%d closed=%v", len(rs), closed)
			}
		})
		for _, path := range []string{"/chunked", "/length"} {
			t.Run("after the response started: "+path+" completes", func(t *testing.T) {
				c := s.Dial(t)
				c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
				br := bufio.NewReader(c)
				for i := range 2 { // the connection stays usable
					io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n") //nolint:errcheck
					resp, err := http.ReadResponse(br, nil)
					if err != nil || resp.StatusCode != 200 {
						t.Fatalf("request %d: response head: %v %v", i, resp, err)
					}
					body, err := io.ReadAll(resp.Body)
					if err != nil || string(body) != "part1;part2" {
						t.Fatalf("request %d: body %q (%v), want the whole response", i, body, err)
					}
				}
			})
		}
		if !enginetest.Eventually(5*time.Second, func() bool { return logs.has("route=/before") }) {
			t.Fatalf("timeout not logged:\n%s", logBufString(&logs))
		}
		if n := strings.Count(logBufString(&logs), "request_timeout exceeded"); n != 1 {
			t.Fatalf("%d request_timeout lines, want 1 (for /before):\n%s", n, logBufString(&logs))
		}
	})
}

// flushOutlivingDeadline checks that its context has request_timeout's
// deadline, streams "part1;", checks that the deadline is gone, waits
// until three ticks past it, checks that the context is not cancelled,
// and ends the response with "part2". It answers 500 on a failed check.
var flushOutlivingDeadline = engine.HandlerFunc(func(c *engine.Ctx) {
	ctx := c.Context()
	deadline, ok := ctx.Deadline()
	if !ok {
		c.SetStatus(500)
		c.WriteString("no deadline before the response started") //nolint:errcheck
		return
	}
	c.WriteString("part1;") //nolint:errcheck
	if c.Flush() != nil {
		return
	}
	if d, ok := ctx.Deadline(); ok {
		c.WriteString(fmt.Sprintf("deadline %v after the response started", d)) //nolint:errcheck
		return
	}
	time.Sleep(time.Until(deadline) + 300*time.Millisecond)
	if err := ctx.Err(); err != nil {
		c.WriteString(err.Error()) //nolint:errcheck
		return
	}
	c.WriteString("part2") //nolint:errcheck
})

func logBufString(l *logBuffer) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDateRefreshes: the Date header is cached per loop and refreshed
// every second, on the loop and for off-loop handlers: two responses more
// than a second apart carry different dates, each close to the clock.
func TestDateRefreshes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits for the cached Date to change, over a second on each backend; make test runs it")
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		hello := engine.HandlerFunc(func(c *engine.Ctx) { c.WriteString("hi") }) //nolint:errcheck
		r := enginetest.Router(t, &engine.Route{Path: "/inline", Handler: hello},
			&engine.Route{Path: "/offloop", Blocking: true, Handler: hello})
		s := enginetest.Start(t, b, engine.Config{Router: r, Loops: 1, Executor: goExec{},
			KeepAlive: 30 * time.Second, HeaderTimeout: 5 * time.Second})
		c := s.Dial(t)
		date := func(path string) time.Time {
			t.Helper()
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n") //nolint:errcheck
			rs, _ := enginetest.ReadResponses(t, c, 1, 5*time.Second)
			d, err := http.ParseTime(rs[0].Header.Get("Date"))
			if err != nil {
				t.Fatalf("%s: Date %q: %v", path, rs[0].Header.Get("Date"), err)
			}
			// Generous slack: a loaded machine may delay a tick.
			if off := time.Since(d); off < -2*time.Second || off > 5*time.Second {
				t.Fatalf("%s: Date %v is %v off the clock", path, d, off)
			}
			return d
		}
		for _, path := range []string{"/inline", "/offloop"} {
			first := date(path)
			time.Sleep(1100 * time.Millisecond)
			// The next tick may be late on a loaded machine: poll.
			var later time.Time
			if !enginetest.Eventually(5*time.Second, func() bool {
				later = date(path)
				return later.After(first)
			}) {
				t.Fatalf("%s: Date stayed %v for over a second", path, first)
			}
		}
	})
}

// TestHeaderAndBodyTimeoutsAreSeparate: header_timeout bounds the head
// and body_timeout the gaps in the body, each without the other: a slow
// body within body_timeout is served where a head as slow is cut at
// header_timeout, and the other way round.
func TestHeaderAndBodyTimeoutsAreSeparate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out real timeouts, seconds on each backend; make test runs it")
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		startTO := func(header, body time.Duration) *enginetest.Server {
			s, _ := start(t, b, func(c *engine.Config) {
				c.HeaderTimeout, c.BodyTimeout = header, body
			})
			return s
		}
		const short, long = 400 * time.Millisecond, 5 * time.Second
		// trickle sends s a piece every gap, for at least total; it stops
		// early when the server cuts the connection.
		trickle := func(w io.Writer, s string, gap time.Duration) {
			per := max(1, len(s)/15)
			for len(s) > 0 {
				n := min(per, len(s))
				if _, err := io.WriteString(w, s[:n]); err != nil {
					return
				}
				s = s[n:]
				time.Sleep(gap)
			}
		}
		head := "POST /len HTTP/1.1\r\nHost: a\r\nX-Padding: " + strings.Repeat("p", 30) + "\r\nContent-Length: 15\r\n\r\n"
		body := "abcdefghijklmno"

		t.Run("short header_timeout, long body_timeout", func(t *testing.T) {
			s := startTO(short, long)
			t.Run("a body trickled over more than header_timeout is served", func(t *testing.T) {
				c := s.Dial(t)
				io.WriteString(c, head)                //nolint:errcheck
				trickle(c, body, 100*time.Millisecond) // 1.5 s in all
				rs, _ := enginetest.ReadResponses(t, c, 1, 5*time.Second)
				if rs[0].StatusCode != 200 || string(rs[0].Body) != "15:"+body {
					t.Fatalf("%d %q", rs[0].StatusCode, rs[0].Body)
				}
			})
			t.Run("a head as slow is cut with 408", func(t *testing.T) {
				c := s.Dial(t)
				go trickle(c, head, 200*time.Millisecond) // 3 s in all
				rs, closed := enginetest.ReadResponses(t, c, 0, 5*time.Second)
				if !closed || len(rs) != 1 || rs[0].StatusCode != 408 {
					t.Fatalf("closed=%v responses=%d", closed, len(rs))
				}
			})
		})
		t.Run("long header_timeout, short body_timeout", func(t *testing.T) {
			s := startTO(long, short)
			t.Run("a head trickled over more than body_timeout is served", func(t *testing.T) {
				c := s.Dial(t)
				trickle(c, head, 100*time.Millisecond) // 1.5 s in all
				io.WriteString(c, body)                //nolint:errcheck
				rs, _ := enginetest.ReadResponses(t, c, 1, 5*time.Second)
				if rs[0].StatusCode != 200 || string(rs[0].Body) != "15:"+body {
					t.Fatalf("%d %q", rs[0].StatusCode, rs[0].Body)
				}
			})
			t.Run("a body that stalls longer is cut with 408", func(t *testing.T) {
				c := s.Dial(t)
				io.WriteString(c, head+"ab") //nolint:errcheck
				rs, closed := enginetest.ReadResponses(t, c, 0, 5*time.Second)
				if !closed || len(rs) != 1 || rs[0].StatusCode != 408 {
					t.Fatalf("closed=%v responses=%d", closed, len(rs))
				}
			})
		})
	})
}

// TestPipelinedBehindOffLoopRequestIsBounded: while a request runs off the
// loop, a client that keeps pipelining requests behind it is stopped by
// TCP flow control (the engine pauses reading) instead of making the
// server buffer its input; once the request completes the rest is served.
func TestPipelinedBehindOffLoopRequestIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: fills the socket buffers until TCP flow control stops the client, seconds on each backend; make test runs it")
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		release := make(chan struct{})
		var served atomic.Int64
		r := enginetest.Router(t,
			&engine.Route{Path: "/gate", Handler: engine.HandlerFunc(func(c *engine.Ctx) { <-release })},
			&engine.Route{Path: "/", Handler: engine.HandlerFunc(func(c *engine.Ctx) { served.Add(1) })})
		s := enginetest.Start(t, b, engine.Config{Router: r, Loops: 1, Dispatch: engine.OffLoop, Executor: goExec{},
			KeepAlive: 30 * time.Second, HeaderTimeout: 30 * time.Second})
		c := s.Dial(t)
		io.WriteString(c, "GET /gate HTTP/1.1\r\nHost: a\r\n\r\n") //nolint:errcheck
		batch := strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 10000)
		var written atomic.Int64
		go func() {
			// Never interrupt a write: a torn request would be a parse error.
			for i := 0; i < 2000; i++ {
				n, err := io.WriteString(c, batch)
				written.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
		time.Sleep(2 * time.Second)
		// Socket buffers on both sides hold some MB; without the pause the
		// server reads hundreds of MB in this time.
		if w := written.Load(); w > 64<<20 {
			t.Fatalf("the server took %d MB of pipelined input while a request ran off the loop", w>>20)
		}
		close(release)
		go io.Copy(io.Discard, c) //nolint:errcheck
		if !enginetest.Eventually(10*time.Second, func() bool { return served.Load() > 1000 }) {
			t.Fatalf("pipelined requests not served after the slow one completed: %d", served.Load())
		}
	})
}
