package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/asyncd/asyncd/uripath"
)

// Route is one entry of the routing table.
type Route struct {
	// Path is exact, or a prefix when it ends in "/".
	Path string
	// Methods limits the route to these methods (upper case); empty allows all.
	// GET implies HEAD.
	Methods []string
	// Handler serves the route.
	Handler Handler
	// Blocking routes always run off the event loop, whatever the worker
	// class (Gunicorn's "dirty" workers).
	Blocking bool
	// Inline routes always run on the event loop, whatever the worker
	// class, and are not held back by the off-loop in-flight bound.
	Inline bool
	// Name identifies the route in logs ("routes[2] /api/ (proxy)").
	Name string

	allow     string // the Allow header value for 405 answers
	allowLine string // "Allow: <allow>\r\n", built once: a 405 allocates nothing
}

// Router maps request paths to routes: an exact path wins, then the longest
// prefix route (a path ending in "/"); no match is a 404. It is given the
// normalized path (package uripath), and every route's path must be in
// that form, or it could never match.
type Router struct {
	exact    map[string]*Route
	prefixes []*Route // longest first
}

// NewRouter builds a router. Two routes with the same path are an error.
func NewRouter(routes []*Route) (*Router, error) {
	r := &Router{exact: make(map[string]*Route)}
	seen := map[string]bool{}
	for _, rt := range routes {
		if rt.Path == "" || rt.Path[0] != '/' {
			return nil, fmt.Errorf("route %q: path must start with /", rt.Path)
		}
		if err := CheckRoutePath(rt.Path); err != nil {
			return nil, fmt.Errorf("route %q: %w", rt.Path, err)
		}
		if rt.Handler == nil {
			return nil, fmt.Errorf("route %q: no handler", rt.Path)
		}
		if seen[rt.Path] {
			return nil, fmt.Errorf("route %q: defined twice", rt.Path)
		}
		seen[rt.Path] = true
		if ih, ok := rt.Handler.(InlineHandler); ok && ih.Inline() {
			rt.Inline = true
		}
		if bh, ok := rt.Handler.(BlockingHandler); ok && bh.Blocking() {
			rt.Blocking = true
		}
		if rt.Inline && rt.Blocking {
			return nil, fmt.Errorf("route %q: cannot be both inline and blocking", rt.Path)
		}
		if len(rt.Methods) > 0 {
			ms := append([]string(nil), rt.Methods...)
			for i := range ms {
				ms[i] = strings.ToUpper(ms[i])
			}
			hasGet, hasHead := false, false
			for _, m := range ms {
				hasGet = hasGet || m == "GET"
				hasHead = hasHead || m == "HEAD"
			}
			if hasGet && !hasHead {
				ms = append(ms, "HEAD")
			}
			rt.Methods = ms
			rt.allow = strings.Join(ms, ", ")
			rt.allowLine = "Allow: " + rt.allow + "\r\n"
		}
		if strings.HasSuffix(rt.Path, "/") {
			r.prefixes = append(r.prefixes, rt)
			// "/api/" also answers "/api" exactly unless a route claims it.
		} else {
			r.exact[rt.Path] = rt
		}
	}
	sort.SliceStable(r.prefixes, func(i, j int) bool { return len(r.prefixes[i].Path) > len(r.prefixes[j].Path) })
	return r, nil
}

// CheckRoutePath reports why path cannot be a route's path: requests are
// routed on their normalized path (package uripath), so a route path not
// in that form could never match.
func CheckRoutePath(path string) error {
	norm, err := uripath.Append(nil, []byte(path))
	if err != nil {
		return err
	}
	if string(norm) != path {
		return fmt.Errorf("requests are routed on their normalized path, which is never %q: write %q", path, norm)
	}
	return nil
}

// Match returns the route for path, or nil. It does not allocate.
func (r *Router) Match(path []byte) *Route {
	if rt, ok := r.exact[string(path)]; ok {
		return rt
	}
	for _, rt := range r.prefixes {
		if len(path) >= len(rt.Path) && string(path[:len(rt.Path)]) == rt.Path {
			return rt
		}
	}
	return nil
}

// Routes returns every route, exact ones first.
func (r *Router) Routes() []*Route {
	var out []*Route
	for _, rt := range r.exact {
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return append(out, r.prefixes...)
}

// allows reports whether the route accepts method.
func (rt *Route) allows(method []byte) bool {
	if len(rt.Methods) == 0 {
		return true
	}
	for _, m := range rt.Methods {
		if m == string(method) {
			return true
		}
	}
	return false
}
