package httpparse

// Defaults for Limits fields left at zero.
const (
	// DefaultMaxRequestLine is Gunicorn's limit_request_line.
	DefaultMaxRequestLine = 4094
	// DefaultMaxHeaderCount is Gunicorn's limit_request_fields.
	DefaultMaxHeaderCount = 100
	// DefaultMaxFieldSize is Gunicorn's limit_request_field_size.
	DefaultMaxFieldSize = 8190
	// DefaultMaxBodySize (100 MiB) bounds a declared Content-Length or a
	// decoded chunked body; large uploads should raise it deliberately.
	DefaultMaxBodySize int64 = 100 << 20
	// DefaultMaxChunkExtension bounds the bytes after the chunk size on one
	// chunk line; nothing uses extensions, so they only need to be skipped.
	DefaultMaxChunkExtension = 4096
)

// MaxLeadingEmptyLines is how many empty lines (CRLF) may precede a request
// line. RFC 9112 §2.2 says a server SHOULD ignore at least one; a bound keeps
// a peer from holding a connection with an endless stream of CRLFs.
const MaxLeadingEmptyLines = 8

// Limits bound what one request may use. Zero (or negative) fields take the
// defaults above.
type Limits struct {
	MaxRequestLine    int   // bytes in the request line excluding CRLF; over -> 414
	MaxHeaderCount    int   // header (or trailer) field lines; over -> 431
	MaxFieldSize      int   // bytes in one field line (name ':' value) excluding CRLF; over -> 431
	MaxBodySize       int64 // declared Content-Length or decoded chunked body; over -> 413
	MaxChunkExtension int   // bytes after the chunk size on one chunk line; over -> 400
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxRequestLine:    DefaultMaxRequestLine,
		MaxHeaderCount:    DefaultMaxHeaderCount,
		MaxFieldSize:      DefaultMaxFieldSize,
		MaxBodySize:       DefaultMaxBodySize,
		MaxChunkExtension: DefaultMaxChunkExtension,
	}
}

// withDefaults fills zero or negative fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	if l.MaxRequestLine <= 0 {
		l.MaxRequestLine = DefaultMaxRequestLine
	}
	if l.MaxHeaderCount <= 0 {
		l.MaxHeaderCount = DefaultMaxHeaderCount
	}
	if l.MaxFieldSize <= 0 {
		l.MaxFieldSize = DefaultMaxFieldSize
	}
	if l.MaxBodySize <= 0 {
		l.MaxBodySize = DefaultMaxBodySize
	}
	if l.MaxChunkExtension <= 0 {
		l.MaxChunkExtension = DefaultMaxChunkExtension
	}
	return l
}
