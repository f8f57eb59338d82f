package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The zone the serving process logs in: not UTC, so that %(t)s's offset
// is checked for real.
const testTZ = "Asia/Kolkata"

func loadTestZone(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(testTZ)
	if err != nil {
		t.Fatalf("time zone %s: %v", testTZ, err)
	}
	return loc
}

// checkLogTime checks a %(t)s value ("10/Oct/2000:13:55:36 +0530", without
// the brackets): in testTZ's offset, and between the request's start
// (less a second: the value is rendered once a second) and its end.
func checkLogTime(t *testing.T, v string, before, after time.Time) {
	t.Helper()
	ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", v)
	if err != nil {
		t.Fatalf("%%(t)s %q: %v", v, err)
	}
	_, off := ts.Zone()
	_, want := after.In(loadTestZone(t)).Zone()
	if off != want {
		t.Errorf("%%(t)s %q: offset %d s, want %d s (%s)", v, off, want, testTZ)
	}
	if ts.Before(before.Add(-2*time.Second).Truncate(time.Second)) || ts.After(after.Add(time.Second)) {
		t.Errorf("%%(t)s %q is not the time of the request (%s .. %s)", v, before, after)
	}
}

// gunicornLine is Gunicorn's default access_log_format,
// '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"', with a
// group per atom; quoted values may hold \" and \\ escapes.
var gunicornLine = regexp.MustCompile(`^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\S+) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$`)

func TestAccessLogGunicornDefaultFormat(t *testing.T) {
	addr := freePort(t)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
accesslog: "@DIR@/access.log"
routes:
  - {path: /hello, handler: static, methods: [GET], options: {body: "Hello, World!", content_type: text/plain}}
`, addr), "TZ="+testTZ)
	before := time.Now()
	// A tab, a quote, a backslash and UTF-8 in the user agent: the line
	// must show them escaped, so a client cannot forge or split lines.
	r := exchange(t, "", addr, "GET /hello?x=1 HTTP/1.1\r\nHost: h\r\n"+
		"User-Agent: ua/1.0\t\"q\" \\ caf\xc3\xa9\r\nReferer: http://ref.example/p\r\n"+
		"Authorization: Basic YWxpY2U6c2VjcmV0\r\nConnection: close\r\n\r\n")
	if r.status != 200 || r.body != "Hello, World!" {
		t.Fatalf("GET /hello: %d %q", r.status, r.body)
	}
	if r := exchange(t, "", addr, "GET /hello HTTP/1.0\r\n\r\n"); r.status != 200 {
		t.Fatalf("GET /hello HTTP/1.0: %d", r.status)
	}
	after := time.Now()
	got := lines(t, filepath.Join(p.dir, "access.log"), 2)
	want := [][]string{
		{"127.0.0.1", "-", "alice", "", "GET /hello?x=1 HTTP/1.1", "200", "13", "http://ref.example/p",
			`ua/1.0\x09\"q\" \\ caf\xc3\xa9`},
		{"127.0.0.1", "-", "-", "", "GET /hello HTTP/1.0", "200", "13", "-", "-"},
	}
	atoms := []string{"h", "l", "u", "t", "r", "s", "b", "f", "a"}
	// Lines from different loops may come out of order: pair them by %(r)s.
	seen := map[string]bool{}
	for _, line := range got {
		m := gunicornLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line does not have Gunicorn's default format:\n%s", line)
		}
		var w []string
		for _, cand := range want {
			if cand[4] == m[5] {
				w = cand
			}
		}
		if w == nil || seen[m[5]] {
			t.Fatalf("unexpected line:\n%s", line)
		}
		seen[m[5]] = true
		for j, atom := range atoms {
			if atom == "t" {
				checkLogTime(t, m[j+1], before, after)
				continue
			}
			if m[j+1] != w[j] {
				t.Errorf("%%(%s)s = %q, want %q\n%s", atom, m[j+1], w[j], line)
			}
		}
	}
}

