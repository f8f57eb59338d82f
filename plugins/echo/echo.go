// Package echo is the "echo" handler plugin: it answers 200 with a JSON
// object describing the request exactly as the server parsed it (method,
// target as sent, path as routed, i.e. normalized, query, proto, headers
// as ordered [name, value] pairs, body, trailers). Conformance tests and
// operators debugging a proxy chain read it.
//
// Every byte 0x80..0xFF is written as the code point U+0080..U+00FF (one
// code point per byte, as \u00XX), so obs-text survives the round trip
// exactly and a reader never has to guess whether bytes were UTF-8 text; it
// owns only that encoding and its handler.
//
// The body is reported by length and SHA-256 (body_length, body_sha256),
// and verbatim up to the body_limit option (default 64 KiB) in "body";
// body_truncated says whether that is all of it. A larger body is hashed
// as it arrives and never held: a body up to body_buffer_size is buffered
// by the engine (Ctx.Body) as for any handler; a larger one is streamed,
// and the engine then runs the handler off the event loop whatever the
// worker class (docs/design.md, "Streamed request bodies"), where echo
// reads it from Ctx.BodyReader through a fixed buffer. So echo holds at
// most body_limit bytes of body, a 32 KiB read buffer, and a JSON answer
// of at most six bytes per body byte shown plus the head. A body that
// cannot be read whole (bad chunked framing, over limit_request_body,
// body_timeout, client gone) is answered with the parser's status instead
// of a partial echo.
package echo

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/plugins"
)

// Options are the route options of the echo plugin.
type Options struct {
	// BodyLimit is how many bytes of the body the answer shows verbatim;
	// beyond them the body is only counted and hashed. Default 64 KiB.
	BodyLimit int `option:"body_limit"`
}

// readChunk is the buffer a streamed body is read through past BodyLimit.
const readChunk = 32 << 10

func init() { plugins.Register("echo", New) }

// New builds an echo handler from a route's options.
func New(r plugins.Route) (engine.Handler, error) {
	o := Options{BodyLimit: 64 << 10}
	if err := plugins.Decode(r.Options, &o); err != nil {
		return nil, err
	}
	if o.BodyLimit < 0 {
		return nil, fmt.Errorf("options.body_limit: must be >= 0, got %d", o.BodyLimit)
	}
	return &handler{limit: o.BodyLimit}, nil
}

type handler struct{ limit int }

// body is what the answer says of the request body.
type body struct {
	shown  []byte // the first limit bytes
	length int64
	sum    [sha256.Size]byte
}

// Serve implements engine.Handler.
func (h *handler) Serve(c *engine.Ctx) {
	var bd body
	if buf := c.Body(); buf != nil || !c.BodyStreamed() {
		bd = body{shown: buf[:min(len(buf), h.limit)], length: int64(len(buf)), sum: sha256.Sum256(buf)}
	} else if err := h.stream(c.BodyReader(), &bd); err != nil {
		status := 400
		var pe *httpparse.Error
		if errors.As(err, &pe) {
			status = pe.Status
		}
		c.SetStatus(status)
		c.SetContentType("text/plain; charset=utf-8")
		c.SetBodyString("request body: " + err.Error() + "\n")
		return
	}
	b := c.ResponseBody()[:0]
	b = append(b, `{"method":`...)
	b = AppendString(b, c.Method())
	b = append(b, `,"target":`...)
	b = AppendString(b, c.Target())
	b = append(b, `,"path":`...)
	b = AppendString(b, c.Path())
	b = append(b, `,"query":`...)
	b = AppendString(b, c.Query())
	b = append(b, `,"proto":"`...)
	b = append(b, c.Proto()...)
	b = append(b, `","remote":"`...)
	b = c.RemoteAddr().AppendTo(b)
	b = append(b, `","headers":`...)
	b = appendFields(b, c.Headers())
	b = append(b, `,"body":`...)
	b = AppendString(b, bd.shown)
	b = append(b, `,"body_length":`...)
	b = strconv.AppendInt(b, bd.length, 10)
	b = append(b, `,"body_sha256":"`...)
	for _, x := range bd.sum {
		b = append(b, hex[x>>4], hex[x&0xf])
	}
	b = append(b, `","body_truncated":`...)
	b = strconv.AppendBool(b, int64(len(bd.shown)) < bd.length)
	b = append(b, `,"trailers":`...)
	b = appendFields(b, c.Trailers())
	b = append(b, '}', '\n')
	c.SetContentType("application/json")
	c.SetBody(b)
}

// stream reads a streamed body to its end, keeping its first limit bytes
// and hashing all of it as it arrives.
func (h *handler) stream(r io.Reader, bd *body) error {
	d := sha256.New()
	buf := make([]byte, readChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p := buf[:n]
			d.Write(p) //nolint:errcheck // a hash never fails
			bd.length += int64(n)
			if keep := min(h.limit-len(bd.shown), n); keep > 0 {
				bd.shown = append(bd.shown, p[:keep]...)
			}
		}
		if err == io.EOF {
			d.Sum(bd.sum[:0])
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func appendFields(b []byte, hs []httpparse.Header) []byte {
	b = append(b, '[')
	for i, h := range hs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = AppendString(b, h.Name)
		b = append(b, ',')
		b = AppendString(b, h.Value)
		b = append(b, ']')
	}
	return append(b, ']')
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string, one code point per byte: bytes
// 0x80..0xFF and control characters are written as \u00XX.
func AppendString(b, s []byte) []byte {
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
