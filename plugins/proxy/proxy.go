// Package proxy is the "proxy" handler plugin: it reverse-proxies a route
// to one or more HTTP upstreams, round robin, over a keep-alive connection
// pool. It is built on net/http's httputil.ReverseProxy and http.Transport
// through engine.HTTPHandler, so hop-by-hop headers are removed both ways,
// streamed (chunked, server-sent events) responses are flushed as they
// arrive, and the standard forwarding headers are set: X-Forwarded-For and
// X-Real-IP are the client address as asyncd sees it (after PROXY
// protocol or trusted forwarding headers); X-Forwarded-Host is the
// request's Host; X-Forwarded-Proto is http or https (from a trusted
// proxy's scheme header). A client's own Forwarded, X-Real-IP and
// X-Forwarded-* fields are dropped, so none can be spoofed, and so are
// field names with an underscore (nginx's underscores_in_headers off).
// Accept-Encoding and Content-Encoding pass through untouched: the proxy
// neither asks for gzip nor decompresses.
//
// The request is framed upstream as the parser framed it (chunked stays
// chunked, a length stays that length); a response the upstream breaks off
// mid-body reaches the client cut short, with the connection closed
// before its framing completes. docs/security.md ("Upstreams behind the
// proxy plugin") says what is forwarded, dropped and refused.
//
// Failures: 502 when the upstream cannot be reached or breaks the
// exchange, 504 when it times out (connect or response_header_timeout).
// With retries > 0, a request with an idempotent method and no body is
// sent to the next upstream when connecting fails (nothing was sent, so
// it cannot have had an effect); nothing else is retried.
//
// The handler is an engine.BlockingHandler: it always runs off the event
// loop. It owns only its handler, transport and options.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/loglimit"
	"github.com/asyncd/asyncd/plugins"
)

// Options are the route options of the proxy plugin.
type Options struct {
	// Upstream is one upstream base URL (http:// or https://); the path
	// it carries is prepended to the request's.
	Upstream string `option:"upstream"`
	// Upstreams are several, used round robin (with Upstream, if set).
	Upstreams []string `option:"upstreams"`
	// ConnectTimeout bounds connecting (and a TLS handshake); default 5s.
	ConnectTimeout time.Duration `option:"connect_timeout"`
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// head once the request is sent; default 60s, 0 for no limit.
	ResponseHeaderTimeout time.Duration `option:"response_header_timeout"`
	// IdleTimeout closes pooled upstream connections idle this long;
	// default 90s.
	IdleTimeout time.Duration `option:"idle_timeout"`
	// MaxIdleConns is the idle connections kept per upstream; default 64.
	MaxIdleConns int `option:"max_idle_conns"`
	// StripPrefix removes the route's path before forwarding (route
	// /api/, request /api/users -> upstream /users).
	StripPrefix bool `option:"strip_prefix"`
	// PreserveHost sends the client's Host header instead of the
	// upstream's.
	PreserveHost bool `option:"preserve_host"`
	// Retries is how many other upstreams to try when connecting fails
	// (idempotent methods without a body only); default 0.
	Retries int `option:"retries"`
}

func init() { plugins.Register("proxy", New) }

// New builds a proxy handler from a route's options.
func New(r plugins.Route) (engine.Handler, error) {
	o := Options{ConnectTimeout: 5 * time.Second, ResponseHeaderTimeout: 60 * time.Second,
		IdleTimeout: 90 * time.Second, MaxIdleConns: 64}
	if err := plugins.Decode(r.Options, &o); err != nil {
		return nil, err
	}
	p, err := newProxy(r.Path, o)
	if err != nil {
		return nil, err
	}
	p.log = r.Context().Logger
	return &blocking{Handler: engine.HTTPHandler(p.rp), p: p}, nil
}

// blocking marks the handler as one that must run off the event loop.
type blocking struct {
	engine.Handler
	p *proxy
}

