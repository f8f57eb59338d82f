package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/asyncd/asyncd/internal/allowlist"
)

// Validate checks every setting's value and the routes' structure. It
// returns nil or Errors: every problem, each an *Error naming the key and
// where its value came from, in the order of the sources. Load calls it;
// call it again after changing a Config by hand.
func (c *Config) Validate() error {
	var p problems
	v := reflect.ValueOf(c).Elem()
	for i := range settings {
		s := &settings[i]
		if s.Field == "" || s.check == nil {
			continue
		}
		if err := s.check(v.FieldByName(s.Field).Interface()); err != nil {
			e := keyError(c.Source[s.Key], s.Key, err.Error())
			e.Err = err
			p.add(e)
		}
	}
	for _, e := range c.validateRoutes() {
		p.add(e)
	}
	return p.err()
}

func intMin(min int) func(any) error {
	return func(v any) error {
		if n := v.(int); n < min {
			return fmt.Errorf("must be >= %d, got %d", min, n)
		}
		return nil
	}
}

func intRange(min, max int) func(any) error {
	return func(v any) error {
		if n := v.(int); n < min || n > max {
			return fmt.Errorf("must be between %d and %d, got %d", min, max, n)
		}
		return nil
	}
}

func durMin(min time.Duration) func(any) error {
	return func(v any) error {
		if d := v.(time.Duration); d < min {
			m := formatDuration(min)
			if min == 0 {
				m = "0"
			}
			return fmt.Errorf("must be >= %s, got %s", m, formatDuration(d))
		}
		return nil
	}
}

func durPositive(v any) error {
	if d := v.(time.Duration); d <= 0 {
		return fmt.Errorf("must be > 0, got %s", formatDuration(d))
	}
	return nil
}

func sizeMin(min int64) func(any) error {
	return func(v any) error {
		if n := v.(int64); n < min {
			return fmt.Errorf("must be >= %d, got %s", min, formatSize(n))
		}
		return nil
	}
}

func modeMax(max int64) func(any) error {
	return func(v any) error {
		n := reflect.ValueOf(v).Convert(reflect.TypeOf(int64(0))).Int()
		if n < 0 || n > max {
			return fmt.Errorf("must be between 0000 and %04o, got %s", max, formatMode(n))
		}
		return nil
	}
}

func checkEnum(choices ...string) func(any) error {
	return func(v any) error {
		s := reflect.ValueOf(v).String()
		for _, c := range choices {
			if s == c {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s, got %q", strings.Join(choices, ", "), s)
	}
}

func checkWorkerClass(v any) error {
	if w := v.(WorkerClass); w.Normalized() == "" {
		return fmt.Errorf("must be one of sync, async, gthread (or Gunicorn's gevent, eventlet, tornado, uvicorn), got %q", string(w))
	}
	return nil
}

// checkFieldValue accepts what may follow "Server: " on a response line:
// visible characters and inner spaces, nothing that could split the header.
func checkFieldValue(v any) error {
	s := v.(string)
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Errorf("must not contain control characters, got %q", s)
		}
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("must not start or end with spaces, got %q", s)
	}
	return nil
}

// checkAccount accepts a user or group name or a numeric id (looked up when
// asyncd starts): no spaces, colons, slashes or control characters.
func checkAccount(v any) error {
	s := v.(string)
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || r == ':' || r == '/' }) {
		return fmt.Errorf("%q is not a user or group name or id", s)
	}
	return nil
}

func checkRawEnv(v any) error {
	for i, e := range v.([]string) {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.ContainsRune(e, 0) {
			return fmt.Errorf("item %d must be KEY=VALUE, got %q", i, e)
		}
	}
	return nil
}

func checkSchemeHeaders(v any) error {
	for k, val := range v.(map[string]string) {
		if !isToken(k) {
			return fmt.Errorf("%q is not a header name", k)
		}
		if val == "" {
			return fmt.Errorf("%s: value must not be empty", k)
		}
	}
	return nil
}

func checkAllowList(v any) error {
	_, err := allowlist.Parse(v.([]string))
	return err
}

