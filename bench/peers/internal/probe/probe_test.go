package probe

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/bench/peers/internal/peer"
)

// handler answers like asyncd unless a fault is injected.
func handler(fault string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctype, body, status := peer.TypePlain, peer.PlaintextBody, 200
		switch r.URL.Path {
		case peer.PathJSON:
			ctype, body = peer.TypeJSON, peer.JSONBody
		case peer.PathPost:
			b, _ := io.ReadAll(r.Body)
			if len(b) != peer.PostBodySize {
				status = 400
			}
			body = peer.OKBody
		case peer.PathDelay:
			if fault != "fast delay" {
				time.Sleep(peer.Delay)
			}
			body = peer.OKBody
		}
		switch fault {
		case "charset":
			ctype += "; charset=utf-8"
		case "status":
			status = 201
		case "body":
			body += "\n"
		case "close":
			w.Header().Set("Connection", "close")
		case "chunked":
			w.Header().Set("Content-Type", ctype)
			w.WriteHeader(status)
			w.(http.Flusher).Flush() // forces chunked encoding
			_, _ = io.WriteString(w, body)
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func TestCheck(t *testing.T) {
	all := []Route{Routes["plaintext"], Routes["json"], Routes["post"], Routes["delay"]}
	tests := []struct {
		fault   string
		wantErr string // substring; empty means success
	}{
		{"", ""},
		{"charset", "Content-Type"},
		{"status", "status 201"},
		{"body", "body"},
		{"close", "closes the keep-alive"},
		{"chunked", "Transfer-Encoding"},
		{"fast delay", "at least"},
	}
	for _, tt := range tests {
		t.Run("fault="+tt.fault, func(t *testing.T) {
			srv := httptest.NewServer(handler(tt.fault))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := Check(ctx, strings.TrimPrefix(srv.URL, "http://"), all)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestRouteFor(t *testing.T) {
	tests := []struct {
		scenario, wantPath string
		ok                 bool
	}{
		{"plaintext", peer.PathPlaintext, true},
		{"pipeline", peer.PathPlaintext, true},
		{"churn", peer.PathPlaintext, true},
		{"conns1k", peer.PathPlaintext, true},
		{"delay-plaintext", peer.PathPlaintext, true},
		{"json", peer.PathJSON, true},
		{"post", peer.PathPost, true},
		{"delay", peer.PathDelay, true},
		{"nope", "", false},
	}
	for _, tt := range tests {
		r, ok := RouteFor(tt.scenario)
		if ok != tt.ok || r.Path != tt.wantPath {
			t.Errorf("RouteFor(%q) = %q %v, want %q %v", tt.scenario, r.Path, ok, tt.wantPath, tt.ok)
		}
	}
}

// TestWaitReadyAndFree starts a server late, waits for it, stops it and
// waits for the port to free, over a real socket.
func TestWaitReadyAndFree(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv := &http.Server{Handler: handler("")}
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("late listen: %v", err)
			return
		}
		_ = srv.Serve(ln)
	}()
	if err := WaitReady(ctx, addr, Routes["plaintext"]); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	// While the server listens the port is busy.
	busy, cancelBusy := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelBusy()
	if err := WaitFree(busy, addr); err == nil {
		t.Fatal("WaitFree succeeded while the server still listens")
	}
	_ = srv.Close()
	if err := WaitFree(ctx, addr); err != nil {
		t.Fatalf("WaitFree after close: %v", err)
	}
}

func TestWaitReadyTimeout(t *testing.T) {
	srv := httptest.NewServer(handler("status"))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := WaitReady(ctx, strings.TrimPrefix(srv.URL, "http://"), Routes["plaintext"])
	if err == nil || !strings.Contains(err.Error(), "status 201") {
		t.Fatalf("WaitReady = %v, want a not-ready error naming the mismatch", err)
	}
}

// rawServer answers every connection with handle over a real socket.
func rawServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

const plainAnswer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"

func TestCheckPipelinedAndClose(t *testing.T) {
	good := strings.TrimPrefix(httptest.NewServer(handler("")).URL, "http://")
	// answersOnce answers the first request of a connection only, and never
	// closes: it breaks both pipelining and Connection: close.
	answersOnce := rawServer(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil {
			c.Close()
			return
		}
		_, _ = io.WriteString(c, plainAnswer)
		_, _ = io.Copy(io.Discard, c)
	})
	// saysCloseButStays marks the answer close but keeps the socket open.
	saysCloseButStays := rawServer(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil {
			c.Close()
			return
		}
		_, _ = io.WriteString(c, strings.Replace(plainAnswer, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1))
		_, _ = io.Copy(io.Discard, c)
	})
	tests := []struct {
		name    string
		check   func(ctx context.Context, addr string) error
		addr    string
		wantErr string
	}{
		{"pipelined ok", func(ctx context.Context, a string) error { return CheckPipelined(ctx, a, Routes["plaintext"], 16) }, good, ""},
		{"pipelined broken", func(ctx context.Context, a string) error { return CheckPipelined(ctx, a, Routes["plaintext"], 16) }, answersOnce, "answer 2 of 16"},
		{"close ok", func(ctx context.Context, a string) error { return CheckClose(ctx, a, Routes["plaintext"]) }, good, ""},
		{"close not said", func(ctx context.Context, a string) error { return CheckClose(ctx, a, Routes["plaintext"]) }, answersOnce, "does not say close"},
		{"close not done", func(ctx context.Context, a string) error { return CheckClose(ctx, a, Routes["plaintext"]) }, saysCloseButStays, "kept the connection open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := tt.check(ctx, tt.addr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}
