package engine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// ctxReport is what a handler saw of its request's context.
type ctxReport struct {
	hasDeadline bool
	deadline    time.Time
	entered     time.Time // when the handler started
	err         error     // ctx.Err() once Done
	cause       error     // context.Cause(ctx)
	childErr    error     // Err of a context.WithCancel child
	childCause  error
	afterFunc   bool // a context.AfterFunc ran
}

// waitReport records ctx's deadline, waits until ctx is done (or 20 s),
// and records how it ended, for itself and for contexts derived from it.
func waitReport(ctx context.Context) ctxReport {
	r := ctxReport{entered: time.Now()}
	r.deadline, r.hasDeadline = ctx.Deadline()
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ran) })
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Second):
	}
	<-child.Done()
	r.err, r.cause = ctx.Err(), context.Cause(ctx)
	r.childErr, r.childCause = child.Err(), context.Cause(child)
	select {
	case <-ran:
		r.afterFunc = true
	case <-time.After(5 * time.Second):
	}
	return r
}

// checkDeadline checks a report of a request that timed out: a deadline
// set when the handler started, within timeout of it (the loop's clock
// may be a tick behind), and DeadlineExceeded on the context and as its
// derived contexts' cause.
func checkDeadline(t *testing.T, r ctxReport, timeout time.Duration) {
	t.Helper()
	if !r.hasDeadline || !r.deadline.After(r.entered) || r.deadline.After(r.entered.Add(timeout)) {
		t.Errorf("Deadline() = %v, %v; the handler started at %v, request_timeout %v",
			r.deadline, r.hasDeadline, r.entered, timeout)
	}
	if r.err != context.DeadlineExceeded || r.cause != context.DeadlineExceeded {
		t.Errorf("Err() = %v, Cause = %v; want context.DeadlineExceeded", r.err, r.cause)
	}
	if r.childCause != context.DeadlineExceeded || r.childErr == nil || !r.afterFunc {
		t.Errorf("derived: Err %v, Cause %v, AfterFunc ran %v; want done, with cause DeadlineExceeded",
			r.childErr, r.childCause, r.afterFunc)
	}
}

// TestRequestContextDeadline: a native handler off the loop sees
// request_timeout's deadline on its context and, when it expires before
// the response starts, context.DeadlineExceeded (contexts derived from it
// are done with it, the cause DeadlineExceeded); the client gets 503. A
// client that leaves cancels it with context.Canceled. A handler on the
// loop has no deadline.
func TestRequestContextDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out real timeouts, seconds on each backend; make test runs it")
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		const rt = time.Second
		reports := make(chan ctxReport, 1)
		r := enginetest.Router(t,
			&engine.Route{Path: "/wait", Blocking: true, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
				reports <- waitReport(c.Context())
			})},
			&engine.Route{Path: "/inline", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
				_, ok := c.Context().Deadline()
				fmt.Fprintf(c, "deadline=%v err=%v", ok, c.Context().Err())
			})},
		)
		s := enginetest.Start(t, b, engine.Config{Router: r, Loops: 1, Executor: goExec{},
			KeepAlive: 10 * time.Second, HeaderTimeout: 5 * time.Second, RequestTimeout: rt})

		t.Run("expires before the response", func(t *testing.T) {
			rs, closed := s.Exchange(t, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n", 0)
			if len(rs) != 1 || rs[0].StatusCode != 503 || !closed {
				t.Fatalf("responses=%d closed=%v, want one 503 and a close", len(rs), closed)
			}
			checkDeadline(t, <-reports, rt)
		})
		t.Run("client leaves", func(t *testing.T) {
			c := s.Dial(t)
			io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n") //nolint:errcheck
			time.Sleep(100 * time.Millisecond)
			c.Close()
			r := <-reports
			if r.err != context.Canceled || r.childErr != context.Canceled || !r.afterFunc {
				t.Errorf("Err %v, derived Err %v, AfterFunc %v; want context.Canceled", r.err, r.childErr, r.afterFunc)
			}
		})
		t.Run("on the loop: no deadline", func(t *testing.T) {
			rs, _ := s.Exchange(t, "GET /inline HTTP/1.1\r\nHost: a\r\n\r\n", 1)
			if got := string(rs[0].Body); got != "deadline=false err=<nil>" {
				t.Fatalf("inline handler saw %q", got)
			}
		})
	})
}

