package accesslog

import (
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/asyncd/asyncd/engine"
)

// DefaultFormat is Gunicorn's default access_log_format (Apache's
// combined log format).
const DefaultFormat = `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`

// kind is what an atom renders.
type kind uint8

const (
	kLiteral     kind = iota
	kRemoteHost       // h
	kIdent            // l
	kUser             // u
	kTime             // t
	kRequestLine      // r
	kMethod           // m
	kPath             // U
	kQuery            // q
	kProto            // H
	kStatus           // s
	kBytes            // B
	kBytesCLF         // b
	kReferer          // f
	kUserAgent        // a
	kSeconds          // T
	kMicros           // D
	kMillis           // M
	kDecimal          // L
	kPID              // p
	kReqHeader        // {name}i
	kRespHeader       // {name}o
	kRemotePort       // {REMOTE_PORT}e
	kServerName       // {SERVER_NAME}e
	kServerPort       // {SERVER_PORT}e
	kScheme           // {wsgi.url_scheme}e
	kConst            // {name}e from the process environment, or an empty CGI variable
)

// letters maps Gunicorn's one-letter atoms to kinds.
var letters = map[string]kind{
	"h": kRemoteHost, "l": kIdent, "u": kUser, "t": kTime, "r": kRequestLine,
	"m": kMethod, "U": kPath, "q": kQuery, "H": kProto, "s": kStatus,
	"B": kBytes, "b": kBytesCLF, "f": kReferer, "a": kUserAgent,
	"T": kSeconds, "D": kMicros, "M": kMillis, "L": kDecimal, "p": kPID,
}

// numeric atoms may use Python's %d conversion as well as %s.
var numeric = map[kind]bool{kStatus: true, kBytes: true, kSeconds: true, kMicros: true, kMillis: true}

// atom is one compiled piece of a format.
type atom struct {
	kind kind
	text string // literal text, header name, or a kConst value
	name string // the atom as written
	key  string // JSON key: the lower-cased name inside {…}
	obj  byte   // JSON object: 'i', 'o' or 'e'
}

// Format is a compiled access_log_format: the %(name)s string parsed once
// into a list of atoms, so that rendering a line is a walk over the list.
type Format struct {
	src   string
	atoms []atom
	json  bool
	// extra holds the {…}i, {…}o and {…}e atoms for JSON mode.
	extra   []atom
	useTime bool
	useUser bool
	pid     string
}

// Compile parses a Gunicorn access_log_format. Atoms are written
// %(name)s (or %(name)d for numeric ones); "%%" is a literal percent sign.
// Unlike Gunicorn, which prints "-" for a name it does not know, an
// unknown atom is an error naming it, so a typo is found at start-up.
func Compile(format string) (*Format, error) {
	return compile(format, false)
}

// CompileJSON compiles format for the JSON access log: each line is one
// JSON object with a named field for every letter atom, plus the
// {header}i, {header}o and {variable}e atoms that format names (so a
// format can add fields to the JSON log). The rest of format is ignored.
func CompileJSON(format string) (*Format, error) {
	return compile(format, true)
}

