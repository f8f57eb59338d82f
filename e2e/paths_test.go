package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawUpstream is an HTTP/1.1 upstream that records each request line
// exactly as the proxy sent it (no library decodes or cleans it) and
// answers 200 "upstream".
type rawUpstream struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string // "METHOD target body=N"
	heads []string // each request's field lines, as sent
}

func startRawUpstream(t *testing.T) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(c)
		}
	}()
	return u
}

func (u *rawUpstream) url() string { return "http://" + u.ln.Addr().String() }

func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cl, chunked := int64(0), false
		var head strings.Builder
		for {
			h, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if h == "\r\n" {
				break
			}
			head.WriteString(h)
			name, value, _ := strings.Cut(strings.TrimRight(h, "\r\n"), ":")
			value = strings.TrimSpace(value)
			switch strings.ToLower(name) {
			case "content-length":
				cl, _ = strconv.ParseInt(value, 10, 64)
			case "transfer-encoding":
				chunked = strings.EqualFold(value, "chunked")
			}
		}
		var n int64
		if chunked {
			n, err = io.Copy(io.Discard, httpChunked(br))
		} else {
			n, err = io.CopyN(io.Discard, br, cl)
		}
		if err != nil {
			return
		}
		method, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		target, _, _ := strings.Cut(rest, " ")
		u.mu.Lock()
		u.lines = append(u.lines, fmt.Sprintf("%s %s body=%d", method, target, n))
		u.heads = append(u.heads, head.String())
		u.mu.Unlock()
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nupstream"); err != nil {
			return
		}
	}
}

// httpChunked decodes a chunked body (net/http/httputil's reader).
func httpChunked(r *bufio.Reader) io.Reader {
	req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(
		strings.NewReader("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), r)))
	if err != nil {
		return strings.NewReader("")
	}
	return req.Body
}

// seen returns the request lines recorded since the n-th.
func (u *rawUpstream) seen(n int) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.lines[n:]...)
}

func (u *rawUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.lines)
}

