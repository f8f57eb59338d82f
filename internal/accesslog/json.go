package accesslog

import (
	"time"

	"github.com/asyncd/asyncd/engine"
)

// jsonField is a letter atom's field in the JSON access log.
type jsonField struct {
	key  string
	kind kind
}

// jsonFields are written in this order. b and B are one field ("bytes"):
// they differ only in how Gunicorn's text log prints zero.
var jsonFields = []jsonField{
	{"time", kTime},
	{"remote_addr", kRemoteHost},
	{"ident", kIdent},
	{"user", kUser},
	{"request", kRequestLine},
	{"method", kMethod},
	{"path", kPath},
	{"query", kQuery},
	{"protocol", kProto},
	{"status", kStatus},
	{"bytes", kBytes},
	{"referer", kReferer},
	{"user_agent", kUserAgent},
	{"request_time", kDecimal},
	{"request_time_s", kSeconds},
	{"request_time_ms", kMillis},
	{"request_time_us", kMicros},
	{"pid", kPID},
}

// appendJSON renders one JSON object and a newline. Missing values are
// null; status, bytes, times and pid are numbers.
func (f *Format) appendJSON(b []byte, st *state, c *engine.Ctx, took time.Duration, user []byte) []byte {
	b = append(b, '{')
	for i, fl := range jsonFields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, fl.key...)
		b = append(b, '"', ':')
		a := atom{kind: fl.kind}
		b = f.appendAtom(b, &a, st, c, took, user, true)
	}
	for _, obj := range [...]struct {
		tag byte
		key string
	}{{'i', "request_headers"}, {'o', "response_headers"}, {'e', "environ"}} {
		first := true
		for i := range f.extra {
			a := &f.extra[i]
			if a.obj != obj.tag {
				continue
			}
			if first {
				b = append(b, ',', '"')
				b = append(b, obj.key...)
				b = append(b, '"', ':', '{')
				first = false
			} else {
				b = append(b, ',')
			}
			b = appendJSONString(b, s2b(a.key))
			b = append(b, ':')
			b = f.appendAtom(b, a, st, c, took, user, true)
		}
		if !first {
			b = append(b, '}')
		}
	}
	return append(b, '}', '\n')
}
