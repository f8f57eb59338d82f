package files_test

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/files"
)

type goExec struct{}

func (goExec) Submit(_ int, t engine.Task) bool { go t.Run(); return true }

const aText = "hello world 0123456789\n"

// tree builds a served root and a sibling directory outside it that
// traversal attempts aim at.
func tree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	files := map[string]string{
		"root/index.html":      "<h1>home</h1>\n",
		"root/a.txt":           aText,
		"root/empty.txt":       "",
		"root/style.css":       "body{}\n",
		"root/.secret":         "dotfile\n",
		"root/.git/config":     "[core]\n",
		"root/sub/b.txt":       "bee\n",
		"root/sub2/index.html": "<p>sub2</p>\n",
		"root/odd/<x>&\"y.txt": "odd\n",
		"outside/secret.txt":   "OUTSIDE SECRET\n",
	}
	for name, content := range files {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	if err := os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("a.txt", filepath.Join(root, "link-in")))
	must(os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "link-out")))
	must(os.Symlink("../outside", filepath.Join(root, "dirlink-out")))
	must(os.Symlink("/etc/passwd", filepath.Join(root, "passwd")))
	must(syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	return root, outside
}

func build(t *testing.T, path string, opts map[string]any) engine.Handler {
	t.Helper()
	h, err := plugins.Build(plugins.Route{Path: path, Handler: "files", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if bh, ok := h.(engine.BlockingHandler); !ok || !bh.Blocking() {
		t.Fatal("the files handler must be a BlockingHandler")
	}
	return h
}

func start(t *testing.T, b loop.Backend, root string) *enginetest.Server {
	t.Helper()
	routes := enginetest.Router(t,
		&engine.Route{Path: "/static/", Handler: build(t, "/static/", map[string]any{"root": root, "cache_control": "public, max-age=60"})},
		&engine.Route{Path: "/list/", Handler: build(t, "/list/", map[string]any{"root": root, "listing": true, "index": ""})},
		&engine.Route{Path: "/strong/", Handler: build(t, "/strong/", map[string]any{"root": root, "etag": "strong", "dotfiles": true})},
	)
	return enginetest.Start(t, b, engine.Config{Router: routes, Loops: 2, Executor: goExec{}})
}

func forBackends(t *testing.T, fn func(t *testing.T, b loop.Backend)) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) { fn(t, b) })
	}
}

func do(t *testing.T, s *enginetest.Server, method, target string, hdrs ...string) *enginetest.Response {
	t.Helper()
	raw := method + " " + target + " HTTP/1.1\r\nHost: h\r\n" + strings.Join(hdrs, "") + "\r\n"
	c := s.Dial(t)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	r, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, target, err)
	}
	return &enginetest.Response{Response: r, Body: body}
}

