package engine

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/asyncd/asyncd/httpparse"
)

// HTTPHandler runs a net/http Handler (an http.ServeMux with Go 1.22
// patterns, or any router built on net/http) as an asyncd handler.
//
// What the handler sees is what net/http would give it: Method, URL,
// RequestURI, Proto, Header (canonical keys), Host, ContentLength,
// TransferEncoding, Trailer, RemoteAddr, Body, and a Context that is
// cancelled when the client goes away or the request times out. The
// ResponseWriter buffers the body and sends it with Content-Length when the
// handler returns; it implements http.Flusher (the response becomes a
// chunked stream, or uses the Content-Length the handler set) and, for
// handlers running off the loop, http.Hijacker. http.MaxBytesReader works as
// with net/http. Differences from net/http are listed in docs/design.md
// ("net/http adapter").
func HTTPHandler(h http.Handler) Handler {
	return HandlerFunc(func(c *Ctx) {
		req, err := c.httpRequest()
		if err != nil {
			c.setError(400)
			return
		}
		w := &responseWriter{c: c, header: make(http.Header)}
		h.ServeHTTP(w, req)
		w.finish()
	})
}

// httpRequest builds the *http.Request for c.
func (c *Ctx) httpRequest() (*http.Request, error) {
	target := string(c.req.Target)
	var u *url.URL
	var err error
	switch c.req.Form {
	case httpparse.AsteriskForm:
		u = &url.URL{Path: "*"}
	default:
		u, err = url.ParseRequestURI(target)
		if err != nil {
			return nil, err
		}
		if c.pathNorm {
			// URL.Path (and RawPath, set as net/http sets it) is the
			// normalized path the route matched; RequestURI keeps the
			// target as sent.
			p, err := url.ParseRequestURI(string(c.pathBuf))
			if err != nil {
				return nil, err
			}
			u.Path, u.RawPath = p.Path, p.RawPath
		}
	}
	h := make(http.Header, len(c.req.Headers))
	var te []string
	for _, f := range c.req.Headers {
		k := http.CanonicalHeaderKey(string(f.Name))
		if k == "Host" {
			continue // net/http moves Host to Request.Host
		}
		if k == "Transfer-Encoding" {
			te = append(te, strings.ToLower(string(f.Value)))
			continue
		}
		h[k] = append(h[k], string(f.Value))
	}
	req := &http.Request{
		Method:           string(c.req.Method),
		URL:              u,
		Proto:            c.req.Version(),
		ProtoMajor:       int(c.req.Major),
		ProtoMinor:       int(c.req.Minor),
		Header:           h,
		Host:             string(c.req.Host),
		RequestURI:       target,
		ContentLength:    c.req.ContentLength,
		TransferEncoding: te,
		Close:            !c.req.KeepAlive,
		RemoteAddr:       c.remote.String(),
	}
	if !c.remote.IsValid() {
		req.RemoteAddr = "@"
	}
	if c.req.Chunked {
		req.ContentLength = -1
		if len(c.chunk.Trailers) > 0 {
			req.Trailer = make(http.Header, len(c.chunk.Trailers))
			for _, f := range c.chunk.Trailers {
				k := http.CanonicalHeaderKey(string(f.Name))
				req.Trailer[k] = append(req.Trailer[k], string(f.Value))
			}
		}
	}
	if req.ContentLength < 0 || req.ContentLength > 0 || c.req.Chunked {
		req.Body = io.NopCloser(c.BodyReader())
	} else {
		req.Body = http.NoBody
	}
	if c.secure {
		req.URL.Scheme = "https"
	}
	return req.WithContext(c.Context()), nil
}

// responseWriter is the http.ResponseWriter of HTTPHandler.
type responseWriter struct {
	c           *Ctx
	header      http.Header
	wroteHeader bool
	hijacked    bool
	sniff       bool // no Content-Type set: detect it from the first write
}

// Header implements http.ResponseWriter.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	if code >= 100 && code < 200 && code != 101 {
		return // interim responses are not forwarded; see docs
	}
	w.wroteHeader = true
	w.c.SetStatus(code)
	for k, vs := range w.header {
		switch k {
		case "Content-Length":
			if n, err := strconv.ParseInt(vs[0], 10, 64); err == nil {
				w.c.SetContentLength(n)
			}
			continue
		case "Trailer":
			continue
		}
		for _, v := range vs {
			w.c.SetHeader(k, v)
		}
	}
	if _, ok := w.header["Content-Type"]; !ok && len(w.c.ctype) == 0 && bodyAllowed(code) {
		w.sniff = true
	}
}

// Write implements http.ResponseWriter. Off the loop, a body that grows past
// the stream threshold is flushed, so a large response never sits whole in
// memory.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.sniff && len(w.c.ctype) == 0 && len(p) > 0 {
		w.c.SetContentType(http.DetectContentType(p))
	}
	n, err := w.c.Write(p)
	if err == nil && !w.c.streaming && w.c.offloop && len(w.c.out) >= streamChunk {
		err = w.c.Flush()
	}
	return n, err
}

// WriteString implements io.StringWriter.
func (w *responseWriter) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() {
	w.FlushError() //nolint:errcheck // http.Flusher has no error
}

// FlushError is Flush with an error, as http.ResponseController uses.
func (w *responseWriter) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.c.Flush()
}

// Hijack implements http.Hijacker: the returned conn belongs to the caller,
// and the reader holds any bytes the client sent after this request.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.wroteHeader && w.c.streaming {
		return nil, nil, errors.New("asyncd: hijack after the response started")
	}
	conn, unread, err := w.c.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	var r io.Reader = conn
	if len(unread) > 0 {
		r = io.MultiReader(bytes.NewReader(unread), conn)
	}
	return conn, bufio.NewReadWriter(bufio.NewReader(r), bufio.NewWriter(conn)), nil
}

// finish completes the response when ServeHTTP returns.
func (w *responseWriter) finish() {
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
}
