package accesslog

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/loop"
)

// lineBreak returns the index of the first rune in b that a line splitter
// may end a record on, or that is a C1 control, or -1. The line ends are
// Python's str.splitlines (\n, \r, \v, \f, \x1c-\x1e, U+0085, U+2028,
// U+2029), a superset of \R in Java, Perl and PCRE.
func lineBreak(b []byte) int {
	for i, r := range string(b) {
		if isLineEnd(r) || r >= 0x80 && r < 0xa0 {
			return i
		}
	}
	return -1
}

func isLineEnd(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// splitLines splits s as Python's str.splitlines does (a CRLF pair is one
// end), dropping a last empty piece: how a log shipper that splits on
// Unicode line ends reads a log.
func splitLines(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		if i < start || !isLineEnd(r) {
			continue
		}
		out = append(out, s[start:i])
		start = i + utf8.RuneLen(r)
		if r == '\r' && strings.HasPrefix(s[start:], "\n") {
			start++
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// TestLineBreakersOverSocket: requests whose path (percent-encoded, so
// decoded into the path field) and User-Agent (raw UTF-8) carry U+0085
// (NEL), the other C1 controls, U+2028 and U+2029 give exactly one record
// per request to a splitter that ends lines on every Unicode line end,
// and each JSON record decodes back to what the client sent. The text log
// gives the same one line per request, the bytes as \xNN.
func TestLineBreakersOverSocket(t *testing.T) {
	const evil = "a\u0085b\u0080c\u009fd\u2028e\u2029f"
	raws := []string{
		"GET /p%C2%85q%C2%9Fr%E2%80%A8s%E2%80%A9t HTTP/1.1\r\nHost: h\r\nUser-Agent: " + evil + "\r\n\r\n",
		"GET /plain HTTP/1.1\r\nHost: h\r\nUser-Agent: " + evil + "\u0085{\"forged\":1}\r\n\r\n",
	}
	wantUA := []string{evil, evil + "\u0085{\"forged\":1}"}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		dir := t.TempDir()
		for _, js := range []bool{true, false} {
			path := filepath.Join(dir, fmt.Sprintf("access-%v.log", js))
			format := DefaultFormat
			if js {
				format = ""
			}
			l, err := New(path, format, js, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := server(t, b, l, engine.HandlerFunc(func(c *engine.Ctx) {}))
			for _, raw := range raws {
				if r := roundTrip(t, s, raw); r.StatusCode != 200 {
					t.Fatalf("status %d", r.StatusCode)
				}
			}
			l.Flush()
			l.Close()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := splitLines(string(data))
			if len(lines) != len(raws) {
				t.Fatalf("json=%v: %d requests gave %d records to a Unicode line splitter: %q", js, len(raws), len(lines), lines)
			}
			if !js {
				for _, ln := range lines {
					if !strings.Contains(ln, `a\xc2\x85b\xc2\x80c\xc2\x9fd\xe2\x80\xa8e\xe2\x80\xa9f`) {
						t.Errorf("text line does not carry the User-Agent as \\xNN: %s", ln)
					}
				}
				continue
			}
			seen := map[string]bool{}
			for _, ln := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(ln), &m); err != nil {
					t.Fatalf("record %q is not JSON: %v", ln, err)
				}
				ua, _ := m["user_agent"].(string)
				seen[ua] = true
				if m["path"] != "/plain" && m["path"] != "/p\u0085q\u009fr\u2028s\u2029t" {
					t.Errorf("path %q", m["path"])
				}
			}
			for _, w := range wantUA {
				if !seen[w] {
					t.Errorf("no record decodes to the User-Agent %q: %q", w, lines)
				}
			}
		}
	})
}
