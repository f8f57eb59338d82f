// Package probe checks that a server under benchmark answers the benchmark
// routes exactly as asyncd does (status, body, Content-Type, keep-alive),
// and waits for a server to start answering or for its port to free.
//
// The runner calls it (through cmd/probe) before measuring a server so a
// misconfigured peer is reported instead of measured. It owns only these
// checks; it must not start or stop servers.
package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/asyncd/asyncd/bench/peers/internal/peer"
)

// Route is one expected exchange.
type Route struct {
	Name     string
	Method   string
	Path     string
	Body     string // request body, sent with Content-Length
	Status   int
	WantBody string
	WantType string
	// MinTime is the least time the answer may take (the /delay route).
	MinTime time.Duration
}

// Routes are the benchmark routes by scenario name; pipeline, churn,
// conns1k and the plaintext load during delay use the plaintext route.
var Routes = map[string]Route{
	"plaintext": {Name: "plaintext", Method: "GET", Path: peer.PathPlaintext, Status: 200, WantBody: peer.PlaintextBody, WantType: peer.TypePlain},
	"json":      {Name: "json", Method: "GET", Path: peer.PathJSON, Status: 200, WantBody: peer.JSONBody, WantType: peer.TypeJSON},
	"post":      {Name: "post", Method: "POST", Path: peer.PathPost, Body: strings.Repeat("p", peer.PostBodySize), Status: 200, WantBody: peer.OKBody, WantType: peer.TypePlain},
	"delay":     {Name: "delay", Method: "GET", Path: peer.PathDelay, Status: 200, WantBody: peer.OKBody, WantType: peer.TypePlain, MinTime: peer.Delay * 9 / 10},
}

// RouteFor maps a scenario name to the route it exercises.
func RouteFor(scenario string) (Route, bool) {
	switch scenario {
	case "pipeline", "churn", "conns1k", "delay-plaintext":
		scenario = "plaintext"
	}
	r, ok := Routes[scenario]
	return r, ok
}

// Client speaks HTTP/1.1 over one keep-alive connection, so a check also
// proves the server keeps connections open across requests.
type Client struct {
	conn net.Conn
	br   *bufio.Reader
}

// Dial connects to addr.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &Client{conn: c, br: bufio.NewReader(c)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends r and checks the answer against it.
func (c *Client) Do(ctx context.Context, r Route) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(dl)
	}
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: bench\r\n", r.Method, r.Path)
	if r.Body != "" || r.Method == "POST" {
		req += fmt.Sprintf("Content-Type: application/octet-stream\r\nContent-Length: %d\r\n", len(r.Body))
	}
	req += "\r\n" + r.Body
	start := time.Now()
	if _, err := io.WriteString(c.conn, req); err != nil {
		return fmt.Errorf("%s %s: write: %w", r.Method, r.Path, err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", r.Method, r.Path, err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", r.Method, r.Path, err)
	}
	took := time.Since(start)
	var problems []string
	if resp.StatusCode != r.Status {
		problems = append(problems, fmt.Sprintf("status %d, want %d", resp.StatusCode, r.Status))
	}
	if string(body) != r.WantBody {
		problems = append(problems, fmt.Sprintf("body %q, want %q", truncate(body), r.WantBody))
	}
	if ct := resp.Header.Get("Content-Type"); ct != r.WantType {
		problems = append(problems, fmt.Sprintf("Content-Type %q, want %q", ct, r.WantType))
	}
	if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
		problems = append(problems, "protocol "+resp.Proto+", want HTTP/1.1")
	}
	if resp.Close {
		problems = append(problems, "server closes the keep-alive connection")
	}
	if len(resp.TransferEncoding) > 0 {
		problems = append(problems, fmt.Sprintf("Transfer-Encoding %v, want Content-Length", resp.TransferEncoding))
	}
	if took < r.MinTime {
		problems = append(problems, fmt.Sprintf("answered in %v, want at least %v", took, r.MinTime))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s %s: %s", r.Method, r.Path, strings.Join(problems, "; "))
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// Check runs every route twice over one connection (the second pass proves
// keep-alive) and returns the first mismatch.
func Check(ctx context.Context, addr string, routes []Route) error {
	c, err := Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for pass := 0; pass < 2; pass++ {
		for _, r := range routes {
			if err := c.Do(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// WaitReady polls addr until GET r answers correctly or ctx ends; the last
// error is returned on timeout so the caller can say why.
func WaitReady(ctx context.Context, addr string, r Route) error {
	var last error
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := Check(attempt, addr, []Route{r})
		cancel()
		if err == nil {
			return nil
		}
		// An attempt cut short by the overall deadline says less than the
		// one before it.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", addr, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitFree polls until addr can be listened on again (with SO_REUSEADDR,
// as every server under test binds), so the next server gets the port.
func WaitFree(ctx context.Context, addr string) error {
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln.Close()
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still in use: %w", addr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CheckPipelined writes n GET requests for r in one write, as the pipeline
// scenario does, and checks n answers come back in order.
func CheckPipelined(ctx context.Context, addr string, r Route, n int) error {
	c, err := Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(dl)
	}
	one := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: bench\r\n\r\n", r.Method, r.Path)
	if _, err := io.WriteString(c.conn, strings.Repeat(one, n)); err != nil {
		return fmt.Errorf("pipelined write: %w", err)
	}
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			return fmt.Errorf("pipelined answer %d of %d: %w", i+1, n, err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return fmt.Errorf("pipelined answer %d of %d: body: %w", i+1, n, err)
		}
		if resp.StatusCode != r.Status || string(body) != r.WantBody {
			return fmt.Errorf("pipelined answer %d of %d: %d %q, want %d %q", i+1, n, resp.StatusCode, truncate(body), r.Status, r.WantBody)
		}
	}
	return nil
}

// CheckClose sends r with "Connection: close", as the churn scenario does,
// and checks the answer says close and the server then closes.
func CheckClose(ctx context.Context, addr string, r Route) error {
	c, err := Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(dl)
	}
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n", r.Method, r.Path)
	if _, err := io.WriteString(c.conn, req); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return fmt.Errorf("Connection: close answer: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || string(body) != r.WantBody {
		return fmt.Errorf("Connection: close answer: body %q, %v", truncate(body), err)
	}
	if !resp.Close {
		return errors.New("answer to Connection: close does not say close")
	}
	if n, err := c.br.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("server kept the connection open after Connection: close (read %d, %v)", n, err)
	}
	return nil
}
