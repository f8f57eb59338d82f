// Package httpparse is asyncd's strict, incremental, zero-allocation
// HTTP/1.1 request parser (RFC 9110, RFC 9112).
//
// It owns the syntax and framing decisions for a request head (request line,
// header fields, Host, Content-Length, Transfer-Encoding, Connection, Expect)
// and for a chunked request body (chunk lines, extensions, trailers). Every
// rejection is an *Error carrying the status the server must answer.
//
// It must not touch sockets, buffers owned by the engine, routing or
// responses: the engine feeds it bytes and decides what to do with the
// verdict. Parsed slices point into the caller's input (ParseHead) or into the
// decoder's own trailer buffer (ChunkedDecoder); nothing is copied on the hot
// path and nothing allocates once a Request, Parser and ChunkedDecoder exist.
//
// The decisions behind the strictness (bare LF, obs-fold, HTTP/1.2, leading
// empty lines, duplicate Content-Length, trailers, limits, statuses) are
// listed in docs/conformance.md.
package httpparse