func TestServesFiles(t *testing.T) {
	root, _ := tree(t)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := start(t, b, root)
		tests := []struct {
			target string
			status int
			body   string
			ctype  string
		}{
			{"/static/a.txt", 200, aText, "text/plain; charset=utf-8"},
			{"/static/style.css", 200, "body{}\n", "text/css; charset=utf-8"},
			{"/static/", 200, "<h1>home</h1>\n", "text/html; charset=utf-8"},
			{"/static/index.html", 200, "<h1>home</h1>\n", "text/html; charset=utf-8"},
			{"/static/sub2/", 200, "<p>sub2</p>\n", "text/html; charset=utf-8"},
			{"/static//sub2//index.html", 200, "<p>sub2</p>\n", "text/html; charset=utf-8"},
			{"/static/link-in", 200, aText, ""},
			{"/static/a%2etxt", 200, aText, "text/plain; charset=utf-8"},
			{"/static/sub/", 404, "", ""}, // no index, listing off
			{"/static/missing.txt", 404, "", ""},
			{"/static/a.txt/x", 404, "", ""},
			{"/static/a.txt/", 404, "", ""}, // a file is not a directory (nginx: 404)
			{"/static/sub2/index.html/", 404, "", ""},
			{"/static/link-in/", 404, "", ""},
			{"/static/./a.txt", 200, aText, ""}, // normalized by the engine: no traversal
			{"/static/sub/../a.txt", 200, aText, ""},
			{"/static/.secret", 404, "", ""},
			{"/static/.git/config", 404, "", ""},
			{"/static/%2esecret", 404, "", ""},
			{"/static/fifo", 404, "", ""},
			{"/strong/.secret", 200, "dotfile\n", ""},
		}
		for _, tt := range tests {
			r := do(t, s, "GET", tt.target)
			if r.StatusCode != tt.status {
				t.Errorf("GET %s: %d, want %d (%q)", tt.target, r.StatusCode, tt.status, r.Body)
				continue
			}
			if tt.status == 200 {
				if string(r.Body) != tt.body {
					t.Errorf("GET %s: body %q, want %q", tt.target, r.Body, tt.body)
				}
				if tt.ctype != "" && r.Header.Get("Content-Type") != tt.ctype {
					t.Errorf("GET %s: Content-Type %q, want %q", tt.target, r.Header.Get("Content-Type"), tt.ctype)
				}
			}
		}
		r := do(t, s, "GET", "/static/a.txt")
		if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=60" {
			t.Errorf("Cache-Control %q", cc)
		}
		if et := r.Header.Get("ETag"); !strings.HasPrefix(et, `W/"`) {
			t.Errorf("ETag %q, want weak", et)
		}
		if _, err := http.ParseTime(r.Header.Get("Last-Modified")); err != nil {
			t.Errorf("Last-Modified %q: %v", r.Header.Get("Last-Modified"), err)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Error("no X-Content-Type-Options: nosniff")
		}
		if r := do(t, s, "GET", "/static/sub2?x=1"); r.StatusCode != 301 || r.Header.Get("Location") != "sub2/?x=1" {
			t.Errorf("directory without slash: %d Location %q, want 301 sub2/?x=1", r.StatusCode, r.Header.Get("Location"))
		}
		if r := do(t, s, "POST", "/static/a.txt", "Content-Length: 0\r\n"); r.StatusCode != 405 || r.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST: %d Allow %q", r.StatusCode, r.Header.Get("Allow"))
		}
		h := do(t, s, "HEAD", "/static/a.txt")
		if h.StatusCode != 200 || h.ContentLength != int64(len(aText)) || len(h.Body) != 0 {
			t.Errorf("HEAD: %d length %d body %q", h.StatusCode, h.ContentLength, h.Body)
		}
		big := do(t, s, "GET", "/static/big.bin")
		if want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10); big.StatusCode != 200 || !bytes.Equal(big.Body, want) {
			t.Errorf("1 MiB file: %d, %d bytes (equal %v)", big.StatusCode, len(big.Body), bytes.Equal(big.Body, want))
		}
	})
}

func TestTraversalRefused(t *testing.T) {
	root, _ := tree(t)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := start(t, b, root)
		for _, target := range []string{
			"/static/../outside/secret.txt",
			"/static/%2e%2e/outside/secret.txt",
			"/static/%2E%2E/outside/secret.txt",
			"/static/.%2e/outside/secret.txt",
			"/static/%2e./outside/secret.txt",
			"/static/sub/..%2f..%2foutside%2fsecret.txt",
			"/static/sub/..%2F..%2Foutside/secret.txt",
			"/static/..%5c..%5coutside%5csecret.txt",
			"/static/%252e%252e/outside/secret.txt",
			"/static/a.txt%00.html",
			"/static/%00",
			"/static/link-out",
			"/static/dirlink-out/secret.txt",
			"/static/passwd",
			"/strong/link-out",
			"/strong/..%2foutside/secret.txt",
		} {
			r := do(t, s, "GET", target)
			if r.StatusCode != 400 && r.StatusCode != 404 {
				t.Errorf("GET %s: %d, want 400 or 404", target, r.StatusCode)
			}
			if bytes.Contains(r.Body, []byte("OUTSIDE")) || bytes.Contains(r.Body, []byte("root:")) {
				t.Errorf("GET %s leaked a file outside the root: %q", target, r.Body)
			}
		}
	})
}

