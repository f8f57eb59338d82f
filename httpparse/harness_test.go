package httpparse

import (
	"fmt"
	"strings"
)

// msg is one parsed request, in a form tests can compare.
type msg struct {
	Method, Target, Version string
	Form                    TargetForm
	Path, Host              string
	Query                   *string
	Headers                 [][2]string
	Body                    string
	Trailers                [][2]string
	ContentLength           int64
	Chunked, KeepAlive      bool
	Expect100, Upgrade      bool
	HeadLen                 int
}

func (m msg) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q %s form=%d host=%q hdrs=%q body=%q", m.Method, m.Target, m.Version, m.Form, m.Host, m.Headers, m.Body)
	if m.Trailers != nil {
		fmt.Fprintf(&b, " trailers=%q", m.Trailers)
	}
	return b.String()
}

// outcome is what a stream of pipelined requests parsed into.
type outcome struct {
	msgs       []msg
	err        error  // the rejection, if any
	incomplete bool   // input ended inside a message
	stopped    string // "close" (not persistent) or "tunnel" (CONNECT): rest not parsed
	rest       int    // bytes after the last message that were not parsed
}

func (o outcome) String() string {
	var b strings.Builder
	for i, m := range o.msgs {
		fmt.Fprintf(&b, "  msg %d: %s\n", i, m)
	}
	fmt.Fprintf(&b, "  err=%v incomplete=%v stopped=%q rest=%d", o.err, o.incomplete, o.stopped, o.rest)
	return b.String()
}

func toMsg(r *Request, body []byte, tr []Header, chunked bool) msg {
	m := msg{
		Method: string(r.Method), Target: string(r.Target), Version: r.Version(),
		Form: r.Form, Path: string(r.Path), Host: string(r.Host),
		Body: string(body), ContentLength: r.ContentLength, Chunked: r.Chunked,
		KeepAlive: r.KeepAlive, Expect100: r.Expect100, Upgrade: r.Upgrade, HeadLen: r.HeadLen,
	}
	if r.Query != nil {
		q := string(r.Query)
		m.Query = &q
	}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, [2]string{string(h.Name), string(h.Value)})
	}
	if chunked {
		m.Trailers = [][2]string{}
		for _, h := range tr {
			m.Trailers = append(m.Trailers, [2]string{string(h.Name), string(h.Value)})
		}
	}
	return m
}

// streamOpts configures runStream.
type streamOpts struct {
	step        int // bytes added per call; 0 feeds everything at once
	noHostCheck bool
	limits      Limits
	copyEach    bool // copy the growing input to a fresh buffer on every call
	slowOnly    bool // no fast paths: the scanners decide everything
}

// runStream parses data the way the engine does: heads with ParseHead, then
// Content-Length bodies or chunked bodies with a ChunkedDecoder, request
// after request, stopping after a non-persistent request or a CONNECT.
func runStream(data []byte, o streamOpts) outcome {
	var out outcome
	p := Parser{Limits: o.limits, noHostCheck: o.noHostCheck, slowOnly: o.slowOnly}
	d := ChunkedDecoder{Limits: o.limits}
	var req Request
	off := 0
	grow := func(avail, limit int) int {
		if o.step == 0 {
			return limit
		}
		return min(avail+o.step, limit)
	}
	for off < len(data) {
		p.Reset()
		avail := off
		n := 0
		for {
			avail = grow(avail, len(data))
			buf := data[off:avail]
			if o.copyEach {
				buf = append([]byte(nil), buf...)
			}
			var err error
			n, err = p.ParseHead(buf, &req)
			if err != nil {
				out.err = err
				return out
			}
			if n > 0 {
				break
			}
			if avail == len(data) {
				out.incomplete = true
				return out
			}
		}
		pos := off + n
		var body []byte
		switch {
		case req.Chunked:
			d.Reset()
			avail = pos
			for {
				avail = grow(avail, len(data))
				var c int
				var done bool
				var err error
				body, c, done, err = d.Decode(body, data[pos:avail])
				if err != nil {
					out.err = err
					return out
				}
				pos += c
				if done {
					break
				}
				if avail == len(data) {
					out.incomplete = true
					return out
				}
			}
		case req.ContentLength > 0:
			if int64(len(data)-pos) < req.ContentLength {
				out.incomplete = true
				return out
			}
			body = data[pos : pos+int(req.ContentLength)]
			pos += int(req.ContentLength)
		}
		out.msgs = append(out.msgs, toMsg(&req, body, d.Trailers, req.Chunked))
		off = pos
		if req.Form == AuthorityForm {
			out.stopped, out.rest = "tunnel", len(data)-off
			return out
		}
		if !req.KeepAlive {
			out.stopped, out.rest = "close", len(data)-off
			return out
		}
	}
	return out
}
