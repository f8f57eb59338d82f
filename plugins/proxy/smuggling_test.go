package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// TestSmugglingThroughProxy is issue 16's attack: a request hidden in a
// chunked body whose Transfer-Encoding the parser and the upstream could
// read differently. Whatever the client sends, the upstream must parse
// exactly the requests the proxy accepted, framed as the client framed
// them, and the next client's request on the pooled upstream connection
// must get its own answer.
func TestSmugglingThroughProxy(t *testing.T) {
	hidden := "GET /internal HTTP/1.1\r\nHost: x\r\n\r\n"
	body := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(hidden), hidden)
	tests := []struct {
		name, te string
		status   int // 200: forwarded as one chunked request
	}{
		{"chunked", "Transfer-Encoding: chunked\r\n", 200},
		{"CHUNKED", "Transfer-Encoding: CHUNKED\r\n", 200},
		{"OWS around chunked", "Transfer-Encoding: \t chunked \t\r\n", 200},
		{"trailing comma", "Transfer-Encoding: chunked,\r\n", 400},
		{"leading comma", "Transfer-Encoding: ,chunked\r\n", 400},
		{"leading comma and space", "Transfer-Encoding: , chunked\r\n", 400},
		{"empty members around", "Transfer-Encoding: , chunked ,\r\n", 400},
		{"empty line then chunked", "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n", 400},
		{"chunked then empty line", "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n", 400},
		{"gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n", 501},
		{"chunked, identity", "Transfer-Encoding: chunked, identity\r\n", 400},
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		up := newRawUpstream(t, nil)
		s := serve(t, b, &engine.Route{Path: "/api/", Handler: build(t, "/api/", map[string]any{"upstream": up.URL()})})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(up.requests())
				resps, closed := s.Exchange(t, "POST /api/x HTTP/1.1\r\nHost: h\r\n"+tt.te+"\r\n"+body, 1)
				// A second client on the pooled upstream connection.
				next := one(t, s, "GET /api/next HTTP/1.1\r\nHost: h\r\n\r\n")
				got := up.requests()[before:]
				for _, r := range got {
					if r.Target == "/internal" {
						t.Fatalf("the hidden request reached the upstream:%s", describeUp(got))
					}
				}
				want := 2
				if tt.status != 200 {
					want = 1
				}
				if len(got) != want {
					t.Fatalf("the upstream parsed %d requests, want %d:%s", len(got), want, describeUp(got))
				}
				if tt.status == 200 {
					r := got[0]
					if r.Method != "POST" || r.Target != "/api/x" || r.Body != hidden ||
						len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" {
						t.Errorf("forwarded as%s\nwant one chunked POST /api/x carrying the hidden request as its body", describeUp(got[:1]))
					}
				}
				if last := got[len(got)-1]; last.Target != "/api/next" || !strings.HasSuffix(string(next.Body), "GET /api/next") {
					t.Errorf("the next client got %q; the upstream saw%s", next.Body, describeUp(got))
				}
				if len(resps) != 1 || resps[0].StatusCode != tt.status {
					t.Fatalf("answers %s, want %d", statusesOf(resps), tt.status)
				}
				if tt.status != 200 && !closed {
					t.Errorf("connection left open after %d", tt.status)
				}
			})
		}
	})
}

func statusesOf(rs []*enginetest.Response) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprint(r.StatusCode))
	}
	return "[" + strings.Join(out, " ") + "]"
}