func TestConditionalAndRanges(t *testing.T) {
	root, _ := tree(t)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := start(t, b, root)
		first := do(t, s, "GET", "/static/a.txt")
		etag, lm := first.Header.Get("ETag"), first.Header.Get("Last-Modified")
		tests := []struct {
			name   string
			target string
			hdrs   []string
			status int
			body   string
			crange string // Content-Range wanted, if set
		}{
			{"If-None-Match matches", "/static/a.txt", []string{"If-None-Match: " + etag + "\r\n"}, 304, "", ""},
			{"If-None-Match weak compare", "/static/a.txt", []string{"If-None-Match: \"x\", " + strings.TrimPrefix(etag, "W/") + "\r\n"}, 304, "", ""},
			{"If-None-Match other", "/static/a.txt", []string{"If-None-Match: \"other\"\r\n"}, 200, aText, ""},
			{"If-Modified-Since same", "/static/a.txt", []string{"If-Modified-Since: " + lm + "\r\n"}, 304, "", ""},
			{"If-Modified-Since old", "/static/a.txt", []string{"If-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT\r\n"}, 200, aText, ""},
			{"range", "/static/a.txt", []string{"Range: bytes=0-4\r\n"}, 206, "hello", ""},
			{"suffix range", "/static/a.txt", []string{"Range: bytes=-4\r\n"}, 206, "789\n", ""},
			{"unsatisfiable", "/static/a.txt", []string{"Range: bytes=1000-2000\r\n"}, 416, "", ""},
			{"If-Range weak etag ignores the range", "/static/a.txt", []string{"Range: bytes=0-4\r\nIf-Range: " + etag + "\r\n"}, 200, aText, ""},
			// RFC 9110 §14 edge cases.
			{"suffix of length 0 is unsatisfiable", "/static/a.txt", []string{"Range: bytes=-0\r\n"}, 416, "", "bytes */23"},
			{"suffix of length 0 with leading zeros", "/static/a.txt", []string{"Range: bytes=-000\r\n"}, 416, "", "bytes */23"},
			{"two suffixes of length 0", "/static/a.txt", []string{"Range: bytes=-0, -0\r\n"}, 416, "", "bytes */23"},
			{"suffix of length 0 beside a satisfiable range", "/static/a.txt", []string{"Range: bytes=-0,0-4\r\n"}, 206, "hello", "bytes 0-4/23"},
			{"suffix of length 0 under a failed If-Range", "/static/a.txt", []string{"Range: bytes=-0\r\nIf-Range: \"other\"\r\n"}, 200, aText, ""},
			{"last-pos before first-pos", "/static/a.txt", []string{"Range: bytes=5-2\r\n"}, 416, "", ""},
			{"suffix longer than the file: all of it", "/static/a.txt", []string{"Range: bytes=-100\r\n"}, 206, aText, "bytes 0-22/23"},
			{"last-pos past the end", "/static/a.txt", []string{"Range: bytes=20-100\r\n"}, 206, "89\n", "bytes 20-22/23"},
			{"first-pos at the end", "/static/a.txt", []string{"Range: bytes=23-\r\n"}, 416, "", "bytes */23"},
			{"unit names are case-insensitive", "/static/a.txt", []string{"Range: Bytes=0-4\r\n"}, 206, "hello", "bytes 0-4/23"},
			{"unknown unit is ignored", "/static/a.txt", []string{"Range: items=0-4\r\n"}, 200, aText, ""},
			{"overlapping ranges larger than the file are ignored", "/static/a.txt", []string{"Range: bytes=0-20,1-22\r\n"}, 200, aText, ""},
			{"empty file, suffix", "/static/empty.txt", []string{"Range: bytes=-5\r\n"}, 200, "", ""},
			{"empty file, suffix of length 0", "/static/empty.txt", []string{"Range: bytes=-0\r\n"}, 200, "", ""},
			{"empty file, from 0", "/static/empty.txt", []string{"Range: bytes=0-\r\n"}, 200, "", ""},
		}
		for _, tt := range tests {
			r := do(t, s, "GET", tt.target, tt.hdrs...)
			if r.StatusCode != tt.status || (tt.body != "" && string(r.Body) != tt.body) {
				t.Errorf("%s: %d %q, want %d %q", tt.name, r.StatusCode, r.Body, tt.status, tt.body)
			}
			if cr := r.Header.Get("Content-Range"); tt.crange != "" && cr != tt.crange {
				t.Errorf("%s: Content-Range %q, want %q", tt.name, cr, tt.crange)
			}
			if tt.status == 200 && (tt.body == "" && len(r.Body) != 0 || r.Header.Get("Content-Range") != "") {
				t.Errorf("%s: 200 with body %q, Content-Range %q", tt.name, r.Body, r.Header.Get("Content-Range"))
			}
			if tt.status == 304 && len(r.Body) != 0 {
				t.Errorf("%s: 304 with a body %q", tt.name, r.Body)
			}
		}
		r := do(t, s, "GET", "/static/a.txt", "Range: bytes=0-4\r\n")
		if cr := r.Header.Get("Content-Range"); cr != "bytes 0-4/23" {
			t.Errorf("Content-Range %q", cr)
		}
		// Two ranges: multipart/byteranges.
		r = do(t, s, "GET", "/static/a.txt", "Range: bytes=0-4,6-10\r\n")
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if r.StatusCode != 206 || err != nil || mt != "multipart/byteranges" {
			t.Fatalf("two ranges: %d %q %v", r.StatusCode, r.Header.Get("Content-Type"), err)
		}
		mr := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"])
		var parts []string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(p)
			parts = append(parts, p.Header.Get("Content-Range")+"="+string(data))
		}
		if strings.Join(parts, ";") != "bytes 0-4/23=hello;bytes 6-10/23=world" {
			t.Errorf("parts %q", parts)
		}
		// A strong ETag honours If-Range.
		sr := do(t, s, "GET", "/strong/a.txt")
		strong := sr.Header.Get("ETag")
		if strings.HasPrefix(strong, "W/") || strong == "" {
			t.Fatalf("strong ETag %q", strong)
		}
		if r := do(t, s, "GET", "/strong/a.txt", "Range: bytes=0-4\r\nIf-Range: "+strong+"\r\n"); r.StatusCode != 206 || string(r.Body) != "hello" {
			t.Errorf("If-Range strong: %d %q", r.StatusCode, r.Body)
		}
		// Changing the file changes the validator.
		time.Sleep(10 * time.Millisecond)
		if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte(aText+"more\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := do(t, s, "GET", "/static/a.txt", "If-None-Match: "+etag+"\r\n"); r.StatusCode != 200 || r.Header.Get("ETag") == etag {
			t.Errorf("after a change: %d ETag %q (was %q)", r.StatusCode, r.Header.Get("ETag"), etag)
		}
		os.WriteFile(filepath.Join(root, "a.txt"), []byte(aText), 0o644) //nolint:errcheck
	})
}

