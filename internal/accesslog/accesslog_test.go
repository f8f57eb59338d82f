package accesslog

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/internal/metrics"
	"github.com/asyncd/asyncd/loop"
)

func TestCompile(t *testing.T) {
	tests := []struct {
		format  string
		wantErr string // substring; "" means valid
	}{
		{DefaultFormat, ""},
		{`%(h)s %(l)s %(u)s %(t)s "%(r)s" %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(b)s %(f)s %(a)s %(T)s %(D)s %(M)s %(L)s %(p)s`, ""},
		{`%({X-Request-Id}i)s %({content-type}o)s %({REMOTE_ADDR}e)s %({HOME}e)s`, ""},
		{`%(D)d %(s)d 100%%`, ""},
		{`plain text`, ""},
		{``, ""},
		{`%(x)s`, `unknown atom "x"`},
		{`%(host)s`, `unknown atom "host"`},
		{`%(h)`, `%(h) at offset 0 has no conversion`},
		{`%(h)z`, `%(h)z at offset 0: conversion must be s`},
		{`%(a)d`, `%(a)d at offset 0: %d needs a numeric atom`},
		{`a %h`, `"%h" at offset 2`},
		{`%`, `"%" at offset 0`},
		{`%(h`, `unclosed atom`},
		{`%({x}z)s`, `unknown atom "{x}z"`},
		{`%({}i)s`, `empty name`},
	}
	for _, tt := range tests {
		for _, jsonOut := range []bool{false, true} {
			var err error
			if jsonOut {
				_, err = CompileJSON(tt.format)
			} else {
				_, err = Compile(tt.format)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Compile(%q, json=%v): %v", tt.format, jsonOut, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Compile(%q, json=%v) = %v, want an error containing %q", tt.format, jsonOut, err, tt.wantErr)
			}
		}
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text 123 /a?b=c", "plain text 123 /a?b=c"},
		{"a\r\n127.0.0.1 - - fake", `a\x0d\x0a127.0.0.1 - - fake`},
		{`say "hi"`, `say \"hi\"`},
		{`back\slash`, `back\\slash`},
		{"tab\there", `tab\x09here`},
		{"esc\x1b[31m", `esc\x1b[31m`},
		{"nul\x00", `nul\x00`},
		{"del\x7f", `del\x7f`},
		{"caf\xc3\xa9", `caf\xc3\xa9`},
		{"\xff", `\xff`},
	}
	for _, tt := range tests {
		if got := string(appendEscaped(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("appendEscaped(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestJSONString(t *testing.T) {
	for _, in := range []string{"plain", "a\r\nb", `q"uote\`, "caf\xc3\xa9", "bad\xff\xfe", "\x00\x1f\x7f", "ls\u2028ps\u2029", "😀",
		"nel\u0085c1\u0080\u009f", "\u00a0nbsp is text"} {
		out := appendJSONString(nil, []byte(in))
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			t.Errorf("appendJSONString(%q) = %s: not JSON: %v", in, out, err)
			continue
		}
		if i := lineBreak(out); i >= 0 {
			t.Errorf("appendJSONString(%q) = %s contains a raw line break or C1 control at %d", in, out, i)
		}
		// Valid UTF-8 round-trips; invalid bytes come back as their Latin-1 code points.
		want := in
		if in == "bad\xff\xfe" {
			want = "bad\u00ff\u00fe"
		}
		if s != want {
			t.Errorf("appendJSONString(%q) decodes to %q, want %q", in, s, want)
		}
	}
}

func TestBasicUser(t *testing.T) {
	b64 := func(s string) string { return "Basic " + base64std(s) }
	tests := []struct {
		auth string
		want string // "-" for none
	}{
		{b64("alice:secret"), "alice"},
		{b64("bob"), "bob"},
		{b64("carol:pa:ss"), "carol"},
		{"basic " + base64std("dave:x"), "dave"},
		{"BASIC   " + base64std("erin:x") + "  ", "erin"},
		{b64(":nouser"), ""},
		{"Bearer abc", "-"},
		{"Basic !!!", "-"},
		{"Basic", "-"},
		{"Basicx " + base64std("a:b"), "-"},
		{b64("\xff\xfe:x"), "-"},
		{"", "-"},
	}
	var scratch []byte
	for _, tt := range tests {
		got := basicUser([]byte(tt.auth), &scratch)
		gs := "-"
		if got != nil {
			gs = string(got)
		}
		if gs != tt.want {
			t.Errorf("basicUser(%q) = %q, want %q", tt.auth, gs, tt.want)
		}
	}
}

func TestDecimalSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.000000"},
		{1500 * time.Microsecond, "0.001500"},
		{2*time.Second + 7*time.Microsecond, "2.000007"},
		{999999 * time.Microsecond, "0.999999"},
		{61 * time.Second, "61.000000"},
	}
	for _, tt := range tests {
		if got := string(appendDecimalSeconds(nil, tt.d)); got != tt.want {
			t.Errorf("appendDecimalSeconds(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}

// server starts an engine on b with one route "/" served by h and the
// logger as its observer.
func server(t *testing.T, b loop.Backend, l *Logger, h engine.HandlerFunc) *enginetest.Server {
	t.Helper()
	cfg := engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: h}), Loops: 2}
	if l != nil {
		cfg.Observer = l
	}
	return enginetest.Start(t, b, cfg)
}

func forBackends(t *testing.T, fn func(t *testing.T, b loop.Backend)) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) { fn(t, b) })
	}
}

// roundTrip sends raw on a new connection and reads one response.
func roundTrip(t *testing.T, s *enginetest.Server, raw string) *enginetest.Response {
	t.Helper()
	resps, _ := s.Exchange(t, raw, 1)
	if len(resps) != 1 {
		t.Fatalf("got %d responses", len(resps))
	}
	return resps[0]
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// handler answers 201 "hello" with an X-Resp header after sleeping 20ms,
// so that the time atoms have something to measure.
var handler = engine.HandlerFunc(func(c *engine.Ctx) {
	time.Sleep(20 * time.Millisecond)
	c.SetStatus(201)
	c.SetHeader("X-Resp", "out-value")
	c.SetContentType("text/plain")
	c.WriteString("hello") //nolint:errcheck
})

const request = "GET /a%20b/c?x=1&y=%22 HTTP/1.1\r\nHost: example.com:8080\r\n" +
	"Referer: http://ref.example/page\r\nUser-Agent: test-agent/1.0\r\n" +
	"Authorization: Basic YWxpY2U6c2VjcmV0\r\nX-Request-Id: first\r\nX-Request-Id: req-42\r\n\r\n"

// checkTime checks a Gunicorn %(t)s value: local time, within a minute.
func checkTime(t *testing.T, v string) {
	t.Helper()
	ts, err := time.Parse("[02/Jan/2006:15:04:05 -0700]", v)
	if err != nil {
		t.Fatalf("time atom %q: %v", v, err)
	}
	if d := time.Since(ts); d < -time.Minute || d > time.Minute {
		t.Fatalf("time atom %q is %v away from now", v, d)
	}
	_, off := time.Now().Zone()
	if _, got := ts.Zone(); got != off {
		t.Fatalf("time atom %q: offset %d, want local %d", v, got, off)
	}
}

func TestDefaultFormatOverSocket(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		path := filepath.Join(t.TempDir(), "access.log")
		l, err := New(path, DefaultFormat, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s := server(t, b, l, handler)
		if r := roundTrip(t, s, request); r.StatusCode != 201 || string(r.Body) != "hello" {
			t.Fatalf("response %d %q", r.StatusCode, r.Body)
		}
		l.Flush()
		lines := readLines(t, path)
		if len(lines) != 1 {
			t.Fatalf("want 1 line, got %q", lines)
		}
		// h l u t "r" s b "f" "a"
		re := regexp.MustCompile(`^(\S+) (\S+) (\S+) (\[[^\]]+\]) "([^"]*)" (\d+) (\S+) "([^"]*)" "([^"]*)"$`)
		m := re.FindStringSubmatch(lines[0])
		if m == nil {
			t.Fatalf("line %q does not match Gunicorn's default format", lines[0])
		}
		want := map[int]string{
			1: "127.0.0.1",
			2: "-",
			3: "alice",
			5: `GET /a%20b/c?x=1&y=%22 HTTP/1.1`,
			6: "201",
			7: "5",
			8: "http://ref.example/page",
			9: "test-agent/1.0",
		}
		names := map[int]string{1: "h", 2: "l", 3: "u", 5: "r", 6: "s", 7: "b", 8: "f", 9: "a"}
		for i, w := range want {
			if m[i] != w {
				t.Errorf("atom %s = %q, want %q (line %q)", names[i], m[i], w, lines[0])
			}
		}
		checkTime(t, m[4])
	})
}