// Blocking implements engine.BlockingHandler.
func (*blocking) Blocking() bool { return true }

// Cleanup implements plugins.CleanerUpper: the stopping serving process
// closes its idle upstream connections rather than leaving them to the
// exit.
func (b *blocking) Cleanup() error {
	b.p.tr.CloseIdleConnections()
	return nil
}

type proxy struct {
	upstreams []*url.URL
	next      atomic.Uint64
	prefix    string
	o         Options
	tr        *http.Transport
	rp        *httputil.ReverseProxy
	lastLog   atomic.Int64
	log       *slog.Logger // the route's (plugins.Context)
}

func newProxy(routePath string, o Options) (*proxy, error) {
	raw := o.Upstreams
	if o.Upstream != "" {
		raw = append([]string{o.Upstream}, raw...)
	}
	if len(raw) == 0 {
		return nil, errors.New("options.upstream: required (or options.upstreams)")
	}
	p := &proxy{o: o}
	for i, s := range raw {
		u, err := parseUpstream(s)
		name := "options.upstreams[" + fmt.Sprint(i-btoi(o.Upstream != "")) + "]"
		if o.Upstream != "" && i == 0 {
			name = "options.upstream"
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		p.upstreams = append(p.upstreams, u)
	}
	switch {
	case o.ConnectTimeout <= 0:
		return nil, fmt.Errorf("options.connect_timeout: must be > 0, got %s", o.ConnectTimeout)
	case o.ResponseHeaderTimeout < 0:
		return nil, fmt.Errorf("options.response_header_timeout: must be >= 0, got %s", o.ResponseHeaderTimeout)
	case o.IdleTimeout < 0:
		return nil, fmt.Errorf("options.idle_timeout: must be >= 0, got %s", o.IdleTimeout)
	case o.MaxIdleConns < 0:
		return nil, fmt.Errorf("options.max_idle_conns: must be >= 0, got %d", o.MaxIdleConns)
	case o.Retries < 0:
		return nil, fmt.Errorf("options.retries: must be >= 0, got %d", o.Retries)
	}
	if o.StripPrefix {
		p.prefix = strings.TrimSuffix(routePath, "/")
	}
	dialer := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	p.tr = &http.Transport{
		Proxy:                 nil, // never through $HTTP_PROXY: the upstreams are named explicitly
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   o.ConnectTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		IdleConnTimeout:       o.IdleTimeout,
		MaxIdleConns:          o.MaxIdleConns * len(p.upstreams),
		MaxIdleConnsPerHost:   o.MaxIdleConns,
		ExpectContinueTimeout: time.Second,
		// Accept-Encoding is the client's to send: the transport must not
		// add its own gzip, nor decompress on the proxy's CPU.
		DisableCompression: true,
	}
	if o.MaxIdleConns == 0 {
		p.tr.DisableKeepAlives = true
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    roundTripper{p},
		ErrorHandler: p.fail,
		ErrorLog:     errorLog,
	}
	return p, nil
}

// errorLog is where httputil.ReverseProxy logs (an upstream that died
// mid-body: "httputil: ReverseProxy read error during body copy"): WARN
// in the error log, rate-limited, shared by every proxy route.
var errorLog = loglimit.NewLogLogger(nil, slog.LevelWarn)

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parseUpstream checks an upstream URL: http or https, a host, no user
// info, query or fragment.
func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: scheme must be http or https", s)
	case u.Host == "":
		return nil, fmt.Errorf("%q: no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("%q: user info is not supported", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%q: no query or fragment allowed", s)
	}
	return u, nil
}