func TestListing(t *testing.T) {
	root, _ := tree(t)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := start(t, b, root)
		r := do(t, s, "GET", "/list/")
		body := string(r.Body)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("listing: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
		}
		for _, want := range []string{`<a href="a.txt">a.txt</a>`, `<a href="sub/">sub/</a>`, `<a href="index.html">index.html</a>`} {
			if !strings.Contains(body, want) {
				t.Errorf("listing lacks %q:\n%s", want, body)
			}
		}
		if strings.Contains(body, ".secret") || strings.Contains(body, ".git") {
			t.Errorf("listing shows dotfiles:\n%s", body)
		}
		odd := do(t, s, "GET", "/list/odd/")
		if want := `<a href="%3Cx%3E&amp;%22y.txt">&lt;x&gt;&amp;&#34;y.txt</a>`; !strings.Contains(string(odd.Body), want) {
			t.Errorf("odd names not escaped; want %s in:\n%s", want, odd.Body)
		}
	})
}

func TestOptions(t *testing.T) {
	root, _ := tree(t)
	tests := []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{}, "options.root: required"},
		{map[string]any{"root": filepath.Join(root, "nope")}, "options.root"},
		{map[string]any{"root": filepath.Join(root, "a.txt")}, "is not a directory"},
		{map[string]any{"root": root, "etag": "maybe"}, "options.etag"},
		{map[string]any{"root": root, "index": "../x"}, "options.index"},
		{map[string]any{"root": root, "listing": "yes please"}, "options.listing"},
		{map[string]any{"root": root, "cache_control": "a\nb"}, "options.cache_control"},
		{map[string]any{"root": root, "rot": 1}, `unknown option "rot"`},
	}
	for _, tt := range tests {
		_, err := plugins.Build(plugins.Route{Index: 2, Path: "/f/", Handler: "files", Options: tt.opts})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "routes[2] (/f/)") {
			t.Errorf("%v: %v, want an error naming the route and %q", tt.opts, err, tt.want)
		}
	}
}

// rootFDs counts this process's descriptors open on dir.
func rootFDs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == dir {
			n++
		}
	}
	return n
}

// TestBuildHoldsNoRoot: building a files route, as the supervisor and
// --check-config do on every start and reload without ever provisioning
// or cleaning up, opens nothing; a serving process opens the root in
// Provision and closes it in Cleanup.
func TestBuildHoldsNoRoot(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := plugins.Route{Path: "/f/", Handler: "files", Options: map[string]any{"root": dir}}
	for range 5 {
		if _, err := plugins.Build(r); err != nil {
			t.Fatal(err)
		}
	}
	if n := rootFDs(t, dir); n != 0 {
		t.Fatalf("5 builds left %d descriptors open on the root", n)
	}
	in, err := plugins.NewInstance(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	ins := plugins.Instances{in}
	if err := ins.Provision(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if n := rootFDs(t, dir); n != 1 {
		t.Errorf("after Provision: %d descriptors on the root, want 1", n)
	}
	ins.Cleanup(nil)
	if n := rootFDs(t, dir); n != 0 {
		t.Errorf("after Cleanup: %d descriptors on the root, want 0", n)
	}
}
