// Package echo is the "echo" handler plugin: it answers 200 with a JSON
// object describing the request exactly as the server parsed it (method,
// target, path, query, proto, headers as ordered [name, value] pairs, body,
// trailers). Conformance tests and operators debugging a proxy chain read it.
//
// Every byte 0x80..0xFF is written as the code point U+0080..U+00FF (one
// code point per byte, as \u00XX), so obs-text survives the round trip
// exactly and a reader never has to guess whether bytes were UTF-8 text; it
// owns only that encoding and its handler.
//
// The body is reported whole whatever its size. A body up to
// body_buffer_size is buffered by the engine (Ctx.Body); a larger one is
// streamed, and the engine then runs the handler off the event loop
// whatever the worker class (docs/design.md, "Streamed request bodies"), so
// echo reads it from Ctx.BodyReader there without blocking a loop. echo
// holds the whole body (limit_request_body bounds it) and its JSON form in
// memory: it is a tool for tests and debugging, not for large uploads. A
// body that cannot be read whole (bad chunked framing, over
// limit_request_body, body_timeout, client gone) is answered with the
// parser's status instead of a partial echo.
package echo

import (
	"bytes"
	"errors"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/plugins"
)

func init() { plugins.Register("echo", New) }

// New builds an echo handler; it takes no options.
func New(r plugins.Route) (engine.Handler, error) {
	var o struct{}
	if err := plugins.Decode(r.Options, &o); err != nil {
		return nil, err
	}
	return engine.HandlerFunc(serve), nil
}

func serve(c *engine.Ctx) {
	body := c.Body()
	if body == nil && c.BodyStreamed() {
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(c.BodyReader()); err != nil {
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
		body = buf.Bytes()
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
	b = AppendString(b, body)
	b = append(b, `,"trailers":`...)
	b = appendFields(b, c.Trailers())
	b = append(b, '}', '\n')
	c.SetContentType("application/json")
	c.SetBody(b)
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
