package engine_test

import (
	"strings"
	"testing"

	"github.com/asyncd/asyncd/engine"
)

func TestRouterMatch(t *testing.T) {
	h := engine.HandlerFunc(func(*engine.Ctx) {})
	get := &engine.Route{Path: "/x", Methods: []string{"get"}, Handler: h}
	post := &engine.Route{Path: "/x", Methods: []string{"POST", "PUT"}, Handler: h}
	head := &engine.Route{Path: "/h", Methods: []string{"HEAD"}, Handler: h}
	hget := &engine.Route{Path: "/h", Methods: []string{"GET"}, Handler: h}
	anyAPI := &engine.Route{Path: "/api/", Handler: h}
	delAPI := &engine.Route{Path: "/api/", Methods: []string{"DELETE"}, Handler: h}
	admin := &engine.Route{Path: "/api/admin/", Methods: []string{"GET"}, Handler: h}
	r, err := engine.NewRouter([]*engine.Route{get, post, head, hget, anyAPI, delAPI, admin})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		want         *engine.Route
		allow        string
	}{
		{"GET", "/x", get, ""},
		{"HEAD", "/x", get, ""}, // GET implies HEAD
		{"POST", "/x", post, ""},
		{"PUT", "/x", post, ""},
		{"DELETE", "/x", nil, "Allow: GET, POST, PUT, HEAD\r\n"},
		{"get", "/x", nil, "Allow: GET, POST, PUT, HEAD\r\n"}, // methods are case-sensitive
		{"HEAD", "/h", head, ""},                              // a route naming HEAD wins over GET's
		{"GET", "/h", hget, ""},
		{"GET", "/api/users", anyAPI, ""},
		{"DELETE", "/api/users", delAPI, ""},
		{"GET", "/api/admin/x", admin, ""},
		{"POST", "/api/admin/x", nil, "Allow: GET, HEAD\r\n"}, // the longest prefix decides
		{"GET", "/nope", nil, ""},
	}
	for _, tt := range tests {
		got, allow := r.Match([]byte(tt.path), []byte(tt.method))
		if got != tt.want || allow != tt.allow {
			t.Errorf("%s %s: route %v, %q; want %v, %q", tt.method, tt.path, got, allow, tt.want, tt.allow)
		}
	}
	if n := len(r.Routes()); n != 7 {
		t.Errorf("Routes: %d, want 7", n)
	}
}

// TestRouterMount: a mount is the subtree: its path exactly and every path
// under it, every method, not a sibling sharing the prefix; longer exact
// and prefix routes inside it win, as with prefix routes, and a route
// naming methods on the mount's own path takes those methods.
func TestRouterMount(t *testing.T) {
	h := engine.HandlerFunc(func(*engine.Ctx) {})
	users := &engine.Route{Path: "/users", Mount: true, Handler: h}
	me := &engine.Route{Path: "/users/me", Handler: h}
	admin := &engine.Route{Path: "/users/admin/", Handler: h}
	postUsers := &engine.Route{Path: "/users", Methods: []string{"POST"}, Handler: h}
	root := &engine.Route{Path: "/", Mount: true, Handler: h}
	r, err := engine.NewRouter([]*engine.Route{users, me, admin, postUsers, root})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path string
		want         *engine.Route
	}{
		{"GET", "/users", users},
		{"DELETE", "/users", users},
		{"POST", "/users", postUsers},
		{"GET", "/users/", users},
		{"PATCH", "/users/42", users},
		{"GET", "/users/42/posts", users},
		{"GET", "/users/me", me},
		{"GET", "/users/admin/x", admin},
		{"GET", "/usersx", root}, // a sibling, not under /users
		{"GET", "/", root},
		{"GET", "/anything", root},
	} {
		if got, allow := r.Match([]byte(tt.path), []byte(tt.method)); got != tt.want || allow != "" {
			t.Errorf("%s %s: route %v %q; want %v", tt.method, tt.path, got, allow, tt.want)
		}
	}
	if n := len(r.Routes()); n != 5 {
		t.Errorf("Routes: %d, want 5 (a mount once)", n)
	}
	for _, tt := range []struct {
		routes []*engine.Route
		want   string
	}{
		{[]*engine.Route{{Path: "/users", Mount: true, Handler: h}, {Path: "/users/", Handler: h}}, `path "/users/" defined twice for every method`},
		{[]*engine.Route{{Path: "/users/", Mount: true, Handler: h}}, "without the trailing /"},
	} {
		if _, err := engine.NewRouter(tt.routes); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want an error with %q", tt.routes[0].Path, err, tt.want)
		}
	}
}

func TestRouterRefuses(t *testing.T) {
	h := engine.HandlerFunc(func(*engine.Ctx) {})
	for _, tt := range []struct {
		routes []*engine.Route
		want   string
	}{
		{[]*engine.Route{{Path: "/a", Handler: h}, {Path: "/a", Handler: h}}, "defined twice for every method"},
		{[]*engine.Route{{Path: "/a", Methods: []string{"GET"}, Handler: h}, {Path: "/a", Methods: []string{"POST", "get"}, Handler: h}}, "defined twice for method GET"},
		{[]*engine.Route{{Path: "a", Handler: h}}, "must start with /"},
		{[]*engine.Route{{Path: "/a//b/", Handler: h}}, `write "/a/b/"`},
		{[]*engine.Route{{Path: "/%7euser/", Handler: h}}, `write "/~user/"`},
		{[]*engine.Route{{Path: "/a/../b", Handler: h}}, `write "/b"`},
		{[]*engine.Route{{Path: "/a%2Fb", Handler: h}}, "encoded / or"},
		{[]*engine.Route{{Path: "/a"}}, "no handler"},
	} {
		if _, err := engine.NewRouter(tt.routes); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want an error with %q", tt.routes[0].Path, err, tt.want)
		}
	}
}