func TestEveryAtomOverSocket(t *testing.T) {
	format := strings.Join([]string{
		"h=%(h)s", "l=%(l)s", "u=%(u)s", "t=%(t)s", "r=%(r)s", "m=%(m)s", "U=%(U)s", "q=%(q)s",
		"H=%(H)s", "s=%(s)s", "B=%(B)s", "b=%(b)s", "f=%(f)s", "a=%(a)s", "T=%(T)s", "D=%(D)s",
		"M=%(M)s", "L=%(L)s", "p=%(p)s", "i=%({x-request-id}i)s", "I=%({X-MISSING}i)s",
		"o=%({x-resp}o)s", "ct=%({Content-Type}o)s", "O=%({x-none}o)s",
		"ra=%({REMOTE_ADDR}e)s", "rp=%({remote_port}e)s", "sn=%({SERVER_NAME}e)s", "sp=%({SERVER_PORT}e)s",
		"pi=%({PATH_INFO}e)s", "qs=%({QUERY_STRING}e)s", "ru=%({RAW_URI}e)s", "hu=%({HTTP_USER_AGENT}e)s",
		"us=%({wsgi.url_scheme}e)s", "env=%({ASYNCD_ACCESSLOG_TEST}e)s", "none=%({ASYNCD_UNSET_VAR}e)s", "pct=100%%",
	}, "|")
	t.Setenv("ASYNCD_ACCESSLOG_TEST", "from-env")
	forBackends(t, func(t *testing.T, b loop.Backend) {
		path := filepath.Join(t.TempDir(), "access.log")
		l, err := New(path, format, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s := server(t, b, l, handler)
		c := s.Dial(t)
		if _, err := io.WriteString(c, request); err != nil {
			t.Fatal(err)
		}
		if resps, _ := enginetest.ReadResponses(t, c, 1, 5*time.Second); len(resps) != 1 || resps[0].StatusCode != 201 {
			t.Fatalf("responses: %v", resps)
		}
		l.Flush()
		lines := readLines(t, path)
		if len(lines) != 1 {
			t.Fatalf("want 1 line, got %q", lines)
		}
		got := map[string]string{}
		for _, kv := range strings.Split(lines[0], "|") {
			k, v, _ := strings.Cut(kv, "=")
			got[k] = v
		}
		clientPort := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
		want := map[string]string{
			"h": "127.0.0.1", "l": "-", "u": "alice",
			"r": `GET /a%20b/c?x=1&y=%22 HTTP/1.1`, "m": "GET", "U": "/a b/c", "q": "x=1&y=%22", "H": "HTTP/1.1",
			"s": "201", "B": "5", "b": "5", "f": "http://ref.example/page", "a": "test-agent/1.0",
			"T": "0", "p": "<" + strconv.Itoa(os.Getpid()) + ">",
			"i": "req-42", "I": "-", "o": "out-value", "ct": "text/plain", "O": "-",
			"ra": "127.0.0.1", "rp": clientPort, "sn": "example.com", "sp": "8080",
			"pi": "/a b/c", "qs": "x=1&y=%22", "ru": "/a%20b/c?x=1&y=%22", "hu": "test-agent/1.0",
			"us": "http", "env": "from-env", "none": "-", "pct": "100%",
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("atom %s = %q, want %q", k, got[k], w)
			}
		}
		checkTime(t, got["t"])
		d, _ := strconv.ParseInt(got["D"], 10, 64)
		ms, _ := strconv.ParseInt(got["M"], 10, 64)
		sec, err := strconv.ParseFloat(got["L"], 64)
		if err != nil || !regexp.MustCompile(`^\d+\.\d{6}$`).MatchString(got["L"]) {
			t.Errorf("L = %q, want %%d.%%06d", got["L"])
		}
		if d < 20000 || ms < 20 || ms != d/1000 || int64(sec*1e6+0.5) != d {
			t.Errorf("D=%s M=%s L=%s: want the same duration >= 20ms in µs, ms and s", got["D"], got["M"], got["L"])
		}
	})
}