// TestPathNormalization sends the path attacks of issue 16 (High 1) over
// real sockets to the binary, with a raw upstream behind the proxy plugin:
// routing, the method check and the forwarded path must all judge the
// normalized path, so a deny route cannot be walked around and the
// upstream never sees a path that means something else to it.
func TestPathNormalization(t *testing.T) {
	up := startRawUpstream(t)
	www := t.TempDir()
	os.WriteFile(filepath.Join(www, "a.txt"), []byte("file a"), 0o644) //nolint:errcheck
	addr := freePort(t)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
routes:
  - {path: /proxy/internal/, handler: static, options: {status: 403, body: denied}}
  - {path: /proxy/admin, handler: proxy, methods: [GET], options: {upstream: "%s"}}
  - {path: /proxy/, handler: proxy, options: {upstream: "%s"}}
  - {path: /pub/, handler: proxy, options: {upstream: "%s/public", strip_prefix: true}}
  - {path: /files/, handler: files, options: {root: "%s"}}
`, addr, up.url(), up.url(), up.url(), www))

	tests := []struct {
		method, target string
		status         int
		upstream       string // the request line the upstream must see; "" for none
	}{
		// A deny route cannot be walked around.
		{"GET", "/proxy/%69nternal/secret", 403, ""},
		{"GET", "/proxy/x/../internal/secret", 403, ""},
		{"GET", "/proxy//internal/secret", 403, ""},
		{"GET", "/proxy/./internal/secret", 403, ""},
		{"GET", "/proxy/%2e/internal/secret", 403, ""},
		{"GET", "/proxy/%2E%2e/proxy/internal/secret", 403, ""},
		{"GET", "/proxy/x/.%2E/%69n%74ernal/secret", 403, ""},
		{"GET", "/proxy/internal/.", 403, ""},
		{"GET", "/proxy/internal/x/..", 403, ""},
		{"GET", "http://h/proxy/./internal/secret", 403, ""},
		// The method check judges the route the normalized path matched.
		{"POST", "/proxy/%61dmin", 405, ""},
		{"DELETE", "/proxy/./admin", 405, ""},
		{"PUT", "/proxy//admin", 405, ""},
		{"GET", "/proxy/%61dmin", 200, "GET /proxy/admin body=0"},
		{"HEAD", "/proxy/x/../admin", 200, "HEAD /proxy/admin body=0"},
		// strip_prefix works on the normalized path: no ".." reaches the
		// upstream, and what leaves the route leaves the prefix.
		{"GET", "/pub/../admin", 404, ""},
		{"GET", "/pub/%2e%2e/admin", 404, ""},
		{"GET", "/pub/..%2fadmin", 400, ""},
		{"GET", "/pub/..%2Fadmin", 400, ""},
		{"GET", "/pub/..%5cadmin", 400, ""},
		{"GET", "/pub/x/../y", 200, "GET /public/y body=0"},
		{"GET", "/pub/a/.", 200, "GET /public/a/ body=0"},
		{"GET", "/pub/a/b/..", 200, "GET /public/a/ body=0"},
		{"GET", "/pub//a//b", 200, "GET /public/a/b body=0"},
		{"GET", "/pub/%7euser/%41", 200, "GET /public/~user/A body=0"},
		// Escapes of reserved characters stay escaped (upper-case hex),
		// the query is forwarded as sent.
		{"GET", "/pub/a%3bb%3Fc%23d%20e?q=%2e%2e/../x", 200, "GET /public/a%3Bb%3Fc%23d%20e?q=%2e%2e/../x body=0"},
		// An escaped NUL separates nothing: it stays escaped (HTTP
		// conformance suites expect it accepted), and files refuses it.
		{"GET", "/pub/a%00b", 200, "GET /public/a%00b body=0"},
		{"GET", "/files/a.txt%00.html", 400, ""},
		// ';' is data, as for nginx; a dot segment with a parameter
		// would walk up in a servlet container behind the proxy.
		{"GET", "/pub/a;v=1/b", 200, "GET /public/a;v=1/b body=0"},
		{"GET", "/proxy/..;/internal/secret", 400, ""},
		{"GET", "/proxy/x/..;x/internal/secret", 400, ""},
		{"GET", "/proxy/x/.%3b/internal/secret", 400, ""},
		// No normal form: 400.
		{"GET", "/../x", 400, ""},
		{"GET", "/%2e%2e/x", 400, ""},
		{"GET", "/proxy/../../x", 400, ""},
		{"GET", "/proxy/%zz", 400, ""},
		{"GET", "/proxy/%2", 400, ""},
		// files sees the normalized path too.
		{"GET", "/files/./a.txt", 200, ""},
		{"GET", "/files/%61.txt", 200, ""},
		{"GET", "/files/x/../a.txt", 200, ""},
	}
	for _, tt := range tests {
		before := up.count()
		r := exchange(t, "", addr, tt.method+" "+tt.target+" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		got := up.seen(before)
		want := []string(nil)
		if tt.upstream != "" {
			want = []string{tt.upstream}
		}
		if r.status != tt.status || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s %s: %d, upstream saw %q; want %d, upstream %q", tt.method, tt.target, r.status, got, tt.status, want)
		}
	}
	if strings.Contains(fmt.Sprint(up.seen(0)), "internal") {
		t.Errorf("a request reached the upstream under the deny route: %q", up.seen(0))
	}
	if !strings.Contains(p.log(), `reason="path climbs above the root"`) {
		t.Errorf("no log line for the 400 of a path above the root:\n%s", p.log())
	}
}

// TestPathNormalizationKeptWithBody: a request whose body arrives after
// its head is copied out of the input buffer and parsed again, and one
// with a large streamed body goes to the handler before its body: the
// normalized path must survive both on its way to the upstream.
func TestPathNormalizationKeptWithBody(t *testing.T) {
	up := startRawUpstream(t)
	addr := freePort(t)
	run(t, fmt.Sprintf(`
bind: ["%s"]
body_buffer_size: 1024
routes:
  - {path: /proxy/internal/, handler: static, options: {status: 403, body: denied}}
  - {path: /pub/, handler: proxy, options: {upstream: "%s/public", strip_prefix: true}}
`, addr, up.url()))
	big := strings.Repeat("b", 100<<10)
	for _, tt := range []struct {
		name  string
		parts []string
		want  string
	}{
		{"body later", []string{"POST /pub/x/./%79 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", "hello"}, "POST /public/x/y body=5"},
		{"chunked later", []string{"POST /pub//x/../y HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n"}, "POST /public/y body=5"},
		{"streamed", []string{"PUT /pub/%2e/y HTTP/1.1\r\nHost: h\r\nContent-Length: 102400\r\nConnection: close\r\n\r\n", big}, "PUT /public/y body=102400"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			c := dialSend(t, "", addr, tt.parts[0])
			defer c.Close()
			time.Sleep(50 * time.Millisecond) // so that the head is read alone
			if _, err := io.WriteString(c, tt.parts[1]); err != nil {
				t.Fatal(err)
			}
			r, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if got := up.seen(before); r.StatusCode != 200 || len(got) != 1 || got[0] != tt.want {
				t.Errorf("%d, upstream saw %q, want 200 and %q", r.StatusCode, got, tt.want)
			}
		})
	}
}

// TestAbsoluteFormHostInBinary: with an absolute-form target the target's
// authority is the host (RFC 9112 §3.2.2), even when Host is empty: the
// access log's SERVER_NAME and SERVER_PORT and the proxy's
// X-Forwarded-Host follow it; {host}i logs the field as sent.
func TestAbsoluteFormHostInBinary(t *testing.T) {
	up := startRawUpstream(t)
	addr := freePort(t)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
accesslog: "@DIR@/access.log"
access_log_format: '%%({SERVER_NAME}e)s %%({SERVER_PORT}e)s [%%({host}i)s] %%(s)s'
routes:
  - {path: /p/, handler: proxy, options: {upstream: "%s"}}
`, addr, up.url()))
	for _, host := range []string{"", "other.example"} {
		before := up.count()
		r := exchange(t, "", addr, "GET http://target.example:81/p/x HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		up.mu.Lock()
		heads := append([]string(nil), up.heads[before:]...)
		up.mu.Unlock()
		if r.status != 200 || len(heads) != 1 || !strings.Contains(heads[0], "X-Forwarded-Host: target.example:81\r\n") {
			t.Errorf("Host %q: %d, upstream head %q; want 200 and X-Forwarded-Host: target.example:81", host, r.status, heads)
		}
	}
	log := lines(t, filepath.Join(p.dir, "access.log"), 2)
	for _, want := range []string{"target.example 81 [] 200", "target.example 81 [other.example] 200"} {
		if !slices.Contains(log, want) { // lines of different loops may come out of order
			t.Errorf("access log has no line %q:\n%s", want, strings.Join(log, "\n"))
		}
	}
}

