package engine_test

import (
	"bufio"
	"errors"
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

// adapterMux is an ordinary net/http application: Go 1.22 patterns,
// MaxBytesReader, Flusher, header and status handling, and a handler that
// waits for its request's context.
func adapterMux(cancelled chan<- string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "item=%s host=%s uri=%s ua=%s vals=%s", r.PathValue("id"), r.Host, r.RequestURI,
			r.Header.Get("User-Agent"), strings.Join(r.Header.Values("X-In"), ","))
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 10)
		b, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("too large: limit %d", mbe.Limit), http.StatusRequestEntityTooLarge)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "got %q cl=%d te=%v trailer=%q", b, r.ContentLength, r.TransferEncoding, r.Trailer.Get("X-Sum"))
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			f.Flush()
		}
	})
	mux.HandleFunc("GET /sized", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "01234")
		http.NewResponseController(w).Flush()
		io.WriteString(w, "56789")
	})
	mux.HandleFunc("GET /sniff", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html><body>hi</body></html>")
	})
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- "cancelled: " + r.Context().Err().Error()
		case <-time.After(10 * time.Second):
			cancelled <- "not cancelled"
		}
	})
	return mux
}

func startAdapter(t *testing.T, b loop.Backend, blocking bool) (*enginetest.Server, chan string) {
	cancelled := make(chan string, 1)
	h := engine.HTTPHandler(adapterMux(cancelled))
	cfg := engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Blocking: blocking, Handler: h}),
		Loops: 2, Executor: goExec{}, KeepAlive: 5 * time.Second, HeaderTimeout: 2 * time.Second, BodyTimeout: 2 * time.Second}
	cfg.Limits.MaxBodySize = 1 << 20
	return enginetest.Start(t, b, cfg), cancelled
}

// TestHTTPHandlerAdapter runs a net/http ServeMux through the adapter, on the
// loop and off it, on every backend, with net/http's own client.
func TestHTTPHandlerAdapter(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, blocking := range []bool{false, true} {
			t.Run(fmt.Sprintf("blocking=%v", blocking), func(t *testing.T) {
				s, _ := startAdapter(t, b, blocking)
				client := &http.Client{Timeout: 5 * time.Second}
				base := "http://" + s.Addr
				get := func(t *testing.T, req *http.Request) (*http.Response, string) {
					t.Helper()
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						t.Fatalf("read body: %v", err)
					}
					return resp, string(body)
				}

				t.Run("pattern, status, headers", func(t *testing.T) {
					req, _ := http.NewRequest("GET", base+"/items/42?x=1", nil)
					req.Header.Set("User-Agent", "adapter-test")
					req.Header.Add("X-In", "1")
					req.Header.Add("X-In", "2")
					resp, body := get(t, req)
					want := "item=42 host=" + s.Addr + " uri=/items/42?x=1 ua=adapter-test vals=1,2"
					if resp.StatusCode != 201 || body != want {
						t.Errorf("got %d %q, want 201 %q", resp.StatusCode, body, want)
					}
					if got := resp.Header.Values("X-Multi"); strings.Join(got, ",") != "a,b" {
						t.Errorf("X-Multi = %q", got)
					}
					if resp.ContentLength != int64(len(want)) || resp.Header.Get("Content-Type") != "text/plain" {
						t.Errorf("Content-Length %d, Content-Type %q", resp.ContentLength, resp.Header.Get("Content-Type"))
					}
				})
				t.Run("method mismatch is the mux's 405", func(t *testing.T) {
					req, _ := http.NewRequest("DELETE", base+"/items/42", nil)
					resp, _ := get(t, req)
					if resp.StatusCode != 405 || !strings.Contains(resp.Header.Get("Allow"), "GET") {
						t.Errorf("got %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
					}
				})
				t.Run("request body and MaxBytesReader", func(t *testing.T) {
					req, _ := http.NewRequest("POST", base+"/upload", strings.NewReader("0123456789"))
					if resp, body := get(t, req); resp.StatusCode != 200 || body != `got "0123456789" cl=10 te=[] trailer=""` {
						t.Errorf("at the limit: %d %q", resp.StatusCode, body)
					}
					req, _ = http.NewRequest("POST", base+"/upload", strings.NewReader("0123456789A"))
					if resp, body := get(t, req); resp.StatusCode != 413 || !strings.Contains(body, "limit 10") {
						t.Errorf("over the limit: %d %q", resp.StatusCode, body)
					}
				})
				t.Run("chunked request body with a trailer", func(t *testing.T) {
					resps, _ := s.Exchange(t, "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
						"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n", 1)
					want := `got "abcde" cl=-1 te=[chunked] trailer="5"`
					if len(resps) != 1 || resps[0].StatusCode != 200 || string(resps[0].Body) != want {
						t.Fatalf("got %v, want 200 %q", describe(resps), want)
					}
				})
				t.Run("Flush streams a chunked response", func(t *testing.T) {
					req, _ := http.NewRequest("GET", base+"/stream", nil)
					resp, body := get(t, req)
					if body != "part0;part1;part2;" {
						t.Errorf("body %q", body)
					}
					if !blocking {
						return // on the loop nothing is flushed early (docs/design.md)
					}
					if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
						t.Errorf("TransferEncoding = %v, want chunked", resp.TransferEncoding)
					}
				})
				t.Run("a declared Content-Length survives Flush", func(t *testing.T) {
					req, _ := http.NewRequest("GET", base+"/sized", nil)
					resp, body := get(t, req)
					if body != "0123456789" || resp.ContentLength != 10 || len(resp.TransferEncoding) != 0 {
						t.Errorf("body %q Content-Length %d TE %v", body, resp.ContentLength, resp.TransferEncoding)
					}
				})
				t.Run("Content-Type is sniffed", func(t *testing.T) {
					req, _ := http.NewRequest("GET", base+"/sniff", nil)
					resp, _ := get(t, req)
					if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
						t.Errorf("Content-Type %q", ct)
					}
				})
				t.Run("HEAD has the GET's length and no body", func(t *testing.T) {
					req, _ := http.NewRequest("HEAD", base+"/items/7", nil)
					resp, body := get(t, req)
					if resp.StatusCode != 201 || body != "" || resp.ContentLength <= 0 {
						t.Errorf("HEAD: %d %q Content-Length %d", resp.StatusCode, body, resp.ContentLength)
					}
				})
			})
		}
	})
}