// TestSendTimeoutClosesStalledStream: a client that reads a stream's head
// and then stops reading is closed once its output makes no progress for
// send_timeout (request_timeout, far longer, plays no part): the handler's
// write fails with ErrClientGone and its context ends with
// context.Canceled, and it is logged.
func TestSendTimeoutClosesStalledStream(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out real timeouts, seconds on each backend; make test runs it")
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		type result struct{ writeErr, ctxErr error }
		done := make(chan result, 1)
		r := enginetest.Router(t, &engine.Route{Path: "/flood", Blocking: true, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			chunk := strings.Repeat("x", 32<<10)
			for {
				_, err := c.WriteString(chunk)
				if err == nil {
					err = c.Flush()
				}
				if err != nil {
					done <- result{err, c.Context().Err()}
					return
				}
			}
		})})
		var logs logBuffer
		s := enginetest.Start(t, b, engine.Config{Router: r, Loops: 1, Executor: goExec{},
			KeepAlive: 10 * time.Second, HeaderTimeout: 5 * time.Second, RequestTimeout: time.Minute,
			SendTimeout: 500 * time.Millisecond, Logger: logs.logger()})
		c := s.Dial(t)
		io.WriteString(c, "GET /flood HTTP/1.1\r\nHost: a\r\n\r\n") //nolint:errcheck
		br := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("head: %v %v", resp, err)
		}
		// Now read nothing.
		select {
		case r := <-done:
			if !errors.Is(r.writeErr, engine.ErrClientGone) || r.ctxErr != context.Canceled {
				t.Fatalf("handler's write: %v, context: %v; want ErrClientGone and context.Canceled", r.writeErr, r.ctxErr)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a stream to a client that stopped reading was not closed")
		}
		n, err := io.Copy(io.Discard, br) // what the kernel still held for the client, then the close
		if err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("after %d bytes: %v", n, err)
		}
		if !enginetest.Eventually(5*time.Second, func() bool { return logs.has("send timeout") }) {
			t.Fatalf("not logged:\n%s", logBufString(&logs))
		}
	})
}

// deadlineMux is the net/http application of TestNetHTTPDeadlineSideBySide:
// /wait reports its context and answers nothing itself; /stream sends its
// head, then writes again after waiting past the deadline it had.
func deadlineMux(reports chan<- ctxReport) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		reports <- waitReport(r.Context())
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part1;")           //nolint:errcheck
		http.NewResponseController(w).Flush() //nolint:errcheck
		time.Sleep(1500 * time.Millisecond)   // past the 1 s limits below
		if _, err := io.WriteString(w, "part2"); err != nil {
			return
		}
		http.NewResponseController(w).Flush() //nolint:errcheck
	})
	return mux
}

// TestNetHTTPDeadlineSideBySide runs one net/http application under
// asyncd (request_timeout 1s) and under net/http's own server.
//
// Against http.TimeoutHandler (1s), the handler that does not answer sees
// the same: a deadline about 1s after it started, Err
// context.DeadlineExceeded, and the client a 503. (Contexts derived from
// r.Context() are done at the same moment in both; under TimeoutHandler
// their Err is DeadlineExceeded, under asyncd Canceled, with
// context.Cause DeadlineExceeded: see requestContext.)
//
// Against Server.WriteTimeout (1s), a response that started and goes on
// past the limit differs, on purpose: net/http cuts it (the write
// deadline covers the whole response), asyncd completes it, as nginx's
// send_timeout would (request_timeout bounds only the response's start).
func TestNetHTTPDeadlineSideBySide(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out real timeouts, seconds on each backend; make test runs it")
	}
	const limit = time.Second
	reports := make(chan ctxReport, 1)
	app := deadlineMux(reports)

	// net/http, with http.TimeoutHandler.
	th := httptest.NewServer(http.TimeoutHandler(app, limit, ""))
	defer th.Close()
	resp, err := http.Get(th.URL + "/wait")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	netStatus, netReport := resp.StatusCode, <-reports
	checkDeadline(t, netReport, limit) // net/http's own behaviour, the reference
	// net/http, with Server.WriteTimeout.
	wt := httptest.NewUnstartedServer(app)
	wt.Config.WriteTimeout = limit
	wt.Start()
	defer wt.Close()
	netBody, netErr := getBody(wt.URL + "/stream")

	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := enginetest.Start(t, b, engine.Config{Router: enginetest.Router(t,
			&engine.Route{Path: "/", Handler: engine.HTTPHandler(app)}),
			Loops: 1, Dispatch: engine.OffLoop, Executor: goExec{},
			KeepAlive: 10 * time.Second, HeaderTimeout: 5 * time.Second, RequestTimeout: limit})
		url := "http://" + s.Addr

		resp, err := http.Get(url + "/wait")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		asyncdReport := <-reports
		if resp.StatusCode != netStatus || netStatus != 503 {
			t.Errorf("status: asyncd %d, net/http TimeoutHandler %d; want 503 from both", resp.StatusCode, netStatus)
		}
		checkDeadline(t, asyncdReport, limit)
		if netReport.err != asyncdReport.err || netReport.hasDeadline != asyncdReport.hasDeadline {
			t.Errorf("net/http: deadline %v, Err %v; asyncd: deadline %v, Err %v",
				netReport.hasDeadline, netReport.err, asyncdReport.hasDeadline, asyncdReport.err)
		}

		body, err := getBody(url + "/stream")
		if err != nil || body != "part1;part2" {
			t.Errorf("asyncd: a response that started and outlived request_timeout: %q, %v; want it whole", body, err)
		}
		if netErr == nil || netBody == "part1;part2" {
			t.Errorf("net/http with WriteTimeout: %q, %v; expected it cut (the comparison no longer holds)", netBody, netErr)
		}
	})
}

// getBody GETs url and returns the body read until an error.
func getBody(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