func TestInjectionEscaped(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		path := filepath.Join(t.TempDir(), "access.log")
		l, err := New(path, `%(U)s "%(a)s" "%(f)s" %(u)s %({x-evil}i)s`, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s := server(t, b, l, engine.HandlerFunc(func(c *engine.Ctx) {}))
		user := base64std("ev\"il\r\n:x")
		raw := "GET /x%0D%0A127.0.0.1%20-%20-%20%22GET%20/admin%22%00 HTTP/1.1\r\nHost: h\r\n" +
			"User-Agent: a\"b\\c\td\xff\xc3\xa9\r\nReferer: \t\x80\r\nAuthorization: Basic " + user + "\r\n" +
			"X-Evil: \" - - [forged]\r\n\r\n"
		if r := roundTrip(t, s, raw); r.StatusCode != 200 {
			t.Fatalf("status %d", r.StatusCode)
		}
		l.Flush()
		lines := readLines(t, path)
		if len(lines) != 1 {
			t.Fatalf("one request must give one line, got %d: %q", len(lines), lines)
		}
		want := `/x\x0d\x0a127.0.0.1 - - \"GET /admin\"\x00 "a\"b\\c\x09d\xff\xc3\xa9" "\x80" ev\"il\x0d\x0a \" - - [forged]`
		if lines[0] != want {
			t.Errorf("line\n got %s\nwant %s", lines[0], want)
		}
	})
}

