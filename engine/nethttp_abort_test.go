package engine_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// abortMux holds net/http handlers that cannot finish their response.
func abortMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/abort-first", func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/abort-sized", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "0123456789")
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/abort-chunked", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "0123456789")
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/abort-streaming", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "0123456789")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/panic-partial", panicAfterPartialBody)
	mux.HandleFunc("/panic-first", func(w http.ResponseWriter, r *http.Request) {
		panic("boom before the response")
	})
	mux.HandleFunc("/context", func(w http.ResponseWriter, r *http.Request) {
		srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		fmt.Fprintf(w, "server=%v errorlog=%v local=%v", srv != nil, srv != nil && srv.ErrorLog != nil, local)
	})
	return mux
}

func panicAfterPartialBody(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "0123456789")
	panic("boom after a partial body")
}

// rawAnswer sends raw on a new connection and returns every byte the
// server sent until it closed, and whether it closed within 5 seconds.
func rawAnswer(t *testing.T, s *enginetest.Server, raw string) ([]byte, bool) {
	t.Helper()
	c := s.Dial(t)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	var got bytes.Buffer
	_, err := io.Copy(&got, c)
	ne, timeout := err.(net.Error)
	return got.Bytes(), !(timeout && ne.Timeout())
}

// TestHTTPHandlerAbort checks what a client sees of a response a net/http
// handler cannot finish: once the response began, what was written and
// then a close before the framing completes; http.ErrAbortHandler before
// that, a close without an answer; a panic before that, a 500. Aborts are
// not logged at ERROR; other panics are, with their stack.
func TestHTTPHandlerAbort(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, blocking := range []bool{false, true} {
			t.Run(fmt.Sprintf("blocking=%v", blocking), func(t *testing.T) {
				var logs logBuffer
				cfg := engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Blocking: blocking, Handler: engine.HTTPHandler(abortMux())}),
					Loops: 2, Executor: goExec{}, KeepAlive: 10 * time.Second,
					Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
				s := enginetest.Start(t, b, cfg)
				tests := []struct {
					path, proto string
					status      int    // 0: no answer at all
					cut         bool   // the body ends before its framing says
					body        string // what arrives of the body
					closed      bool
				}{
					{"/abort-first", "HTTP/1.1", 0, false, "", true},
					{"/abort-sized", "HTTP/1.1", 200, true, "0123456789", true},
					{"/abort-chunked", "HTTP/1.1", 200, true, "0123456789", true},
					{"/abort-streaming", "HTTP/1.1", 200, true, "0123456789", true},
					{"/abort-chunked", "HTTP/1.0", 0, false, "", true}, // a close-delimited body cannot show a cut
					{"/panic-partial", "HTTP/1.1", 200, true, "0123456789", true},
					{"/panic-first", "HTTP/1.1", 500, false, "500 Internal Server Error\n", true}, // closed: Connection: close below
				}
				for _, tt := range tests {
					t.Run(tt.path+" "+tt.proto, func(t *testing.T) {
						conn := "keep-alive" // a cut response must close a persistent connection
						if tt.status == 500 {
							conn = "close" // the 500 is complete: keep-alive after it is TestHandlerPanics'
						}
						raw, closed := rawAnswer(t, s, "GET "+tt.path+" "+tt.proto+"\r\nHost: h\r\nConnection: "+conn+"\r\n\r\n")
						if closed != tt.closed {
							t.Errorf("connection closed: %v, want %v (got %q)", closed, tt.closed, raw)
						}
						if tt.status == 0 {
							if len(raw) != 0 {
								t.Errorf("answered %q, want no answer", raw)
							}
							return
						}
						resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
						if err != nil {
							t.Fatalf("%v: %q", err, raw)
						}
						body, err := io.ReadAll(resp.Body)
						if resp.StatusCode != tt.status || string(body) != tt.body {
							t.Errorf("%d %q, want %d %q (raw %q)", resp.StatusCode, body, tt.status, tt.body, raw)
						}
						if cut := err == io.ErrUnexpectedEOF; cut != tt.cut {
							t.Errorf("body cut short: %v (%v), want %v; raw %q", cut, err, tt.cut, raw)
						}
					})
				}
				t.Run("context", func(t *testing.T) {
					resps, _ := s.Exchange(t, "GET /context HTTP/1.1\r\nHost: h\r\n\r\n", 1)
					if want := "server=true errorlog=true local=" + s.Addr; len(resps) != 1 || string(resps[0].Body) != want {
						t.Errorf("got %s, want %q", describe(resps), want)
					}
				})
				log := logBufString(&logs)
				for _, line := range strings.Split(log, "\n") {
					if strings.Contains(line, "level=ERROR") && !strings.Contains(line, "boom") {
						t.Errorf("an abort logged at ERROR: %.200s", line)
					}
				}
				if n := strings.Count(log, "level=ERROR msg=\"handler panic\""); n != 2 {
					t.Errorf("%d panics logged at ERROR, want the 2 that are not aborts", n)
				}
				if !strings.Contains(log, "panicAfterPartialBody") {
					t.Errorf("the panic's stack does not name the handler:\n%s", log)
				}
				if n := strings.Count(log, "aborted its response"); n != 5 {
					t.Errorf("%d aborts logged at DEBUG, want 5:\n%s", n, log)
				}
			})
		}
	})
}
