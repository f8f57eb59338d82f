package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUnsolicitedResponsesRateLimited runs the binary with a proxy route to
// an upstream that, after answering each request, sends a response nobody
// asked for. net/http's Transport logs "Unsolicited response received on
// idle HTTP channel" through the log package for each one and drops the
// connection; asyncd's error log must carry only the first few of them
// (loglimit's burst), at WARN, not one line per request.
func TestUnsolicitedResponsesRateLimited(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The upstream answers one request per connection, then, once the
	// test says the client has its answer (the connection is idle in the
	// proxy's pool), sends the unsolicited response and waits for the
	// proxy to drop the connection: the Transport logs before it closes.
	unsolicit := make(chan struct{})
	dropped := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			req, err := http.ReadRequest(br)
			if err == nil {
				io.Copy(io.Discard, req.Body)                                       //nolint:errcheck
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") //nolint:errcheck
				<-unsolicit
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nunwanted!") //nolint:errcheck
				c.SetReadDeadline(time.Now().Add(waitFor))                                 //nolint:errcheck
				io.Copy(io.Discard, br)                                                    //nolint:errcheck
			}
			c.Close()
			dropped <- struct{}{}
		}
	}()
	addr := freePort(t)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
workers: 1
routes:
  - {path: /api/, handler: proxy, options: {upstream: "http://%s"}}
`, addr, ln.Addr()))
	const sent = 12
	for i := range sent {
		r := exchange(t, "", addr, fmt.Sprintf("GET /api/%d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", i))
		if r.status != 200 || r.body != "ok" {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
		unsolicit <- struct{}{}
		select {
		case <-dropped:
		case <-time.After(waitFor):
			t.Fatalf("request %d: the proxy kept the connection that carried an unsolicited response", i)
		}
	}
	log := p.log()
	n := strings.Count(log, "Unsolicited response received on idle HTTP channel")
	if n != 5 {
		t.Errorf("%d unsolicited responses logged %d lines, want the first 5 (a summary follows within a minute)", sent, n)
	}
	if !strings.Contains(log, "level=WARN msg=\"Unsolicited response") {
		t.Errorf("the Transport's line is not a WARN record of the error log:\n%s", log)
	}
}
