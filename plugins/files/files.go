// Package files is the "files" handler plugin: it serves a directory
// tree. Conditional requests (ETag, If-None-Match, Last-Modified,
// If-Modified-Since, If-Range), byte ranges (206, multipart for several)
// and Content-Type come from net/http's ServeContent, run through
// engine.HTTPHandler.
//
// The path it is given is the engine's normalized one (package uripath:
// dot segments resolved, slashes merged, an encoded '/' or '\' already a
// 400), so "/static/./a.txt" is a.txt. Containment is still enforced
// twice: a path with a "..", "." or NUL segment, or an encoded '/' or
// '\', is refused before any file system access, and every file is
// opened through an os.Root, which refuses any path, symlinks included,
// that resolves outside root. Names starting with '.' are hidden unless
// dotfiles is set; directories are listed only with listing: true; a file
// asked for as a directory ("/a.txt/") is 404, as for nginx. Range
// requests follow RFC 9110 §14 where ServeContent does not (fixRange).
//
// The handler is an engine.BlockingHandler: disk reads never run on the
// event loop. The engine has no sendfile path yet, so file bytes are read
// into memory and written by the loop (docs/observability.md, known gaps).
// It owns only its handler and options.
package files

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/plugins"
)

// Options are the route options of the files plugin.
type Options struct {
	// Root is the directory served; it must exist.
	Root string `option:"root"`
	// Index is the file served for a directory (default index.html; ""
	// serves none).
	Index string `option:"index"`
	// Listing lists directories that have no index file (default false:
	// 404).
	Listing bool `option:"listing"`
	// CacheControl is sent as Cache-Control with every file (default none).
	CacheControl string `option:"cache_control"`
	// ETag is "weak" (default), "strong", or "off". Both are built from
	// the file's size and modification time.
	ETag string `option:"etag"`
	// Dotfiles serves names starting with '.' (default false: 404).
	Dotfiles bool `option:"dotfiles"`
	// StripPrefix removes the route's path from the request path before
	// looking the file up (default true: /static/css/a.css under route
	// /static/ is root/css/a.css).
	StripPrefix bool `option:"strip_prefix"`
}

func init() { plugins.Register("files", New) }

// New builds a files handler from a route's options.
func New(r plugins.Route) (engine.Handler, error) {
	o := Options{Index: "index.html", ETag: "weak", StripPrefix: true}
	if err := plugins.Decode(r.Options, &o); err != nil {
		return nil, err
	}
	h, err := newHandler(r.Path, o)
	if err != nil {
		return nil, err
	}
	h.log = r.Context().Logger
	return &blocking{Handler: engine.HTTPHandler(h), h: h}, nil
}

