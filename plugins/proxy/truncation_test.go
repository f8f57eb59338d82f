package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// TestUpstreamDiesMidBody is issue 16's truncated responses: an upstream
// that dies part way through its body must reach the client as a response
// that ends with the connection closed before its framing completes (no
// last chunk, fewer bytes than the Content-Length), never as a complete
// shorter one on a connection kept alive. The abort is not an ERROR with a
// stack in the log.
func TestUpstreamDiesMidBody(t *testing.T) {
	part := strings.Repeat("x", 1000)
	big := strings.Repeat("y", 100<<10) // past the adapter's 32 KiB: streaming already
	tests := []struct {
		name, head, sent string
		chunked          bool
	}{
		{"Content-Length", "Content-Length: 5000\r\n", part, false},
		{"Content-Length, streaming", fmt.Sprintf("Content-Length: %d\r\n", 2*len(big)), big, false},
		{"chunked", "Transfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n%s\r\n", len(part), part), true},
		{"chunked, in the middle of a chunk", "Transfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n%s", 2*len(part), part), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newRawUpstream(t, func(c net.Conn, _ int, _ *upRequest) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"+tt.head+"\r\n"+tt.sent) //nolint:errcheck
				c.(*net.TCPConn).SetLinger(0)                                                               //nolint:errcheck
				c.Close()
			})
			forBackends(t, func(t *testing.T, b loop.Backend) {
				var logs lockedLog
				s := enginetest.Start(t, b, engine.Config{
					Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: build(t, "/", map[string]any{"upstream": up.URL()})}),
					Loops:  2, Executor: goExec{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				c := s.Dial(t)
				io.WriteString(c, "GET /file HTTP/1.1\r\nHost: h\r\n\r\n") //nolint:errcheck
				c.SetReadDeadline(time.Now().Add(10 * time.Second))        //nolint:errcheck
				var raw bytes.Buffer
				_, err := io.Copy(&raw, c)
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("the connection was kept open after a cut response: %.300q", raw.Bytes())
				}
				resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw.Bytes())), nil)
				if err != nil {
					t.Fatalf("%v: %.300q", err, raw.Bytes())
				}
				body, err := io.ReadAll(resp.Body)
				if err != io.ErrUnexpectedEOF {
					t.Errorf("the client read %d body bytes and then %v: the response looks complete (Content-Length %d, Transfer-Encoding %q)",
						len(body), err, resp.ContentLength, resp.TransferEncoding)
				}
				if chunked := len(resp.TransferEncoding) > 0; resp.StatusCode != 200 || chunked != tt.chunked {
					t.Errorf("status %d, chunked %v, want 200 framed as the upstream framed it", resp.StatusCode, chunked)
				}
				if strings.Contains(logs.String(), "level=ERROR") {
					t.Errorf("the abort was logged at ERROR:\n%.500s", logs.String())
				}
			})
		})
	}
}

// lockedLog is a log written by the engine's goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
