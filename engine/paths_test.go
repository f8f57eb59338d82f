package engine_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// startPathServer routes /native/ to a handler that reports what Ctx says
// of the request, /nethttp/ to the net/http adapter reporting what
// *http.Request says, and /get (GET only) to a fixed answer; blocking
// runs the handlers off the loop, where the request is copied out of the
// input buffer first.
func startPathServer(t *testing.T, b loop.Backend, blocking bool, logw *logBuffer) *enginetest.Server {
	native := engine.HandlerFunc(func(c *engine.Ctx) {
		fmt.Fprintf(c, "path=%s target=%s query=%s host=%s", c.Path(), c.Target(), c.Query(), c.Host())
	})
	adapter := engine.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "path=%s rawpath=%s escaped=%s uri=%s query=%s host=%s",
			r.URL.Path, r.URL.RawPath, r.URL.EscapedPath(), r.RequestURI, r.URL.RawQuery, r.Host)
	}))
	r := enginetest.Router(t,
		&engine.Route{Path: "/native/", Handler: native, Blocking: blocking},
		&engine.Route{Path: "/nethttp/", Handler: adapter, Blocking: blocking},
		&engine.Route{Path: "/get", Methods: []string{"GET"}, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			c.WriteString("get") //nolint:errcheck
		})})
	cfg := engine.Config{Router: r, Loops: 1, Executor: goExec{}, KeepAlive: 5 * time.Second,
		HeaderTimeout: 2 * time.Second, BodyTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logw, nil))}
	cfg.Limits.MaxBodySize = 1 << 20
	return enginetest.Start(t, b, cfg)
}

// TestNormalizedPath: handlers see the normalized path the route matched
// (Ctx.Path, and URL.Path in the net/http adapter with RawPath set as
// net/http sets it), and the target as sent (Ctx.Target, RequestURI).
func TestNormalizedPath(t *testing.T) {
	tests := []struct {
		target, native, nethttp string
	}{
		{"/native/a/./b/../%63//d?x=%2e%2e/..",
			"path=/native/a/c/d target=/native/a/./b/../%63//d?x=%2e%2e/.. query=x=%2e%2e/.. host=h", ""},
		{"/nethttp/a/./b/../%63//d?x=%2e%2e/..", "",
			"path=/nethttp/a/c/d rawpath= escaped=/nethttp/a/c/d uri=/nethttp/a/./b/../%63//d?x=%2e%2e/.. query=x=%2e%2e/.. host=h"},
		{"/nethttp/%7e/a%3bb%3f", "",
			"path=/nethttp/~/a;b? rawpath=/nethttp/~/a%3Bb%3F escaped=/nethttp/~/a%3Bb%3F uri=/nethttp/%7e/a%3bb%3f query= host=h"},
		{"/native/plain", "path=/native/plain target=/native/plain query= host=h", ""},
		{"/nethttp/plain", "", "path=/nethttp/plain rawpath= escaped=/nethttp/plain uri=/nethttp/plain query= host=h"},
		{"http://authority.example/native/./x", "path=/native/x target=http://authority.example/native/./x query= host=authority.example", ""},
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, blocking := range []bool{false, true} {
			t.Run(fmt.Sprintf("blocking=%v", blocking), func(t *testing.T) {
				var logw logBuffer
				s := startPathServer(t, b, blocking, &logw)
				for _, tt := range tests {
					want := tt.native + tt.nethttp
					resps, _ := s.Exchange(t, "GET "+tt.target+" HTTP/1.1\r\nHost: h\r\n\r\n", 1)
					if len(resps) != 1 || resps[0].StatusCode != 200 || string(resps[0].Body) != want {
						t.Errorf("GET %s: %v, want 200 %q", tt.target, describe(resps), want)
					}
				}
				// The body arrives after the head: the request is copied
				// out of the input and parsed again, the path with it.
				c := s.Dial(t)
				fmt.Fprint(c, "POST /native/x/../%79 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n")
				time.Sleep(20 * time.Millisecond)
				fmt.Fprint(c, "hi")
				resps, _ := enginetest.ReadResponses(t, c, 1, 5*time.Second)
				if want := "path=/native/y target=/native/x/../%79 query= host=h"; len(resps) != 1 || string(resps[0].Body) != want {
					t.Errorf("POST with a late body: %v, want %q", describe(resps), want)
				}
			})
		}
	})
}

// TestPathWithoutNormalForm: a path that has no normal form is a 400 with
// a log line, before any handler; the method check judges the normalized
// path's route; the connection stays usable (framing is intact).
func TestPathWithoutNormalForm(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		var logw logBuffer
		s := startPathServer(t, b, false, &logw)
		for _, tt := range []struct {
			method, target string
			status         int
			reason         string
		}{
			{"GET", "/../native/x", 400, "path climbs above the root"},
			{"GET", "/native/../../x", 400, "path climbs above the root"},
			{"GET", "/native/a%2fb", 400, `encoded / or \\ in path`},
			{"GET", "/native/a%5Cb", 400, `encoded / or \\ in path`},
			{"GET", "/native/..;/x", 400, "dot segment with a ; parameter in path"},
			{"POST", "/%67et", 405, ""},
			{"DELETE", "/native/../get", 405, ""},
			{"GET", "/native/../%67et", 200, ""},
		} {
			// Two requests on one connection: the answer, then a plain GET.
			raw := tt.method + " " + tt.target + " HTTP/1.1\r\nHost: h\r\n\r\nGET /get HTTP/1.1\r\nHost: h\r\n\r\n"
			resps, _ := s.Exchange(t, raw, 2)
			if len(resps) != 2 || resps[0].StatusCode != tt.status || resps[1].StatusCode != 200 {
				t.Errorf("%s %s then GET /get: %v, want %d then 200", tt.method, tt.target, describe(resps), tt.status)
			}
			if tt.reason != "" && !enginetest.Eventually(5*time.Second, func() bool {
				return logw.has(`status=400 reason="` + tt.reason + `"`)
			}) {
				t.Errorf("%s: no log line with reason %q:\n%s", tt.target, tt.reason, logBufString(&logw))
			}
		}
	})
}
