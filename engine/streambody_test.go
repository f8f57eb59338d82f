package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// TestStreamBodyRoute: on a route with StreamBody (request_buffering:
// false) a native handler reads a small body as it arrives, sized or
// chunked, whatever the worker class; a body already whole in the input
// is handed over as usual.
func TestStreamBodyRoute(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		first := make(chan string, 1)
		h := engine.HandlerFunc(func(c *engine.Ctx) {
			r := c.BodyReader()
			buf := make([]byte, 5)
			n, err := io.ReadFull(r, buf)
			first <- string(buf[:n])
			rest, err2 := io.ReadAll(r)
			fmt.Fprintf(c, "first=%s/%v rest=%s/%v", buf[:n], err, rest, err2)
		})
		// Not blocking: the handler would otherwise run on the loop.
		cfg := engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", StreamBody: true, Handler: h}),
			Loops: 1, Executor: goExec{}, KeepAlive: 5 * time.Second, HeaderTimeout: 5 * time.Second, BodyTimeout: 5 * time.Second}
		cfg.Limits.MaxBodySize = 1 << 20
		s := enginetest.Start(t, b, cfg)
		for _, tc := range []struct{ name, head, part1, part2 string }{
			{"sized", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", "hello", "world"},
			{"chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n", "5\r\nworld\r\n0\r\n\r\n"},
			{"whole", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", "helloworld", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := s.Dial(t)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, tc.head+tc.part1)
				select {
				case got := <-first:
					if got != "hello" {
						t.Fatalf("first read %q", got)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the handler did not get the body's first part before the client sent the rest")
				}
				io.WriteString(c, tc.part2)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				if want := "first=hello/<nil> rest=world/<nil>"; string(body) != want {
					t.Errorf("%q, want %q", body, want)
				}
			})
		}
	})
}