// rewrite builds the outbound request: the path (prefix stripped) and
// query, the forwarding headers, and the Host. The upstream (scheme, host
// and base path) is chosen per attempt by the round tripper.
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	esc := pr.In.URL.EscapedPath()
	if p.prefix != "" {
		if rest, ok := strings.CutPrefix(esc, p.prefix); ok && (rest == "" || rest[0] == '/') {
			esc = rest
		}
	}
	if esc == "" {
		esc = "/"
	}
	pr.Out.URL.Path, pr.Out.URL.RawPath = esc, esc
	if dec, err := url.PathUnescape(esc); err == nil {
		pr.Out.URL.Path = dec
	}
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	dropUntrusted(pr.Out.Header)
	pr.SetXForwarded()
	if engine.RequestScheme(pr.In) == "https" {
		pr.Out.Header.Set("X-Forwarded-Proto", "https")
	}
	if ip := pr.Out.Header.Get("X-Forwarded-For"); ip != "" {
		pr.Out.Header.Set("X-Real-IP", ip) // the one address SetXForwarded set
	}
	if p.o.PreserveHost {
		pr.Out.Host = pr.In.Host
	} else {
		pr.Out.Host = ""
	}
}

// dropUntrusted removes the request fields a client cannot be trusted to
// set. Forwarded, X-Real-IP and every X-Forwarded-* claim who the client
// is or how it connected; asyncd already decided that (the socket's
// address, or a trusted proxy's headers under forwarded_allow_ips) and
// states its verdict afresh in X-Forwarded-For, X-Real-IP,
// X-Forwarded-Host and X-Forwarded-Proto. A name with an underscore
// (Transfer_Encoding) is dropped as nginx does by default
// (underscores_in_headers off): servers that map field names to CGI-style
// variables read it as the dashed name.
func dropUntrusted(h http.Header) {
	for k := range h {
		if k == "Forwarded" || k == "X-Real-Ip" || strings.HasPrefix(k, "X-Forwarded-") || strings.ContainsRune(k, '_') {
			delete(h, k)
		}
	}
}

// target points u (holding the request's own path) at upstream base.
func (p *proxy) target(u *url.URL, base *url.URL) {
	u.Scheme, u.Host = base.Scheme, base.Host
	bp := base.EscapedPath()
	if bp == "" || bp == "/" {
		return
	}
	esc := strings.TrimSuffix(bp, "/") + u.EscapedPath()
	u.RawPath = esc
	if dec, err := url.PathUnescape(esc); err == nil {
		u.Path = dec
	}
}

// roundTripper picks the upstream for each attempt and retries connection
// failures where that is safe.
type roundTripper struct{ p *proxy }

// RoundTrip implements http.RoundTripper.
func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	p := rt.p
	own := *req.URL // the request's own path and query, from rewrite
	retryable := p.o.Retries > 0 && (req.Body == nil || req.Body == http.NoBody) && idempotent(req.Method)
	var lastErr error
	for attempt := 0; attempt <= p.o.Retries; attempt++ {
		u := own
		p.target(&u, p.upstreams[p.next.Add(1)%uint64(len(p.upstreams))])
		out := req.WithContext(req.Context()) // shallow copy: the URL differs per attempt
		out.URL = &u
		resp, err := p.tr.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if !retryable || !isDialError(err) || req.Context().Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// idempotent reports the methods RFC 9110 §9.2.2 makes idempotent.
func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func (p *proxy) logger() *slog.Logger {
	if p.log == nil {
		return slog.Default()
	}
	return p.log
}

// isDialError reports a failure to connect: nothing reached the upstream.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// fail answers an upstream failure: 504 for timeouts, 502 otherwise.
func (p *proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadGateway
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		status = http.StatusGatewayTimeout
	}
	if r.Context().Err() == nil {
		// At most one line a second: a dead upstream must not flood the log.
		now := time.Now().UnixNano()
		if last := p.lastLog.Load(); now-last >= int64(time.Second) && p.lastLog.CompareAndSwap(last, now) {
			p.logger().Warn("proxy: upstream failed", "status", status, "method", r.Method,
				"path", r.URL.Path, "err", err)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%d %s\n", status, http.StatusText(status))
}
