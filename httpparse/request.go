package httpparse

// Header is one field line. Name is as sent; Value is trimmed of leading and
// trailing OWS (SP/HTAB) and otherwise byte-exact (obs-text is kept).
type Header struct{ Name, Value []byte }

// TargetForm is the form of a request-target (RFC 9112 §3.2).
type TargetForm uint8

// The four request-target forms.
const (
	OriginForm    TargetForm = iota // "/path?query"
	AbsoluteForm                    // "http://host/path?query"
	AuthorityForm                   // "host:port", CONNECT only
	AsteriskForm                    // "*", OPTIONS only
)

// Request is a parsed request head. Its slices point into the buffer given to
// ParseHead and stay valid as long as that buffer does.
type Request struct {
	Method []byte     // a token, case-sensitive
	Target []byte     // request-target exactly as sent
	Form   TargetForm // which of the four forms Target is
	// Path is the part of an origin-form target before '?', the path of an
	// absolute-form target (empty if it has none), and empty for
	// authority- and asterisk-form.
	Path []byte
	// Query follows the first '?' of an origin- or absolute-form target,
	// without it; nil when there is no '?'.
	Query []byte
	// Host is the effective authority: the authority of an absolute-form
	// target (it overrides the Host field, RFC 9112 §3.2.2), the target of
	// CONNECT, else the Host field value; nil for HTTP/1.0 without Host.
	Host []byte
	// Major and Minor are the version as sent: Major is always 1, Minor 0..9.
	// Any Minor >= 1 is processed with HTTP/1.1 semantics (RFC 9110 §2.5: a
	// server treats a higher minor version as the highest it supports).
	Major, Minor uint8
	// Headers holds all field lines in order. Its backing array (capacity
	// Limits.MaxHeaderCount) is allocated by the first ParseHead and reused.
	Headers       []Header
	ContentLength int64 // declared body length; -1 when there is no Content-Length
	Chunked       bool  // Transfer-Encoding: chunked frames the body (ContentLength is then -1)
	// KeepAlive reports a persistent connection: HTTP/1.1 unless Connection
	// has "close"; HTTP/1.0 only with "keep-alive" (and no "close").
	KeepAlive bool
	// Expect100 is set for "Expect: 100-continue" on HTTP/1.1 (RFC 9110
	// §10.1.1 says to ignore it on HTTP/1.0). Any other expectation is
	// rejected with 417 instead.
	Expect100 bool
	// Upgrade is set when Connection has the "upgrade" option and an Upgrade
	// field is present, on HTTP/1.1 only (RFC 9110 §7.8).
	Upgrade bool
	// HeadLen counts the head's bytes: skipped leading empty lines, request
	// line, field lines and the final empty line. The body starts there.
	HeadLen int
}

// versions are constant strings so that Version allocates nothing.
var versions = [10]string{"HTTP/1.0", "HTTP/1.1", "HTTP/1.2", "HTTP/1.3", "HTTP/1.4",
	"HTTP/1.5", "HTTP/1.6", "HTTP/1.7", "HTTP/1.8", "HTTP/1.9"}

// Version returns the version as sent, "HTTP/1.1" for example, or "" before
// a request line was parsed.
func (r *Request) Version() string {
	if r.Major != 1 || r.Minor > 9 {
		return ""
	}
	return versions[r.Minor]
}

// Header returns the value of the first field named name (ASCII
// case-insensitive) and whether there is one.
func (r *Request) Header(name string) ([]byte, bool) {
	for i := range r.Headers {
		h := &r.Headers[i]
		if len(h.Name) != len(name) {
			continue
		}
		j := 0
		for j < len(name) && lowerTab[h.Name[j]] == lowerTab[name[j]] {
			j++
		}
		if j == len(name) {
			return h.Value, true
		}
	}
	return nil, false
}

// Reset clears r for the next request and keeps the Headers backing array.
func (r *Request) Reset() {
	h := r.Headers[:0]
	*r = Request{Headers: h, ContentLength: -1}
}