func TestAccessLogEveryAtom(t *testing.T) {
	addr := freePort(t)
	format := `%(h)s|%(l)s|%(u)s|%(t)s|%(r)s|%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(B)s|%(b)s|%(f)s|%(a)s|` +
		`%(T)s|%(D)s|%(M)s|%(L)s|%(p)s|%({x-request-id}i)s|%({content-type}o)s|%({x-extra}o)s|` +
		`%({REQUEST_METHOD}e)s|%({OBS_TEST_ENV}e)s|%({OBS_TEST_UNSET}e)s|%(s)d%%`
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
accesslog: "@DIR@/access.log"
access_log_format: '%s'
routes:
  - {path: /s/, handler: static, options: {body: "Hello, World!", content_type: text/plain, headers: {X-Extra: "yes"}}}
`, addr, format), "TZ="+testTZ, "OBS_TEST_ENV=from-env")
	pid := p.servingPID(1)
	before := time.Now()
	r := exchange(t, "", addr, "GET /s/a%20b?x=1&y=2 HTTP/1.1\r\nHost: h\r\nUser-Agent: t/1\r\n"+
		"Referer: r\r\nX-Request-Id: req-42\r\nAuthorization: Basic Ym9iOnB3\r\nConnection: close\r\n\r\n")
	after := time.Now()
	if r.status != 200 {
		t.Fatalf("GET: %d", r.status)
	}
	line := lines(t, filepath.Join(p.dir, "access.log"), 1)[0]
	f := strings.Split(line, "|")
	names := []string{"h", "l", "u", "t", "r", "m", "U", "q", "H", "s", "B", "b", "f", "a", "T", "D", "M", "L", "p",
		"{x-request-id}i", "{content-type}o", "{x-extra}o", "{REQUEST_METHOD}e", "{OBS_TEST_ENV}e", "{OBS_TEST_UNSET}e", "s as %d"}
	if len(f) != len(names) {
		t.Fatalf("%d fields, want %d:\n%s", len(f), len(names), line)
	}
	want := map[string]string{
		"h": "127.0.0.1", "l": "-", "u": "bob", "r": "GET /s/a%20b?x=1&y=2 HTTP/1.1", "m": "GET", "U": "/s/a b",
		"q": "x=1&y=2", "H": "HTTP/1.1", "s": "200", "B": "13", "b": "13", "f": "r", "a": "t/1",
		"p": fmt.Sprintf("<%d>", pid), "{x-request-id}i": "req-42", "{content-type}o": "text/plain",
		"{x-extra}o": "yes", "{REQUEST_METHOD}e": "GET", "{OBS_TEST_ENV}e": "from-env", "{OBS_TEST_UNSET}e": "-",
		"s as %d": "200%",
	}
	val := map[string]string{}
	for i, n := range names {
		val[n] = f[i]
		if w, ok := want[n]; ok && f[i] != w {
			t.Errorf("%%(%s)s = %q, want %q", n, f[i], w)
		}
	}
	checkLogTime(t, strings.Trim(val["t"], "[]"), before, after)
	if !strings.HasPrefix(val["t"], "[") || !strings.HasSuffix(val["t"], "]") {
		t.Errorf("%%(t)s = %q, want it in brackets", val["t"])
	}
	// The four request times are one duration in four units.
	us, err := strconv.ParseInt(val["D"], 10, 64)
	if err != nil || us <= 0 || us > after.Sub(before).Microseconds() {
		t.Fatalf("%%(D)s = %q: not the request time in µs (the exchange took %s)", val["D"], after.Sub(before))
	}
	if val["M"] != strconv.FormatInt(us/1000, 10) || val["T"] != strconv.FormatInt(us/1e6, 10) ||
		val["L"] != fmt.Sprintf("%d.%06d", us/1e6, us%1e6) {
		t.Errorf("T=%s M=%s L=%s do not match D=%d", val["T"], val["M"], val["L"], us)
	}
}

func TestAccessLogJSON(t *testing.T) {
	addr := freePort(t)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
accesslog: "-"
access_log_json: true
access_log_format: '%%({x-request-id}i)s %%({content-type}o)s %%({OBS_TEST_ENV}e)s'
routes:
  - {path: /hello, handler: static, options: {body: "Hello, World!", content_type: text/plain}}
`, addr), "TZ="+testTZ, "OBS_TEST_ENV=from-env")
	pid := p.servingPID(1)
	r := exchange(t, "", addr, "GET /hello?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: caf\xc3\xa9 \"x\"\r\n"+
		"X-Request-Id: req-42\r\nConnection: close\r\n\r\n")
	if r.status != 200 {
		t.Fatalf("GET: %d", r.status)
	}
	var line string
	eventually(t, "a JSON line on stdout", func() bool {
		line = strings.TrimSpace(p.out())
		return line != ""
	})
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, line)
	}
	want := map[string]any{
		"remote_addr": "127.0.0.1", "ident": nil, "user": nil, "request": "GET /hello?x=1 HTTP/1.1", "method": "GET",
		"path": "/hello", "query": "x=1", "protocol": "HTTP/1.1", "status": 200.0, "bytes": 13.0, "referer": nil,
		"user_agent": "café \"x\"", "pid": float64(pid),
		"request_headers":  map[string]any{"x-request-id": "req-42"},
		"response_headers": map[string]any{"content-type": "text/plain"},
		"environ":          map[string]any{"obs_test_env": "from-env"},
	}
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(got["time"]))
	if _, off := ts.Zone(); err != nil || off != 5*3600+1800 {
		t.Errorf("time %v: %v, want RFC 3339 in %s", got["time"], err, testTZ)
	}
	us, ok := got["request_time_us"].(float64)
	if !ok || us <= 0 || got["request_time"] != us/1e6 || got["request_time_ms"] != float64(int64(us)/1000) {
		t.Errorf("request times %v %v %v disagree", got["request_time"], got["request_time_ms"], got["request_time_us"])
	}
}