// TestRefusedRequestsOverSocket: requests the engine refuses are logged
// with what is known of them. A request line that did not parse renders
// r, m, U, q, H and RAW_URI as "-" (null in JSON), never as blanks; one
// that parsed, refused for a bad header, keeps its line and the fields
// parsed before the bad one.
func TestRefusedRequestsOverSocket(t *testing.T) {
	const format = `r=%(r)s|m=%(m)s|U=%(U)s|q=%(q)s|H=%(H)s|ru=%({RAW_URI}e)s|s=%(s)s|B=%(B)s|b=%(b)s|a=%(a)s|h=%(h)s`
	forBackends(t, func(t *testing.T, b loop.Backend) {
		dir := t.TempDir()
		text, err := New(filepath.Join(dir, "access.log"), format, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer text.Close()
		js, err := New(filepath.Join(dir, "access.json"), "", true, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer js.Close()
		cfg := engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: handler}), Loops: 1,
			Observer: metrics.Multi(text, js)}
		s := enginetest.Start(t, b, cfg)
		for _, raw := range []string{
			"\x1b[2J\r\n\r\n",
			"GET /p%41th?q=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\nBad Header: x\r\n\r\n",
		} {
			if r := roundTrip(t, s, raw); r.StatusCode != 400 || string(r.Body) != "400 Bad Request\n" {
				t.Fatalf("%q: %d %q", raw, r.StatusCode, r.Body)
			}
		}
		text.Flush()
		js.Flush()
		lines := readLines(t, filepath.Join(dir, "access.log"))
		want := []string{
			"r=-|m=-|U=-|q=-|H=-|ru=-|s=400|B=16|b=16|a=-|h=127.0.0.1",
			"r=GET /p%41th?q=1 HTTP/1.1|m=GET|U=/pAth|q=q=1|H=HTTP/1.1|ru=/p%41th?q=1|s=400|B=16|b=16|a=ua|h=127.0.0.1",
		}
		// A refusal is logged when its connection has closed, so two
		// refused connections may log in either order.
		slices.Sort(lines)
		slices.Sort(want)
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("text lines\n got %q\nwant %q", lines, want)
		}
		jl := readLines(t, filepath.Join(dir, "access.json"))
		if len(jl) != 2 {
			t.Fatalf("JSON lines: %q", jl)
		}
		var garbage, badHeader map[string]any
		if json.Unmarshal([]byte(jl[0]), &garbage) != nil || json.Unmarshal([]byte(jl[1]), &badHeader) != nil {
			t.Fatalf("not JSON: %q", jl)
		}
		if garbage["request"] != nil {
			garbage, badHeader = badHeader, garbage
			jl[0], jl[1] = jl[1], jl[0]
		}
		for _, k := range []string{"request", "method", "path", "query", "protocol", "user_agent"} {
			if v, ok := garbage[k]; !ok || v != nil {
				t.Errorf("refused request line: %s = %#v, want null", k, v)
			}
		}
		if garbage["status"] != 400.0 || garbage["bytes"] != 16.0 || garbage["remote_addr"] != "127.0.0.1" {
			t.Errorf("refused request line: %s", jl[0])
		}
		if badHeader["request"] != "GET /p%41th?q=1 HTTP/1.1" || badHeader["query"] != "q=1" || badHeader["user_agent"] != "ua" {
			t.Errorf("bad header: %s", jl[1])
		}
	})
}