func newHandler(routePath string, o Options) (*handler, error) {
	if o.Root == "" {
		return nil, errors.New("options.root: required")
	}
	st, err := os.Stat(o.Root)
	if err != nil {
		return nil, fmt.Errorf("options.root: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("options.root: %s is not a directory", o.Root)
	}
	switch o.ETag {
	case "weak", "strong", "off":
	default:
		return nil, fmt.Errorf("options.etag: must be weak, strong or off, got %q", o.ETag)
	}
	if strings.ContainsAny(o.Index, "/\\\x00") || o.Index == "." || o.Index == ".." {
		return nil, fmt.Errorf("options.index: must be a file name, got %q", o.Index)
	}
	for _, ch := range o.CacheControl {
		if ch < ' ' || ch == 0x7f {
			return nil, fmt.Errorf("options.cache_control: control character in %q", o.CacheControl)
		}
	}
	h := &handler{o: o}
	if o.StripPrefix {
		h.prefix = strings.TrimSuffix(routePath, "/")
	}
	return h, nil
}

// blocking marks the handler as one that must run off the event loop.
type blocking struct {
	engine.Handler
	h *handler
}

// Blocking implements engine.BlockingHandler.
func (*blocking) Blocking() bool { return true }

// Provision implements plugins.Provisioner: the serving process opens the
// root directory before it reports ready, so a root gone since the config
// was checked fails the start (a reload then leaves the running generation
// serving). The factory only checks the root: it also runs in the
// supervisor and in --check-config, on every start and reload, where an
// open directory would never be closed.
func (b *blocking) Provision(context.Context) error {
	_, err := b.h.openRoot()
	return err
}

// Cleanup implements plugins.CleanerUpper: the stopping serving process
// closes the root directory.
func (b *blocking) Cleanup() error {
	// Done first: a request after Cleanup gets an error, not a new open,
	// and b.h.root is read after the Once that wrote it.
	b.h.rootOnce.Do(func() { b.h.rootErr = errors.New("files: closed") })
	if b.h.root == nil {
		return nil
	}
	return b.h.root.Close()
}

// openRoot opens the root once: at Provision in a serving process, or at
// the first request where nobody provisioned the handler (a custom build
// calling New directly).
func (h *handler) openRoot() (*os.Root, error) {
	h.rootOnce.Do(func() {
		h.root, h.rootErr = os.OpenRoot(h.o.Root)
		if h.rootErr != nil {
			h.rootErr = fmt.Errorf("options.root: %w", h.rootErr)
		}
	})
	return h.root, h.rootErr
}

func (h *handler) logger() *slog.Logger {
	if h.log == nil {
		return slog.Default()
	}
	return h.log
}

type handler struct {
	// root is opened once by openRoot; read only after rootOnce.
	root     *os.Root
	rootErr  error
	rootOnce sync.Once
	o        Options
	prefix   string
	log      *slog.Logger // the route's (plugins.Context)
}

// errBadPath is a request path that tries to leave the tree or hides
// structure in escapes.
var errBadPath = errors.New("bad path")

// clean turns the escaped request path (after the prefix) into a name
// relative to the root, or refuses it. It looks at each segment as the
// client sent it: an escaped '/' or '\' would change the structure after
// decoding, and "." and ".." (in any encoding) would walk it, so both are
// errors; NUL is an error; empty segments ("//") are skipped.
func clean(escaped string) (name string, hidden bool, err error) {
	var segs []string
	for _, raw := range strings.Split(escaped, "/") {
		if raw == "" {
			continue
		}
		seg, err := url.PathUnescape(raw)
		if err != nil {
			return "", false, errBadPath
		}
		if seg == "." || seg == ".." || strings.ContainsAny(seg, "/\\\x00") {
			return "", false, errBadPath
		}
		if seg[0] == '.' {
			hidden = true
		}
		segs = append(segs, seg)
	}
	if len(segs) == 0 {
		return ".", hidden, nil
	}
	return strings.Join(segs, "/"), hidden, nil
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	escaped := r.URL.EscapedPath()
	rel := escaped
	if h.prefix != "" {
		var ok bool
		if rel, ok = strings.CutPrefix(escaped, h.prefix); !ok || (rel != "" && rel[0] != '/') {
			http.NotFound(w, r)
			return
		}
	}
	name, hidden, err := clean(rel)
	if err != nil {
		http.Error(w, "400 bad request: invalid path", http.StatusBadRequest)
		return
	}
	if hidden && !h.o.Dotfiles {
		http.NotFound(w, r)
		return
	}
	f, fi, err := h.open(name)
	if err != nil {
		h.fail(w, r, name, err)
		return
	}
	defer f.Close()
	if fi.IsDir() {
		if !strings.HasSuffix(escaped, "/") {
			// Relative, like http.FileServer: "/a/dir" -> "dir/", so a
			// path like "//evil.example" cannot become an absolute URL.
			target := path.Base(escaped) + "/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", target)
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		if h.o.Index != "" {
			idx, ifi, err := h.open(path.Join(name, h.o.Index))
			if err == nil && !ifi.IsDir() {
				defer idx.Close()
				h.serveFile(w, r, h.o.Index, ifi, idx)
				return
			}
			if idx != nil {
				idx.Close()
			}
		}
		if !h.o.Listing {
			http.NotFound(w, r)
			return
		}
		h.list(w, r, f, escaped)
		return
	}
	if strings.HasSuffix(escaped, "/") {
		// "/a.txt/" names a directory that is not there, as for nginx.
		http.NotFound(w, r)
		return
	}
	h.serveFile(w, r, fi.Name(), fi, f)
}

// open opens name inside the root without following it out, refusing
// anything but regular files and directories. O_NONBLOCK keeps a FIFO
// from blocking the open; it changes nothing for files and directories.
func (h *handler) open(name string) (*os.File, fs.FileInfo, error) {
	root, err := h.openRoot()
	if err != nil {
		return nil, nil, err
	}
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		f.Close()
		return nil, nil, fs.ErrNotExist
	}
	return f, fi, nil
}

// fail answers an open error: 403 for permissions, 404 for everything
// else a client can cause (missing, outside the root, through a file).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, name string, err error) {
	switch {
	case errors.Is(err, fs.ErrPermission):
		http.Error(w, "403 forbidden", http.StatusForbidden)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ELOOP),
		errors.Is(err, syscall.ENAMETOOLONG), isEscape(err):
		http.NotFound(w, r)
	default:
		h.logger().Warn("files: open failed", "root", h.o.Root, "name", name, "err", err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
	}
}

// isEscape reports os.Root's "path escapes from parent" error, which has
// no exported sentinel.
func isEscape(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes")
}

// serveFile sends f with validators and lets ServeContent handle
// conditions and ranges.
func (h *handler) serveFile(w http.ResponseWriter, r *http.Request, name string, fi fs.FileInfo, f *os.File) {
	hd := w.Header()
	if h.o.CacheControl != "" {
		hd.Set("Cache-Control", h.o.CacheControl)
	}
	if h.o.ETag != "off" {
		tag := `"` + strconv.FormatInt(fi.ModTime().UnixNano(), 16) + "-" + strconv.FormatInt(fi.Size(), 16) + `"`
		if h.o.ETag == "weak" {
			tag = "W/" + tag
		}
		hd.Set("ETag", tag)
	}
	hd.Set("X-Content-Type-Options", "nosniff")
	fixRange(r, fi.Size())
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// list writes an HTML listing of dir; names are escaped for HTML and for
// the URL, dotfiles are left out unless served.
func (h *handler) list(w http.ResponseWriter, r *http.Request, dir *os.File, escaped string) {
	entries, err := dir.ReadDir(-1)
	if err != nil {
		h.logger().Warn("files: listing failed", "root", h.o.Root, "path", escaped, "err", err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	title, _ := url.PathUnescape(escaped)
	var b strings.Builder
	b.WriteString("<!doctype html>\n<meta charset=\"utf-8\">\n<title>Index of ")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</title>\n<h1>Index of ")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</h1>\n<ul>\n")
	for _, e := range entries {
		n := e.Name()
		if n[0] == '.' && !h.o.Dotfiles {
			continue
		}
		if e.IsDir() {
			n += "/"
		}
		href := (&url.URL{Path: n}).EscapedPath()
		if strings.Contains(n, ":") {
			href = "./" + href // never a scheme
		}
		fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a></li>\n", html.EscapeString(href), html.EscapeString(n))
	}
	b.WriteString("</ul>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(b.String())) //nolint:errcheck // the client went away
}