func compile(format string, jsonOut bool) (*Format, error) {
	f := &Format{src: format, json: jsonOut, pid: strconv.Itoa(os.Getpid())}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.atoms = append(f.atoms, atom{kind: kLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(format); i++ {
		ch := format[i]
		if ch != '%' {
			lit.WriteByte(ch)
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			lit.WriteByte('%')
			i++
			continue
		}
		if i+1 >= len(format) || format[i+1] != '(' {
			return nil, fmt.Errorf("access_log_format: %q at offset %d: atoms are written %%(name)s; use %%%% for a literal %%", format[i:min(i+4, len(format))], i)
		}
		end := strings.IndexByte(format[i+2:], ')')
		if end < 0 {
			return nil, fmt.Errorf("access_log_format: unclosed atom %q at offset %d", format[i:], i)
		}
		name := format[i+2 : i+2+end]
		conv := i + 2 + end + 1
		if conv >= len(format) {
			return nil, fmt.Errorf("access_log_format: atom %%(%s) at offset %d has no conversion (write %%(%s)s)", name, i, name)
		}
		a, err := parseAtom(name)
		if err != nil {
			return nil, fmt.Errorf("access_log_format: atom %%(%s)%c at offset %d: %w", name, format[conv], i, err)
		}
		switch format[conv] {
		case 's':
		case 'd':
			if !numeric[a.kind] {
				return nil, fmt.Errorf("access_log_format: atom %%(%s)d at offset %d: %%d needs a numeric atom (s, B, T, D, M); use %%(%s)s", name, i, name)
			}
		default:
			return nil, fmt.Errorf("access_log_format: atom %%(%s)%c at offset %d: conversion must be s (or d for numbers)", name, format[conv], i)
		}
		flush()
		f.atoms = append(f.atoms, a)
		if a.obj != 0 && !f.hasExtra(a) {
			f.extra = append(f.extra, a)
		}
		i = conv
	}
	flush()
	for _, a := range f.atoms {
		switch a.kind {
		case kTime:
			f.useTime = true
		case kUser:
			f.useUser = true
		}
	}
	if jsonOut {
		f.useTime, f.useUser = true, true
	}
	return f, nil
}

func (f *Format) hasExtra(a atom) bool {
	for _, x := range f.extra {
		if x.obj == a.obj && x.key == a.key {
			return true
		}
	}
	return false
}

// parseAtom resolves an atom name.
func parseAtom(name string) (atom, error) {
	if k, ok := letters[name]; ok {
		return atom{kind: k, name: name}, nil
	}
	if len(name) < 3 || name[0] != '{' || name[len(name)-2] != '}' {
		return atom{}, fmt.Errorf("unknown atom %q (known: h l u t r m U q H s B b f a T D M L p, {header}i, {header}o, {variable}e)", name)
	}
	inner := name[1 : len(name)-2]
	if inner == "" {
		return atom{}, fmt.Errorf("empty name in %q", name)
	}
	// Gunicorn matches these names case-insensitively.
	lower := strings.ToLower(inner)
	var a atom
	switch name[len(name)-1] {
	case 'i':
		a = atom{kind: kReqHeader, text: lower, name: name}
	case 'o':
		a = atom{kind: kRespHeader, text: lower, name: name}
	case 'e':
		a = envAtom(lower, name)
	default:
		return atom{}, fmt.Errorf("unknown atom %q: a {name} atom ends in i (request header), o (response header) or e (environment variable)", name)
	}
	a.key, a.obj = lower, name[len(name)-1]
	return a, nil
}

// envAtom maps a {variable}e atom to what it renders. Gunicorn looks the
// name up in the WSGI environ; asyncd has no environ, so the CGI variables
// Gunicorn puts there are computed from the request, and any other name is
// read from the process environment once, at start-up.
func envAtom(lower, name string) atom {
	a := atom{name: name}
	switch lower {
	case "request_method":
		a.kind = kMethod
	case "raw_uri":
		a.kind = kRequestLine // rendered as the target only; see renderTarget
		a.text = "target"
	case "path_info":
		a.kind = kPath
	case "query_string":
		a.kind = kQuery
	case "server_protocol":
		a.kind = kProto
	case "remote_addr":
		a.kind = kRemoteHost
	case "remote_port":
		a.kind = kRemotePort
	case "server_name":
		a.kind = kServerName
	case "server_port":
		a.kind = kServerPort
	case "wsgi.url_scheme":
		a.kind = kScheme
	case "content_type":
		a.kind, a.text = kReqHeader, "content-type"
	case "content_length":
		a.kind, a.text = kReqHeader, "content-length"
	case "script_name":
		a.kind, a.text = kConst, ""
	default:
		if h, ok := strings.CutPrefix(lower, "http_"); ok && h != "" {
			a.kind, a.text = kReqHeader, strings.ReplaceAll(h, "_", "-")
			return a
		}
		a.kind = kConst
		a.text = "-"
		for _, kv := range os.Environ() {
			if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, lower) {
				a.text = v
				break
			}
		}
	}
	return a
}

// String returns the format as written.
func (f *Format) String() string { return f.src }

// state is the per-shard scratch a line is rendered with: a clock that
// re-renders the time once per second, and a buffer for Basic-auth
// decoding. It is only used under its shard's lock.
type state struct {
	sec     int64
	clf     []byte // "[10/Oct/2000:13:55:36 -0700]"
	iso     []byte // "2000-10-10T13:55:36-07:00"
	scratch []byte // Basic-auth decoding (the user name points into it)
	path    []byte // the percent-decoded path
}

func (st *state) tick(now time.Time) {
	if s := now.Unix(); s != st.sec || st.clf == nil {
		st.sec = s
		st.clf = now.AppendFormat(st.clf[:0], "[02/Jan/2006:15:04:05 -0700]")
		st.iso = now.AppendFormat(st.iso[:0], time.RFC3339)
	}
}

// appendLine renders one line for c, newline included.
func (f *Format) appendLine(b []byte, st *state, c *engine.Ctx, took time.Duration, now time.Time) []byte {
	if f.useTime {
		st.tick(now)
	}
	var user []byte
	if f.useUser {
		user = basicUser(c.Header("Authorization"), &st.scratch)
	}
	if f.json {
		return f.appendJSON(b, st, c, took, user)
	}
	for i := range f.atoms {
		a := &f.atoms[i]
		if a.kind == kLiteral {
			b = append(b, a.text...)
			continue
		}
		b = f.appendAtom(b, a, st, c, took, user, false)
	}
	return append(b, '\n')
}

// appendAtom renders one atom, escaped for the text log or as a JSON
// value.
func (f *Format) appendAtom(b []byte, a *atom, st *state, c *engine.Ctx, took time.Duration, user []byte, js bool) []byte {
	esc := appendEscaped
	if js {
		esc = appendJSONString
	}
	switch a.kind {
	case kRequestLine, kMethod, kPath, kQuery, kProto:
		if len(c.Method()) == 0 {
			// A request the engine refused before its request line
			// parsed (garbage, a PROXY refusal, a timeout before the
			// line was whole): none of it is known, and an empty
			// "%(r)s" would read as a request of spaces.
			return dash(b, js)
		}
	}
	switch a.kind {
	case kRemoteHost:
		ip := c.RemoteAddr().Addr()
		if !ip.IsValid() {
			return dash(b, js)
		}
		if js {
			b = append(b, '"')
			b = ip.AppendTo(b)
			return append(b, '"')
		}
		return ip.AppendTo(b)
	case kIdent:
		return dash(b, js)
	case kUser:
		if user == nil {
			return dash(b, js)
		}
		return esc(b, user)
	case kTime:
		if js {
			b = append(b, '"')
			b = append(b, st.iso...)
			return append(b, '"')
		}
		return append(b, st.clf...)
	case kRequestLine:
		if a.text == "target" {
			return esc(b, c.Target())
		}
		if js {
			b = append(b, '"')
		}
		b = appendRaw(b, c.Method(), js)
		b = append(b, ' ')
		b = appendRaw(b, c.Target(), js)
		b = append(b, ' ')
		b = append(b, c.Proto()...)
		if js {
			b = append(b, '"')
		}
		return b
	case kMethod:
		return esc(b, c.Method())
	case kPath:
		st.path = percentDecode(st.path[:0], c.Path())
		return esc(b, st.path)
	case kQuery:
		return esc(b, c.Query())
	case kProto:
		if js {
			return appendJSONString(b, s2b(c.Proto()))
		}
		return append(b, c.Proto()...)
	case kStatus:
		return strconv.AppendInt(b, int64(c.Status()), 10)
	case kBytes, kBytesCLF:
		// Gunicorn's resp.sent: body bytes sent, head and chunk framing
		// excluded, streamed bodies included.
		return strconv.AppendInt(b, c.BodyBytesSent(), 10)
	case kReferer:
		return headerOrDash(b, c, "referer", js)
	case kUserAgent:
		return headerOrDash(b, c, "user-agent", js)
	case kSeconds:
		return strconv.AppendInt(b, int64(took/time.Second), 10)
	case kMicros:
		return strconv.AppendInt(b, int64(took/time.Microsecond), 10)
	case kMillis:
		return strconv.AppendInt(b, int64(took/time.Millisecond), 10)
	case kDecimal:
		return appendDecimalSeconds(b, took)
	case kPID:
		if js {
			return append(b, f.pid...)
		}
		b = append(b, '<')
		b = append(b, f.pid...)
		return append(b, '>')
	case kReqHeader:
		return headerOrDash(b, c, a.text, js)
	case kRespHeader:
		v := c.ResponseHeader(a.text)
		if v == nil {
			return dash(b, js)
		}
		return esc(b, v)
	case kRemotePort:
		ap := c.RemoteAddr()
		if !ap.IsValid() {
			return dash(b, js)
		}
		return quoteIf(strconv.AppendUint(quoteIf(b, js), uint64(ap.Port()), 10), js)
	case kServerName:
		host, _ := splitHost(c)
		return esc(b, host)
	case kServerPort:
		_, port := splitHost(c)
		return esc(b, port)
	case kScheme:
		return esc(b, s2b(c.Scheme()))
	case kConst:
		return esc(b, s2b(a.text))
	}
	return b
}

func quoteIf(b []byte, js bool) []byte {
	if js {
		return append(b, '"')
	}
	return b
}

// dash renders a missing value: "-" in text (as Gunicorn), null in JSON.
func dash(b []byte, js bool) []byte {
	if js {
		return append(b, "null"...)
	}
	return append(b, '-')
}

// headerOrDash renders the last request header named name (Gunicorn builds
// a dict from the header list, so the last one wins), or "-".
func headerOrDash(b []byte, c *engine.Ctx, name string, js bool) []byte {
	var v []byte
	found := false
	for _, h := range c.Headers() {
		if asciiEqualFold(h.Name, name) {
			v, found = h.Value, true
		}
	}
	if !found {
		return dash(b, js)
	}
	if js {
		return appendJSONString(b, v)
	}
	return appendEscaped(b, v)
}

// splitHost returns SERVER_NAME and SERVER_PORT as Gunicorn derives them:
// from the Host header, else the local address.
func splitHost(c *engine.Ctx) (host, port []byte) {
	h := c.Host()
	if len(h) == 0 {
		la := c.LocalAddr()
		if !la.IsValid() {
			return nil, nil
		}
		// Rare (HTTP/1.0 without Host): allocation is acceptable here.
		return []byte(la.Addr().String()), []byte(strconv.Itoa(int(la.Port())))
	}
	i := len(h) - 1
	for i >= 0 && h[i] >= '0' && h[i] <= '9' {
		i--
	}
	if i >= 0 && i < len(h)-1 && h[i] == ':' {
		return h[:i], h[i+1:]
	}
	if c.Scheme() == "https" {
		return h, s2b("443")
	}
	return h, s2b("80")
}

// appendDecimalSeconds renders d as Gunicorn's %(L)s: "%d.%06d" seconds.
func appendDecimalSeconds(b []byte, d time.Duration) []byte {
	us := int64(d / time.Microsecond)
	b = strconv.AppendInt(b, us/1e6, 10)
	b = append(b, '.')
	frac := us % 1e6
	for div := int64(100000); div > 0; div /= 10 {
		b = append(b, byte('0'+frac/div%10))
	}
	return b
}

// basicUser returns the user name of a Basic Authorization header as
// Gunicorn does (scheme matched case-insensitively, base64 decoded, the
// part before the first ':', valid UTF-8), or nil. It decodes into
// *scratch, so it does not allocate once scratch has grown.
func basicUser(auth []byte, scratch *[]byte) []byte {
	if len(auth) < 6 || !asciiEqualFold(auth[:5], "basic") || auth[5] != ' ' {
		return nil
	}
	tok := auth[6:]
	for len(tok) > 0 && (tok[0] == ' ' || tok[0] == '\t') {
		tok = tok[1:]
	}
	for len(tok) > 0 && (tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t') {
		tok = tok[:len(tok)-1]
	}
	need := base64.StdEncoding.DecodedLen(len(tok))
	if cap(*scratch) < need {
		*scratch = make([]byte, need)
	}
	dst := (*scratch)[:need]
	n, err := base64.StdEncoding.Decode(dst, tok)
	if err != nil {
		return nil
	}
	dec := dst[:n]
	for i, ch := range dec {
		if ch == ':' {
			dec = dec[:i]
			break
		}
	}
	if !utf8.Valid(dec) {
		return nil
	}
	return dec
}

// asciiEqualFold compares b with the lower-case ASCII string s, ignoring
// the case of b.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}
