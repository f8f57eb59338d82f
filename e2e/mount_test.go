package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestMountRoute: `mount: /echo` hands the subtree to one handler with
// every method (/echo itself, every path under /echo/), not a sibling
// sharing the prefix (/echox), and a longer prefix route inside the mount
// wins, as with prefix routes.
func TestMountRoute(t *testing.T) {
	addr := freePort(t)
	run(t, fmt.Sprintf(`
bind: ["%s"]
routes:
  - {mount: /echo, handler: echo}
  - {path: /echo/static/, handler: static, options: {body: static}}
`, addr))
	for _, tt := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/echo", 200, `"path":"/echo"`},
		{"GET", "/echo/", 200, `"path":"/echo/"`},
		{"DELETE", "/echo/users/42", 200, `"method":"DELETE"`},
		{"PATCH", "/echo/a/../b", 200, `"path":"/echo/b"`}, // routed on the normalized path
		{"GET", "/echo/static/x", 200, "static"},
		{"GET", "/echox", 404, ""},
		{"GET", "/a/../echo/x", 200, `"path":"/echo/x"`},
	} {
		r := exchange(t, "", addr, tt.method+" "+tt.path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if r.status != tt.status || !strings.Contains(r.body, tt.body) {
			t.Errorf("%s %s: %d %q; want %d with %q", tt.method, tt.path, r.status, r.body, tt.status, tt.body)
		}
	}
}
