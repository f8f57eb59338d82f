package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestForwardedHeadersInBinary: through the real binary, a trusted proxy's
// X-Forwarded-For and X-Forwarded-Proto lines appended after the client's
// own (HAProxy's option forwardfor adds a separate line) decide the
// address and scheme the access log shows. With forwarded_allow_ips '*'
// asyncd warns once at start, naming the setting and the file; the
// serving process does not repeat it.
func TestForwardedHeadersInBinary(t *testing.T) {
	for _, tc := range []struct {
		name, allow string
		warns       bool
		want        string // %(h)s %({wsgi.url_scheme}e)s
	}{
		{"the default, 127.0.0.1 trusted", "", false, "203.0.113.7 http"},
		{"'*'", "forwarded_allow_ips: '*'\n", true, "6.6.6.6 https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := freePort(t)
			p := run(t, fmt.Sprintf(`
bind: ["%s"]
accesslog: "@DIR@/access.log"
access_log_format: '%%(h)s %%({wsgi.url_scheme}e)s'
%sroutes:
  - {path: /, handler: static, options: {body: "ok"}}
`, addr, tc.allow))
			r := exchange(t, "", addr, "GET / HTTP/1.1\r\nHost: h\r\n"+
				"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"+ // the client's own
				"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: http\r\n"+ // the proxy's
				"Connection: close\r\n\r\n")
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			if got := lines(t, filepath.Join(p.dir, "access.log"), 1)[0]; got != tc.want {
				t.Errorf("access log %q, want %q", got, tc.want)
			}
			cfg := filepath.Join(p.dir, "asyncd.yaml")
			n := strings.Count(p.log(), "config: "+cfg+":5: forwarded_allow_ips: '*' trusts")
			if n != map[bool]int{true: 1, false: 0}[tc.warns] || strings.Contains(p.log(), "/dev/fd/") {
				t.Errorf("%d warnings naming %s (want warns=%v), error log:\n%s", n, cfg, tc.warns, p.log())
			}
		})
	}
}
