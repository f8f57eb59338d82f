package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/internal/uripath"
)

// Route is one entry of the routing table.
type Route struct {
	// Path is exact, or a prefix when it ends in "/".
	Path string
	// Methods limits the route to these methods (upper case); empty allows all.
	// GET implies HEAD, unless another route on the path names HEAD.
	Methods []string
	// Handler serves the route.
	Handler Handler
	// Blocking routes always run off the event loop, whatever the worker
	// class (Gunicorn's "dirty" workers).
	Blocking bool
	// Inline routes always run on the event loop, whatever the worker
	// class, and are not held back by the off-loop in-flight bound.
	Inline bool
	// StreamBody hands the handler its request body as it arrives
	// (request_buffering: false), instead of buffering one under the body
	// buffer size whole before the handler runs. Such a body goes to a
	// handler off the loop; Inline routes ignore it.
	StreamBody bool
	// Name identifies the route in logs ("routes[2] /api/ (proxy)").
	Name string
	// Mount makes the route a subtree: Path (without a trailing "/",
	// unless it is "/") exactly, and every path under Path + "/". It is
	// the pair of an exact route on Path and a prefix route on Path + "/",
	// with the same handler: the rules for those apply to each half.
	Mount bool
}

// pathRoutes are the routes that share one path, each for its methods.
type pathRoutes struct {
	path    string
	methods []methodRoute // named methods first, then the HEADs GET implies
	any     *Route        // the route without Methods, if there is one
	// allowLine is "Allow: <every method>\r\n" for a 405 (without any),
	// built once: a 405 allocates nothing.
	allowLine string
}

type methodRoute struct {
	method string
	route  *Route
}

// Router maps request paths to routes: an exact path wins, then the longest
// prefix route (a path ending in "/"); no match is a 404. Several routes
// may share a path with different methods (a method no route on the path
// allows is a 405). It is given the normalized path (package uripath),
// and every route's path must be in that form, or it could never match.
type Router struct {
	exact    map[string]*pathRoutes
	prefixes []*pathRoutes // longest first
}

// NewRouter builds a router. Two routes with the same path and a method in
// common (or both without Methods) are an error.
func NewRouter(routes []*Route) (*Router, error) {
	r := &Router{exact: make(map[string]*pathRoutes)}
	byPath := map[string]*pathRoutes{}
	var order []*pathRoutes
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
		if ih, ok := rt.Handler.(InlineHandler); ok && ih.Inline() {
			rt.Inline = true
		}
		if bh, ok := rt.Handler.(BlockingHandler); ok && bh.Blocking() {
			rt.Blocking = true
		}
		if rt.Inline && rt.Blocking {
			return nil, fmt.Errorf("%s: cannot be both inline and blocking (its handler is inline)", rt.label())
		}
		paths := []string{rt.Path}
		if rt.Mount && rt.Path != "/" {
			if strings.HasSuffix(rt.Path, "/") {
				return nil, fmt.Errorf("%s: mount %q: write it without the trailing /", rt.label(), rt.Path)
			}
			paths = append(paths, rt.Path+"/")
		}
		if len(rt.Methods) > 0 {
			ms := make([]string, len(rt.Methods))
			for i, m := range rt.Methods {
				ms[i] = strings.ToUpper(m)
			}
			rt.Methods = ms
		}
		for _, path := range paths {
			pr := byPath[path]
			if pr == nil {
				pr = &pathRoutes{path: path}
				byPath[path] = pr
				order = append(order, pr)
			}
			if err := pr.add(rt, path); err != nil {
				return nil, err
			}
		}
	}
	for _, pr := range order {
		pr.finish()
		if strings.HasSuffix(pr.path, "/") {
			// "/api/" does not answer "/api" (nginx's location /api/ neither);
			// a mount (Route.Mount) claims both.
			r.prefixes = append(r.prefixes, pr)
		} else {
			r.exact[pr.path] = pr
		}
	}
	sort.SliceStable(r.prefixes, func(i, j int) bool { return len(r.prefixes[i].path) > len(r.prefixes[j].path) })
	return r, nil
}

// label names rt in an error: its Name ("routes[2] (/api/) proxy"), or
// its path.
func (rt *Route) label() string {
	if rt.Name != "" {
		return rt.Name
	}
	return fmt.Sprintf("route %q", rt.Path)
}