func TestJSONOverSocket(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		path := filepath.Join(t.TempDir(), "access.json")
		l, err := New(path, `%({X-Request-Id}i)s %({x-resp}o)s %({missing}o)s %({REMOTE_ADDR}e)s`, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s := server(t, b, l, handler)
		roundTrip(t, s, request)
		roundTrip(t, s, "HEAD /q%ff?%C3%A9=1 HTTP/1.0\r\nUser-Agent: \"\\ \xc3\xa9\xff\r\n\r\n")
		l.Flush()
		lines := readLines(t, path)
		if len(lines) != 2 {
			t.Fatalf("want 2 lines, got %q", lines)
		}
		var objs []map[string]any
		for _, ln := range lines {
			var m map[string]any
			dec := json.NewDecoder(strings.NewReader(ln))
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("line %q is not JSON: %v", ln, err)
			}
			objs = append(objs, m)
		}
		// Two loops, two shards: lines need not come in request order.
		if objs[0]["method"] != "GET" {
			objs[0], objs[1] = objs[1], objs[0]
			lines[0], lines[1] = lines[1], lines[0]
		}
		for key := range JSONKeys() {
			if _, ok := objs[0][key]; !ok {
				t.Errorf("field %q missing from %s", key, lines[0])
			}
		}
		m := objs[0]
		checks := map[string]any{
			"remote_addr": "127.0.0.1", "ident": nil, "user": "alice",
			"request": `GET /a%20b/c?x=1&y=%22 HTTP/1.1`, "method": "GET", "path": "/a b/c", "query": "x=1&y=%22",
			"protocol": "HTTP/1.1", "status": json.Number("201"), "bytes": json.Number("5"),
			"referer": "http://ref.example/page", "user_agent": "test-agent/1.0", "request_time_s": json.Number("0"),
			"pid": json.Number(strconv.Itoa(os.Getpid())),
		}
		for k, w := range checks {
			if m[k] != w {
				t.Errorf("%s = %#v, want %#v", k, m[k], w)
			}
		}
		if ts, err := time.Parse(time.RFC3339, fmt.Sprint(m["time"])); err != nil || time.Since(ts) > time.Minute {
			t.Errorf("time = %v (%v)", m["time"], err)
		}
		us, _ := m["request_time_us"].(json.Number).Int64()
		if us < 20000 {
			t.Errorf("request_time_us = %d, want >= 20000", us)
		}
		wantObj := func(key string, want map[string]any) {
			got, _ := m[key].(map[string]any)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s = %v, want %v", key, got, want)
			}
		}
		wantObj("request_headers", map[string]any{"x-request-id": "req-42"})
		wantObj("response_headers", map[string]any{"x-resp": "out-value", "missing": nil})
		wantObj("environ", map[string]any{"remote_addr": "127.0.0.1"})

		h := objs[1]
		if h["path"] != "/q\u00ff" || h["query"] != "%C3%A9=1" || h["user_agent"] != "\"\\ é\u00ff" || h["protocol"] != "HTTP/1.0" ||
			h["user"] != nil || h["referer"] != nil || h["bytes"] != json.Number("0") || h["method"] != "HEAD" {
			t.Errorf("second line: %s", lines[1])
		}
	})
}