// TestRoutesShareAPathByMethod: the config allows two routes on one path
// with different methods; the serving process used to refuse that
// ("defined twice") and crash-loop while --check-config said OK.
func TestRoutesShareAPathByMethod(t *testing.T) {
	addr := freePort(t)
	run(t, fmt.Sprintf(`
bind: ["%s"]
routes:
  - {path: /x, handler: static, methods: [GET], options: {body: got}}
  - {path: /x, handler: echo, methods: [POST]}
`, addr))
	if r := exchange(t, "", addr, "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"); r.status != 200 || r.body != "got" {
		t.Errorf("GET /x: %d %q, want 200 got", r.status, r.body)
	}
	if r := exchange(t, "", addr, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"); r.status != 200 || !strings.Contains(r.body, `"body":"hi"`) {
		t.Errorf("POST /x: %d %q, want 200 and the echo", r.status, r.body)
	}
	if r := exchange(t, "", addr, "DELETE /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"); r.status != 405 || r.header.Get("Allow") != "GET, POST, HEAD" {
		t.Errorf("DELETE /x: %d Allow %q, want 405 Allow: GET, POST, HEAD", r.status, r.header.Get("Allow"))
	}
}

// TestCheckConfigRouteErrors: --check-config finds what the router would
// refuse at start (it used to say OK and leave the serving process to fail
// five times), naming the route and the file.
func TestCheckConfigRouteErrors(t *testing.T) {
	bin := asyncdBinary(t)
	dir := t.TempDir()
	for _, tt := range []struct{ routes, want string }{
		{"  - {path: /a//b/, handler: echo}", `routes[0].path: requests are routed on their normalized path, which is never "/a//b/": write "/a/b/"`},
		{"  - {path: /pub/%2e%2e/x, handler: echo}", `routes[0].path: requests are routed on their normalized path`},
		{"  - {path: /a%2Fb, handler: echo}", `routes[0].path: encoded / or \ in path`},
		{"  - {path: /x, handler: echo}\n  - {path: /y, handler: static, blocking: true}", "routes[1] (/y) static: cannot be both inline and blocking"},
	} {
		cfg := filepath.Join(dir, "routes.yaml")
		if err := os.WriteFile(cfg, []byte("routes:\n"+tt.routes+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := execOutput(bin, "--check-config", "-c", cfg)
		if err == nil || !strings.Contains(out, tt.want) || !strings.Contains(out, "routes.yaml") {
			t.Errorf("%s: %v, %q; want a failure naming the file and %q", tt.routes, err, out, tt.want)
		}
	}
}
