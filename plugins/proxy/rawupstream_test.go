package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/enginetest"
)

// upRequest is one request a rawUpstream parsed.
type upRequest struct {
	Conn             int // which upstream connection carried it (1-based)
	Method, Target   string
	Proto            string
	Header           http.Header
	TransferEncoding []string
	ContentLength    int64
	Body             string
	Trailer          http.Header
	BodyErr          string
}

// rawUpstream is an upstream as the proxy's peer sees the wire: a TCP
// listener that parses every request on every connection with net/http's
// request parser, the way a keep-alive upstream server would, records each
// one, and answers it with respond. It shows exactly how many requests the
// proxy's bytes amount to, which an http.Handler behind an httptest server
// would also show, but here nothing is hidden by a server's own checks.
type rawUpstream struct {
	t  *testing.T
	ln net.Listener
	// respond writes the answer to the n-th request (1-based) on c; nil
	// answers "200 OK" with the body "upstream <n> <method> <target>".
	respond func(c net.Conn, n int, r *upRequest)

	mu    sync.Mutex // guards reqs, conns and open
	reqs  []upRequest
	conns int
	open  map[net.Conn]bool
}

// newRawUpstream starts a rawUpstream; it stops when the test ends.
func newRawUpstream(t *testing.T, respond func(c net.Conn, n int, r *upRequest)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{t: t, ln: ln, respond: respond, open: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns++
			id := u.conns
			u.open[c] = true
			u.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				u.serve(c, id)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for c := range u.open {
			c.Close() // the proxy's pooled connections outlive the server
		}
		u.mu.Unlock()
		wg.Wait()
	})
	return u
}

// URL is the upstream's base URL.
func (u *rawUpstream) URL() string { return "http://" + u.ln.Addr().String() }

// serve parses requests on c until it closes or a request does not parse.
func (u *rawUpstream) serve(c net.Conn, id int) {
	defer func() {
		c.Close()
		u.mu.Lock()
		delete(u.open, c)
		u.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		r := upRequest{Conn: id, Method: req.Method, Target: req.RequestURI, Proto: req.Proto,
			Header: req.Header, TransferEncoding: req.TransferEncoding, ContentLength: req.ContentLength}
		body, err := io.ReadAll(req.Body)
		r.Body = string(body)
		if err != nil {
			r.BodyErr = err.Error()
		}
		r.Trailer = req.Trailer
		u.mu.Lock()
		u.reqs = append(u.reqs, r)
		n := len(u.reqs)
		u.mu.Unlock()
		if u.respond != nil {
			u.respond(c, n, &r)
		} else {
			b := fmt.Sprintf("upstream %d %s %s", n, r.Method, r.Target)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		}
		if err != nil {
			return
		}
		// Connection: close is not obeyed: an upstream that parses
		// everything the proxy sends shows any request hidden in it.
	}
}

// waitClosed waits until the proxy closed every connection to u and each
// was parsed to its end, and reports whether that happened in time.
func (u *rawUpstream) waitClosed(timeout time.Duration) bool {
	return enginetest.Eventually(timeout, func() bool {
		u.mu.Lock()
		defer u.mu.Unlock()
		return len(u.open) == 0
	})
}

// requests returns what the upstream parsed so far.
func (u *rawUpstream) requests() []upRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upRequest(nil), u.reqs...)
}

// describe lists requests for a failure message.
func describeUp(rs []upRequest) string {
	var b strings.Builder
	for i, r := range rs {
		fmt.Fprintf(&b, "\n  %d: conn %d %s %s te=%q cl=%d body=%q", i+1, r.Conn, r.Method, r.Target,
			r.TransferEncoding, r.ContentLength, r.Body)
	}
	return b.String()
}