func TestReopenAfterRename(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		dir := t.TempDir()
		path := filepath.Join(dir, "access.log")
		l, err := New(path, `%(U)s`, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := server(t, b, l, engine.HandlerFunc(func(c *engine.Ctx) {}))
		roundTrip(t, s, "GET /before HTTP/1.1\r\nHost: h\r\n\r\n")
		// logrotate: rename, then signal.
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		if err := l.Reopen(); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readLines(t, path+".1"); len(got) != 1 || got[0] != "/before" {
			t.Errorf("rotated file holds %q, want [/before]", got)
		}
		if got := readLines(t, path); len(got) != 1 || got[0] != "/after" {
			t.Errorf("new file holds %q, want [/after]", got)
		}
		if err := l.Reopen(); err == nil {
			t.Error("Reopen after Close succeeded")
		}
	})
}

func TestReopenFailsOnUnwritablePath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "access.log")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := New(path, DefaultFormat, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Reopen into a removed directory: %v, want an error naming %s", err, path)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New("", DefaultFormat, false, nil); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := New(filepath.Join(t.TempDir(), "no", "such", "dir", "log"), DefaultFormat, false, nil); err == nil {
		t.Error("unopenable path accepted")
	}
	if _, err := New("-", "%(nope)s", false, nil); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("bad format: %v", err)
	}
}

// TestPeriodicFlush checks that a line reaches the file without Flush or
// Close, within a few flush intervals.
func TestPeriodicFlush(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		path := filepath.Join(t.TempDir(), "access.log")
		l, err := New(path, `%(U)s`, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s := server(t, b, l, engine.HandlerFunc(func(c *engine.Ctx) {}))
		roundTrip(t, s, "GET /tick HTTP/1.1\r\nHost: h\r\n\r\n")
		if !enginetest.Eventually(3*time.Second, func() bool {
			data, _ := os.ReadFile(path)
			return string(data) == "/tick\n"
		}) {
			data, _ := os.ReadFile(path)
			t.Fatalf("after 3s the file holds %q", data)
		}
	})
}

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// handlerServer starts an engine whose one route runs fn on the loop, so
// that a test or benchmark gets a real Ctx for the request it sends.
func handlerServer(t testing.TB, b loop.Backend, fn func(c *engine.Ctx)) *enginetest.Server {
	t.Helper()
	cfg := engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: engine.HandlerFunc(fn)}), Loops: 1}
	return enginetest.Start(t, b, cfg)
}

// exchange sends raw on a new connection and waits for one response's
// status line; it is safe to call from any goroutine.
func exchange(addr, raw string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout)) //nolint:errcheck
	if _, err := io.WriteString(c, raw); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 200 ") {
		return fmt.Errorf("response %q", line)
	}
	return nil
}