// add puts rt on pr for its methods, or for every method.
func (pr *pathRoutes) add(rt *Route, path string) error {
	if len(rt.Methods) == 0 {
		if pr.any != nil {
			return fmt.Errorf("%s: path %q defined twice for every method", rt.label(), path)
		}
		pr.any = rt
		return nil
	}
	for _, m := range rt.Methods {
		if pr.lookup(m) != nil {
			return fmt.Errorf("%s: path %q defined twice for method %s", rt.label(), path, m)
		}
		pr.methods = append(pr.methods, methodRoute{m, rt})
	}
	return nil
}

// finish adds the HEADs that GET implies and builds the Allow line.
func (pr *pathRoutes) finish() {
	if get := pr.lookup("GET"); get != nil && pr.lookup("HEAD") == nil {
		pr.methods = append(pr.methods, methodRoute{"HEAD", get})
	}
	if pr.any == nil {
		var allow []string
		for _, mr := range pr.methods {
			if !slices.Contains(allow, mr.method) {
				allow = append(allow, mr.method)
			}
		}
		pr.allowLine = "Allow: " + strings.Join(allow, ", ") + "\r\n"
	}
}

func (pr *pathRoutes) lookup(method string) *Route {
	for _, mr := range pr.methods {
		if mr.method == method {
			return mr.route
		}
	}
	return nil
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

// Match returns the route for path and method. When routes claim the path
// but none allows the method, it returns nil and the Allow line of the
// 405 ("Allow: GET, HEAD\r\n"); when none claims the path, nil and "". It
// does not allocate.
func (r *Router) Match(path, method []byte) (*Route, string) {
	pr, ok := r.exact[string(path)]
	if !ok {
		for _, p := range r.prefixes {
			if len(path) >= len(p.path) && string(path[:len(p.path)]) == p.path {
				pr = p
				break
			}
		}
		if pr == nil {
			return nil, ""
		}
	}
	for _, mr := range pr.methods {
		if mr.method == string(method) {
			return mr.route, ""
		}
	}
	if pr.any != nil {
		return pr.any, ""
	}
	return nil, pr.allowLine
}

// Routes returns every route once, exact paths first (sorted), then the
// prefixes, longest first.
func (r *Router) Routes() []*Route {
	var exact []*pathRoutes
	for _, pr := range r.exact {
		exact = append(exact, pr)
	}
	sort.Slice(exact, func(i, j int) bool { return exact[i].path < exact[j].path })
	var out []*Route
	for _, pr := range append(exact, r.prefixes...) {
		for _, mr := range pr.methods {
			if !slices.Contains(out, mr.route) {
				out = append(out, mr.route)
			}
		}
		if pr.any != nil && !slices.Contains(out, pr.any) {
			out = append(out, pr.any) // a mount is on two paths
		}
	}
	return out
}

var rootPath = []byte("/")

// route picks the request's route; it answers the request itself and
// returns false when there is nothing to dispatch.
func (c *conn) route() bool {
	x := c.ctx
	req := &x.req
	if !req.Chunked && req.ContentLength <= 0 && req.Expect100 {
		req.Expect100 = false // nothing to continue for
	}
	switch req.Form {
	case httpparse.AsteriskForm: // OPTIONS *
		c.answer(200, "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n")
		return false
	case httpparse.AuthorityForm: // CONNECT: asyncd is not a proxy, no tunnel
		x.closeAfter = true
		c.answer(501, "")
		return false
	}
	path, ok := c.normalPath()
	if !ok {
		return false
	}
	rt, allow := c.l.e.cfg.Router.Match(path, req.Method)
	if rt == nil {
		if allow != "" {
			c.answer(405, allow)
		} else {
			c.answer(404, "")
		}
		return false
	}
	x.route = rt
	return true
}

// normalPath returns the path routes, methods and handlers judge
// (uripath), or answers 400 and returns false when it has no normal form.
// An already normal path, the common case, is used in place.
func (c *conn) normalPath() ([]byte, bool) {
	x := c.ctx
	path := x.req.Path
	if len(path) == 0 {
		path = rootPath // absolute-form without a path (RFC 9112 §3.2.2)
	} else if uripath.IsNormal(path) {
		return path, true
	}
	var err error
	x.pathBuf, err = uripath.Append(x.pathBuf[:0], path)
	if err != nil {
		c.answerBadRequest(c.lc.RemoteAddr(), err.Error())
		return nil, false
	}
	x.pathNorm = true
	return x.pathBuf, true
}
