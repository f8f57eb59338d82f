package httpparse

import "strconv"

// Error is a rejection: the status the server must answer (then close the
// connection) and a short reason for the error log.
//
// Every error the package returns is a pointer to one of this file's
// package-level values, so rejecting allocates nothing.
type Error struct {
	Status int
	Reason string
}

// Error formats the status and reason for logs.
func (e *Error) Error() string {
	return "httpparse: " + strconv.Itoa(e.Status) + " " + e.Reason
}

func e400(reason string) *Error { return &Error{Status: 400, Reason: reason} }

// Request line (RFC 9112 §3).
var (
	errBareLF           = e400("bare LF line terminator")
	errBareCR           = e400("bare CR")
	errTooManyEmptyLine = e400("too many empty lines before the request line")
	errMethod           = e400("method is not a token")
	errMethodEmpty      = e400("empty method")
	errTargetEmpty      = e400("empty request-target")
	errTargetChar       = e400("invalid character in request-target")
	errTargetPercent    = e400("invalid percent-encoding in request-target")
	errTargetFragment   = e400("fragment in request-target")
	errTargetForm       = e400("request-target is not origin-, absolute-, authority- or asterisk-form")
	errTargetUserinfo   = e400("userinfo in request-target")
	errTargetHost       = e400("invalid authority in request-target")
	errAsteriskForm     = e400("asterisk-form is only allowed with OPTIONS")
	errConnectForm      = e400("CONNECT requires an authority-form target")
	errHTTP09           = e400("request line without HTTP version (HTTP/0.9)")
	errVersion          = e400("malformed HTTP version")
	errRequestLineWS    = e400("whitespace in request line")

	errRequestLineTooLong = &Error{Status: 414, Reason: "request line too long"}
	errVersionUnsupported = &Error{Status: 505, Reason: "HTTP major version not supported"}
)

// Field lines (RFC 9110 §5, RFC 9112 §5).
var (
	errWSAfterStartLine = e400("whitespace line after the request line")
	errObsFold          = e400("obsolete line folding")
	errWSBeforeColon    = e400("whitespace between field name and colon")
	errFieldName        = e400("field name is not a token")
	errFieldNameEmpty   = e400("empty field name")
	errFieldNoColon     = e400("field line without colon")
	errFieldValueNUL    = e400("NUL in field value")
	errFieldValueCTL    = e400("control character in field value")

	errFieldTooLarge = &Error{Status: 431, Reason: "field line too large"}
	errTooManyFields = &Error{Status: 431, Reason: "too many field lines"}
)

// Framing and routing fields (RFC 9112 §3.2, §6; RFC 9110 §7.2, §8.6, §10.1.1).
var (
	errHostMissing  = e400("HTTP/1.1 request without Host")
	errHostMultiple = e400("more than one Host field")
	errHostInvalid  = e400("invalid Host value")
	errHostEmpty    = e400("empty Host value")
	errHostList     = e400("Host value is a list")

	errCLInvalid  = e400("invalid Content-Length")
	errCLList     = e400("Content-Length is a list")
	errCLMultiple = e400("more than one Content-Length field")
	errCLOverflow = e400("Content-Length overflows")

	errTEInvalid      = e400("invalid Transfer-Encoding")
	errTEEmptyMember  = e400("empty member in Transfer-Encoding")
	errTEChunkedTwice = e400("chunked applied more than once")
	errTENotChunked   = e400("final transfer coding is not chunked")
	errTEHTTP10       = e400("Transfer-Encoding in an HTTP/1.0 request")
	errTEWithCL       = e400("both Transfer-Encoding and Content-Length")

	errTEUnsupported = &Error{Status: 501, Reason: "transfer coding not implemented"}
	errBodyTooLarge  = &Error{Status: 413, Reason: "body too large"}
	errExpectation   = &Error{Status: 417, Reason: "unsupported expectation"}
)

// Chunked body (RFC 9112 §7.1).
var (
	errChunkSize         = e400("invalid chunk size")
	errChunkSizeOverflow = e400("chunk size overflows")
	errChunkExtension    = e400("invalid chunk extension")
	errChunkExtTooLong   = e400("chunk extension too long")
	errChunkData         = e400("chunk data not followed by CRLF")
	errTrailerField      = e400("framing, routing or control field in trailer section")
)

// errInputShrunk reports a caller bug: ParseHead was given fewer bytes than
// it had already parsed for the same head.
var errInputShrunk = &Error{Status: 500, Reason: "parser input shrank between calls"}