// TestDropsInsteadOfBlocking fills the queue while the writer is stuck:
// Observe must keep returning, and every line is either written or
// counted as dropped.
func TestDropsInsteadOfBlocking(t *testing.T) {
	b := enginetest.Backends(t)[0]
	w := &blockingWriter{release: make(chan struct{})}
	var errs syncBuffer
	l, err := NewWriter(w, `%(U)s %(a)s`, false, slog.New(slog.NewTextHandler(&errs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	const n = 50000
	s := handlerServer(t, b, func(c *engine.Ctx) {
		for i := 0; i < n; i++ {
			l.Observe(c, time.Millisecond)
		}
	})
	// A stuck writer must not hold the loop: the response arrives.
	if err := exchange(s.Addr, "GET /drop HTTP/1.1\r\nHost: h\r\nUser-Agent: "+strings.Repeat("x", 200)+"\r\n\r\n", 20*time.Second); err != nil {
		t.Fatalf("Observe blocked behind a stuck writer: %v", err)
	}
	if l.Dropped() == 0 {
		t.Fatalf("no line dropped although %d lines (%d bytes) exceed the queue", n, n*207)
	}
	close(w.release)
	l.Close()
	written := uint64(strings.Count(w.buf.String(), "\n"))
	if written != l.Lines() {
		t.Errorf("Lines() = %d but %d lines reached the writer", l.Lines(), written)
	}
	if written+l.Dropped() != n {
		t.Errorf("written %d + dropped %d != observed %d", written, l.Dropped(), n)
	}
	if !strings.Contains(errs.String(), "lines dropped") {
		t.Errorf("no drop warning in the error log: %q", errs.String())
	}
}

// TestConcurrentObserve renders lines from several goroutines at once (as
// several loops do) and checks that every line arrives whole.
func TestConcurrentObserve(t *testing.T) {
	b := enginetest.Backends(t)[0]
	var out syncBuffer
	l, err := NewWriter(&out, `%(U)s %(a)s`, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 2000
	s := handlerServer(t, b, func(c *engine.Ctx) {
		for j := 0; j < each; j++ {
			l.Observe(c, 0)
		}
	})
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ua := strings.Repeat(strconv.Itoa(i), 50)
			errc <- exchange(s.Addr, "GET /w"+strconv.Itoa(i)+" HTTP/1.1\r\nHost: h\r\nUser-Agent: "+ua+"\r\n\r\n", 20*time.Second)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		counts[sc.Text()]++
	}
	if len(counts) != workers {
		t.Fatalf("got %d distinct lines, want %d (torn lines?)", len(counts), workers)
	}
	for i := 0; i < workers; i++ {
		line := "/w" + strconv.Itoa(i) + " " + strings.Repeat(strconv.Itoa(i), 50)
		if counts[line] != each {
			t.Errorf("line %q seen %d times, want %d", line, counts[line], each)
		}
	}
	if l.Dropped() != 0 {
		t.Errorf("%d lines dropped with a fast writer", l.Dropped())
	}
}

func base64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// FuzzEscape checks both escapers on arbitrary bytes: the text form holds
// only printable ASCII, no unescaped '"', and decodes back to the input;
// the JSON form is a valid JSON string without raw line breaks.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "plain", "a\r\nb", `q"\`, "\xff\xc3\xa9\u2028", "\x00\x7f", "\u0085\xc2\x9f\xc2"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := appendEscaped(nil, in)
		var dec []byte
		for i := 0; i < len(out); i++ {
			c := out[i]
			if c < 0x20 || c >= 0x7f {
				t.Fatalf("escaped %q holds byte %#x", out, c)
			}
			if c == '"' {
				t.Fatalf("escaped %q holds an unescaped quote", out)
			}
			if c != '\\' {
				dec = append(dec, c)
				continue
			}
			if i+1 >= len(out) {
				t.Fatalf("escaped %q ends in a lone backslash", out)
			}
			switch out[i+1] {
			case '\\', '"':
				dec = append(dec, out[i+1])
				i++
			case 'x':
				v, err := strconv.ParseUint(string(out[i+2:i+4]), 16, 8)
				if err != nil {
					t.Fatalf("bad \\x in %q", out)
				}
				dec = append(dec, byte(v))
				i += 3
			default:
				t.Fatalf("unknown escape in %q", out)
			}
		}
		if !bytes.Equal(dec, in) {
			t.Fatalf("%q escaped to %q decodes to %q", in, out, dec)
		}
		js := appendJSONString(nil, in)
		var s string
		if err := json.Unmarshal(js, &s); err != nil {
			t.Fatalf("%q gave invalid JSON %s: %v", in, js, err)
		}
		if i := lineBreak(js); i >= 0 {
			t.Fatalf("JSON %s holds a raw line break or C1 control at %d", js, i)
		}
	})
}