func TestAccessLogReopenAfterRename(t *testing.T) {
	addr := freePort(t)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
accesslog: "@DIR@/access.log"
access_log_format: '%%(r)s'
routes:
  - {path: /, handler: static}
`, addr))
	path := filepath.Join(p.dir, "access.log")
	httpGet(t, "http://"+addr+"/before")
	lines(t, path, 1)
	// logrotate: move the file away, then SIGUSR1 to the supervisor.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGUSR1)
	eventually(t, "the access log reopened at its path", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	httpGet(t, "http://"+addr+"/after")
	if got := lines(t, path, 1); len(got) != 1 || got[0] != "GET /after HTTP/1.1" {
		t.Errorf("new file: %q", got)
	}
	if got := lines(t, path+".1", 1); len(got) != 1 || got[0] != "GET /before HTTP/1.1" {
		t.Errorf("renamed file: %q", got)
	}
	p.signal(syscall.SIGTERM)
	p.exited()
}

func TestAccessLogBadFormatRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "asyncd.yaml")
	os.WriteFile(cfg, []byte("access_log_format: '%(h)s %(nope)s'\n"), 0o644) //nolint:errcheck
	out, err := execOutput(asyncdBinary(t), "--check-config", "-c", cfg)
	if err == nil || !strings.Contains(out, "access_log_format") || !strings.Contains(out, `"nope"`) ||
		!strings.Contains(out, "asyncd.yaml") {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
}

// TestAccessLogEveryResponse: every response the real binary sends gets
// exactly one access-log line in Gunicorn's default format and is counted
// in /metrics, whoever answered it: the router (404, 405), the parser (a
// malformed request line, a bad header after a good one), header_timeout
// (408), and a route whose response is streamed (chunked, through the
// proxy plugin). A refused request shows its request line only if it
// parsed, else "-". %(b)s is the body the client received, and the
// response-bytes counter every byte it received. Forged log lines (CR/LF
// in the request line, quotes in a header) stay inside one escaped line.
func TestAccessLogEveryResponse(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "chunk%d;", i)
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	}))
	defer upstream.Close()
	addr, maddr := freePort(t), freePort(t)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
header_timeout: 1s
metrics_bind: "%s"
accesslog: "@DIR@/access.log"
routes:
  - {path: /hello, handler: static, methods: [GET], options: {body: "Hello, World!"}}
  - {path: /api/, handler: proxy, options: {upstream: "%s", strip_prefix: true}}
`, addr, maddr, upstream.URL), "TZ="+testTZ)
	const closing = "Connection: close\r\n"
	exchanges := []struct {
		name, raw string
		status    int
		r, ua     string // %(r)s and %(a)s as logged
	}{
		{"404", "GET /nope?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua-404\r\n" + closing + "\r\n", 404,
			"GET /nope?x=1 HTTP/1.1", "ua-404"},
		{"405", "POST /hello HTTP/1.1\r\nHost: h\r\nUser-Agent: ua-405\r\nContent-Length: 0\r\n" + closing + "\r\n", 405,
			"POST /hello HTTP/1.1", "ua-405"},
		{"400 malformed request line", "GARBAGE\r\n\r\n", 400, "-", "-"},
		{"400 bad header after a good request line", "GET /hello?bad=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua-400\r\n" +
			"Bad Header: x\r\n\r\n", 400, "GET /hello?bad=1 HTTP/1.1", "ua-400"},
		{"408 header timeout", "GET /hello?slow=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua-408\r\n", 408,
			"GET /hello?slow=1 HTTP/1.1", "-"}, // the fields of an unfinished head are not kept
		{"streamed", "GET /api/stream HTTP/1.1\r\nHost: h\r\nUser-Agent: ua-stream\r\n" + closing + "\r\n", 200,
			"GET /api/stream HTTP/1.1", "ua-stream"},
		// A whole forged line after a CRLF in the request line: the parser
		// refuses "GET /x" (no version), and the rest is never read.
		{"forged line in the request line", "GET /x\r\n127.0.0.1 - - [01/Jan/2026:00:00:00 +0000] \"GET /admin HTTP/1.1\" 200 0 \"-\" \"-\"\r\n\r\n",
			400, "-", "-"},
		// Quotes closing the field early, in a refused request's header.
		{"forged fields in a header", "GET /hello?forge=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: x\" 200 0 \"-\" \"forged\xff\r\n" +
			"Bad Header: y\r\n\r\n", 400, "GET /hello?forge=1 HTTP/1.1", `x\" 200 0 \"-\" \"forged\xff`},
		// Encoded CR/LF in a target that parsed: %(r)s shows it as sent.
		{"encoded CRLF in the target", "GET /x%0D%0A%22forged HTTP/1.1\r\nHost: h\r\n" + closing + "\r\n", 404,
			"GET /x%0D%0A%22forged HTTP/1.1", "-"},
	}
	type logged struct{ r, s, b, a string }
	want := map[logged]int{}
	var wireBytes int
	before := time.Now()
	for _, x := range exchanges {
		wire, resp, body := rawExchange(t, addr, x.raw)
		if resp.StatusCode != x.status {
			t.Fatalf("%s: status %d, want %d", x.name, resp.StatusCode, x.status)
		}
		if x.name == "streamed" && (len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" ||
			body != "chunk0;chunk1;chunk2;") {
			t.Fatalf("streamed: %v %q, want a chunked stream", resp.TransferEncoding, body)
		}
		wireBytes += len(wire)
		want[logged{x.r, strconv.Itoa(x.status), strconv.Itoa(len(body)), x.ua}]++
	}
	after := time.Now()

	path := filepath.Join(p.dir, "access.log")
	lines(t, path, len(exchanges))
	time.Sleep(500 * time.Millisecond) // a duplicate would be written by now
	got := lines(t, path, len(exchanges))
	if len(got) != len(exchanges) {
		t.Fatalf("%d lines for %d responses:\n%s", len(got), len(exchanges), strings.Join(got, "\n"))
	}
	for _, line := range got {
		m := gunicornLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line does not have Gunicorn's default format:\n%s", line)
		}
		if m[1] != "127.0.0.1" || m[2] != "-" || m[3] != "-" || m[8] != "-" {
			t.Errorf("h l u f: %q %q %q %q\n%s", m[1], m[2], m[3], m[8], line)
		}
		checkLogTime(t, m[4], before, after)
		k := logged{m[5], m[6], m[7], m[9]}
		if want[k] == 0 {
			t.Errorf("unexpected line (r, s, b, a = %q):\n%s", k, line)
			continue
		}
		want[k]--
	}
	for k, n := range want {
		if n > 0 {
			t.Errorf("no line with r, s, b, a = %q", k)
		}
	}

	m := scrape(t, "http://"+maddr+"/metrics")
	checkSamples(t, m, map[string]float64{
		`asyncd_http_requests_total{method="GET",code="2xx"}`:   1,
		`asyncd_http_requests_total{method="GET",code="4xx"}`:   5, // 404, 400, 408, forged header, encoded CRLF
		`asyncd_http_requests_total{method="POST",code="4xx"}`:  1,
		`asyncd_http_requests_total{method="other",code="4xx"}`: 2, // the request lines that did not parse
		`asyncd_http_request_duration_seconds_count`:            float64(len(exchanges)),
		`asyncd_http_rejected_requests_total{code="400"}`:       4,
		`asyncd_http_response_bytes_total`:                      float64(wireBytes),
	})
}