func checkBinds(v any) error {
	list := v.([]string)
	if len(list) == 0 {
		return errors.New("must name at least one address")
	}
	seen := make(map[string]int, len(list))
	for i, s := range list {
		a, err := ParseBind(s)
		if err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
		if j, dup := seen[a.String()]; dup && !(a.Network == "tcp" && a.Port == 0) {
			return fmt.Errorf("item %d: %q is already item %d", i, s, j)
		}
		seen[a.String()] = i
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token (method, header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validateRoutes returns the problems of every route, in order.
func (c *Config) validateRoutes() []*Error {
	src := c.Source["routes"]
	type slot struct{ path, method string }
	seen := map[slot]int{}
	var errs []*Error
	for i, r := range c.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		pathAt := at + "." + r.PathKey()
		switch {
		case !strings.HasPrefix(r.Path, "/"):
			errs = append(errs, keyError(src, pathAt, fmt.Sprintf("must start with \"/\", got %q", r.Path)))
		case strings.ContainsAny(r.Path, "?#"):
			errs = append(errs, keyError(src, pathAt, fmt.Sprintf("must not contain a query or fragment, got %q", r.Path)))
		case strings.IndexFunc(r.Path, func(c rune) bool { return c <= ' ' || c == 0x7f }) >= 0:
			errs = append(errs, keyError(src, pathAt, fmt.Sprintf("must not contain spaces or control characters, got %q", r.Path)))
		case strings.ContainsAny(r.Path, "{}"):
			errs = append(errs, keyError(src, pathAt, wildcardMsg(r.Path)))
		case r.Mount && r.Path != "/" && strings.HasSuffix(r.Path, "/"):
			errs = append(errs, keyError(src, pathAt, fmt.Sprintf("write the mount without the trailing /: %q covers %q and every path under %q",
				strings.TrimRight(r.Path, "/"), strings.TrimRight(r.Path, "/"), r.Path)))
		}
		if strings.TrimSpace(r.Handler) == "" {
			errs = append(errs, keyError(src, at+".handler", "must name a handler"))
		}
		if r.Mount && len(r.Methods) > 0 {
			errs = append(errs, keyError(src, at+".methods", "a mount hands every method to its handler (which answers 405 itself): drop methods, or route with path:"))
		}
		methods := r.Methods
		if len(methods) == 0 {
			methods = []string{""} // every method
		}
		paths := []string{r.Path}
		if r.Mount && r.Path != "/" {
			paths = append(paths, r.Path+"/") // a mount is an exact and a prefix route
		}
		for j, m := range methods {
			if m != "" && !isToken(m) {
				errs = append(errs, keyError(src, fmt.Sprintf("%s.methods[%d]", at, j), fmt.Sprintf("not an HTTP method: %q", m)))
				continue
			}
			for _, p := range paths {
				k := slot{p, m}
				if prev, dup := seen[k]; dup {
					what := "method " + m
					if m == "" {
						what = "every method"
					}
					errs = append(errs, keyError(src, at, fmt.Sprintf("path %q, %s: already routed by routes[%d]", p, what, prev)))
					continue
				}
				seen[k] = i
			}
		}
	}
	return errs
}

// wildcardMsg explains why a route path with a ServeMux wildcard
// ("/users/{id}") is refused: routes match paths literally, and would
// answer 404 to every request.
func wildcardMsg(path string) string {
	root := path
	if i := strings.Index(path, "{"); i >= 0 {
		root = strings.TrimRight(path[:i], "/")
	}
	if root == "" {
		root = "/"
	}
	return fmt.Sprintf("%q: routes match paths literally, not as ServeMux patterns ({name} segments), so this would answer 404 to every request: "+
		"route the subtree with `mount: %s` and let the handler's http.ServeMux match the pattern", path, root)
}

// BindAddr is one parsed bind address.
type BindAddr struct {
	Network string // "tcp", "unix" or "fd"
	Host    string // tcp: host or IP, "" = every interface (brackets removed)
	Port    int    // tcp: 0..65535, 0 = a free port
	Path    string // unix: the path; a leading "@" names an abstract socket
	FD      int    // fd: the inherited descriptor
}

// String renders the address in bind syntax.
func (a BindAddr) String() string {
	switch a.Network {
	case "unix":
		return "unix:" + a.Path
	case "fd":
		return "fd://" + strconv.Itoa(a.FD)
	}
	return net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
}

// maxUnixPath is sun_path's size less the terminating NUL.
const maxUnixPath = 107

// ParseBind parses one bind address: HOST:PORT, [IPv6]:PORT, :PORT,
// unix:PATH (also unix://PATH) or fd://FD.
func ParseBind(s string) (BindAddr, error) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(strings.TrimPrefix(s, "unix:"), "//")
		if p == "" || p == "@" {
			return BindAddr{}, fmt.Errorf("%q: empty socket path", s)
		}
		if len(p) > maxUnixPath {
			return BindAddr{}, fmt.Errorf("%q: socket path longer than %d bytes", s, maxUnixPath)
		}
		if strings.IndexByte(p, 0) >= 0 {
			return BindAddr{}, fmt.Errorf("%q: socket path contains a NUL byte", s)
		}
		return BindAddr{Network: "unix", Path: p}, nil
	case strings.HasPrefix(s, "fd://"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "fd://"))
		if err != nil || n < 0 {
			return BindAddr{}, fmt.Errorf("%q: fd:// needs a descriptor number, e.g. fd://3", s)
		}
		return BindAddr{Network: "fd", FD: n}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
			return BindAddr{}, fmt.Errorf("%q: write IPv6 addresses in brackets, e.g. [::1]:8000", s)
		}
		if !strings.Contains(s, ":") {
			// The example is quoted as the value is: a control character in
			// it must not break the one-line error.
			eg := strconv.Quote(s + ":8000")
			return BindAddr{}, fmt.Errorf("%q: missing port, e.g. %s", s, eg[1:len(eg)-1])
		}
		return BindAddr{}, fmt.Errorf("%q: not HOST:PORT, [IPv6]:PORT, :PORT, unix:PATH or fd://FD", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || port[0] == '+' || port[0] == '-' {
		return BindAddr{}, fmt.Errorf("%q: port must be a number from 0 to 65535", s)
	}
	if host != "" {
		if strings.HasPrefix(s, "[") {
			if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() {
				return BindAddr{}, fmt.Errorf("%q: %q is not an IPv6 address", s, host)
			}
		} else if _, err := netip.ParseAddr(host); err != nil && !isHostname(host) {
			return BindAddr{}, fmt.Errorf("%q: %q is not a host name or IP address (for every interface write :%s)", s, host, port)
		}
	}
	return BindAddr{Network: "tcp", Host: host, Port: p}, nil
}

func isHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// BindAddrs parses c.Bind (which Validate has checked).
func (c *Config) BindAddrs() ([]BindAddr, error) {
	out := make([]BindAddr, 0, len(c.Bind))
	for _, s := range c.Bind {
		a, err := ParseBind(s)
		if err != nil {
			return nil, fmt.Errorf("bind: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}