// TestHTTPHandlerContextCancelledWhenClientLeaves: an off-loop net/http
// handler waiting on r.Context() is released when its client disconnects.
func TestHTTPHandlerContextCancelledWhenClientLeaves(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s, cancelled := startAdapter(t, b, true)
		c := s.Dial(t)
		if _, err := io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // let the handler start waiting
		c.Close()
		select {
		case got := <-cancelled:
			if !strings.HasPrefix(got, "cancelled") {
				t.Errorf("handler: %s", got)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("handler never returned")
		}
	})
}

// TestHTTPHandlerHijack: an off-loop net/http handler takes the connection
// over and speaks its own protocol on it, bytes sent after the request
// included.
func TestHTTPHandlerHijack(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		var hijacks atomic.Int64
		h := engine.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			defer conn.Close()
			hijacks.Add(1)
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			for {
				line, err := rw.ReadString('\n')
				if err != nil {
					return
				}
				rw.WriteString(strings.ToUpper(line))
				rw.Flush()
			}
		}))
		cfg := engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Blocking: true, Handler: h}),
			Loops: 1, Executor: goExec{}, KeepAlive: 5 * time.Second, HeaderTimeout: 2 * time.Second}
		s := enginetest.Start(t, b, cfg)
		c := s.Dial(t)
		// "early\n" arrives with the request: the hijacker's reader must hold it.
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\nearly\n")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade response: %v %v", resp, err)
		}
		for _, want := range []string{"EARLY\n", "LATE\n"} {
			if want == "LATE\n" {
				io.WriteString(c, "late\n")
			}
			got, err := br.ReadString('\n')
			if err != nil || got != want {
				t.Fatalf("got %q %v, want %q", got, err, want)
			}
		}
		if hijacks.Load() != 1 {
			t.Errorf("hijacks = %d", hijacks.Load())
		}
	})
}

func describe(rs []*enginetest.Response) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "[%d %q] ", r.StatusCode, r.Body)
	}
	return b.String()
}
