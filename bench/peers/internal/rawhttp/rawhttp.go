// Package rawhttp frames HTTP/1.1 requests just enough for the "raw" peers
// (gnet and gain) to answer each complete request with a fixed response:
// it finds the end of the header block, skips a Content-Length body and
// notices "Connection: close". It does not parse or validate HTTP; that is
// the point, the raw peers measure the upper bound of their event loop.
//
// It owns only framing and the fixed responses; it must not import any
// network framework, so both raw peers share it.
package rawhttp

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/asyncd/asyncd/bench/peers/internal/peer"
)

// Limits that keep a misbehaving client from growing a connection buffer
// without bound.
const (
	// MaxHeaderBytes is the longest header block accepted before the
	// connection is treated as broken.
	MaxHeaderBytes = 64 << 10
	// MaxBodyBytes is the largest Content-Length accepted.
	MaxBodyBytes = 1 << 20
)

// Errors returned by Next; the caller closes the connection on any of them.
var (
	ErrHeaderTooLarge = errors.New("rawhttp: header block too large")
	ErrBadLength      = errors.New("rawhttp: bad Content-Length")
)

// Kind selects which fixed response answers a request.
type Kind uint8

// Response kinds. Everything that is not GET /json or POST /post gets the
// plaintext answer, which is what "fixed response" means for a raw server.
const (
	KindPlaintext Kind = iota
	KindJSON
	KindOK
)

// Request is one complete request found at the head of a buffer.
type Request struct {
	// Len is the number of bytes the request occupies, body included; 0
	// means the buffer does not yet hold a complete request.
	Len int
	// Kind picks the response.
	Kind Kind
	// Close is set when the request carries "Connection: close".
	Close bool
}

var (
	crlfcrlf      = []byte("\r\n\r\n")
	prefixJSON    = []byte("GET " + peer.PathJSON)
	prefixPost    = []byte("POST " + peer.PathPost)
	hdrLength     = []byte("content-length:")
	hdrConnection = []byte("connection:")
	tokenClose    = []byte("close")
)

// Next returns the first complete request in buf. A zero Len with a nil
// error means more bytes are needed. It never allocates.
func Next(buf []byte) (Request, error) {
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		if len(buf) > MaxHeaderBytes {
			return Request{}, ErrHeaderTooLarge
		}
		return Request{}, nil
	}
	head := buf[:end]
	req := Request{Kind: kindOf(head)}
	body := 0
	// Walk header lines; the request line is skipped by starting after the
	// first CRLF.
	for i := bytes.IndexByte(head, '\n'); i >= 0 && i < len(head); {
		line := head[i+1:]
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
			i += j + 1
		} else {
			i = len(head)
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		switch {
		case hasPrefixFold(line, hdrLength):
			n, err := parseLength(line[len(hdrLength):])
			if err != nil {
				return Request{}, err
			}
			body = n
		case hasPrefixFold(line, hdrConnection):
			req.Close = containsFold(line[len(hdrConnection):], tokenClose)
		}
	}
	total := end + len(crlfcrlf) + body
	if total > len(buf) {
		return Request{}, nil
	}
	req.Len = total
	return req, nil
}

// kindOf looks only at the request line's method and path prefix.
func kindOf(head []byte) Kind {
	switch {
	case pathIs(head, prefixJSON):
		return KindJSON
	case pathIs(head, prefixPost):
		return KindOK
	}
	return KindPlaintext
}

// pathIs reports whether head starts with prefix followed by the end of the
// path (space or query), so /jsonx is not /json.
func pathIs(head, prefix []byte) bool {
	if !bytes.HasPrefix(head, prefix) || len(head) == len(prefix) {
		return false
	}
	c := head[len(prefix)]
	return c == ' ' || c == '?'
}

func parseLength(v []byte) (int, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0, ErrBadLength
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, ErrBadLength
		}
		n = n*10 + int(c-'0')
		if n > MaxBodyBytes {
			return 0, ErrBadLength
		}
	}
	return n, nil
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// hasPrefixFold compares ASCII case-insensitively; prefix must be lower case.
func hasPrefixFold(s, prefix []byte) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i, c := range prefix {
		if lower(s[i]) != c {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains the lower-case token sub.
func containsFold(s, sub []byte) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if hasPrefixFold(s[i:], sub) {
			return true
		}
	}
	return false
}

// Responder appends the fixed responses. The Date header is refreshed once
// a second by a ticker, as every fast Go server does, so appending never
// formats time on the hot path.
type Responder struct {
	head string // "HTTP/1.1 200 OK\r\nServer: NAME\r\nDate: "
	date atomic.Pointer[[]byte]
	stop chan struct{}
}

// Fixed tails after the Date value, one per Kind, without and with
// "Connection: close".
var tails = [2][3]string{
	{
		tail(peer.TypePlain, peer.PlaintextBody, false),
		tail(peer.TypeJSON, peer.JSONBody, false),
		tail(peer.TypePlain, peer.OKBody, false),
	},
	{
		tail(peer.TypePlain, peer.PlaintextBody, true),
		tail(peer.TypeJSON, peer.JSONBody, true),
		tail(peer.TypePlain, peer.OKBody, true),
	},
}

func tail(ctype, body string, closing bool) string {
	conn := ""
	if closing {
		conn = "Connection: close\r\n"
	}
	return fmt.Sprintf("\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s", ctype, len(body), conn, body)
}

// NewResponder returns a Responder whose answers carry "Server: server" and
// starts its date ticker; Close stops it.
func NewResponder(server string) *Responder {
	r := &Responder{
		head: "HTTP/1.1 200 OK\r\nServer: " + server + "\r\nDate: ",
		stop: make(chan struct{}),
	}
	r.setDate(time.Now())
	go r.tick()
	return r
}

func (r *Responder) setDate(t time.Time) {
	d := t.UTC().AppendFormat(make([]byte, 0, len(http.TimeFormat)), http.TimeFormat)
	r.date.Store(&d)
}

func (r *Responder) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			r.setDate(now)
		case <-r.stop:
			return
		}
	}
}

// Close stops the date ticker.
func (r *Responder) Close() { close(r.stop) }

// Append appends the response for req to dst. It does not allocate when dst
// has room.
func (r *Responder) Append(dst []byte, req Request) []byte {
	c := 0
	if req.Close {
		c = 1
	}
	dst = append(dst, r.head...)
	dst = append(dst, *r.date.Load()...)
	return append(dst, tails[c][req.Kind]...)
}

// Answer frames every complete request in in, appends their responses to
// out and returns the bytes consumed from in. closing is set when a
// request asked to close; requests after it are not answered. On a framing
// error the caller must close the connection.
func (r *Responder) Answer(out, in []byte) (_ []byte, consumed int, closing bool, err error) {
	for {
		req, err := Next(in[consumed:])
		if err != nil {
			return out, consumed, true, err
		}
		if req.Len == 0 {
			return out, consumed, false, nil
		}
		consumed += req.Len
		out = r.Append(out, req)
		if req.Close {
			return out, consumed, true, nil
		}
	}
}
