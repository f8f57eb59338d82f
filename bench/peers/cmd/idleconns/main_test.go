package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMeasure opens real keep-alive connections to an in-process server
// and checks every one is counted; this process's own tree is measured, so
// memory must grow by something per connection (server goroutines and
// buffers plus the client side).
func TestMeasure(t *testing.T) {
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		idle        time.Duration // server idle timeout; 0 means none
		n           int
		wantConns   int
		wantFailed  int
		wantErrText string
	}{
		{
			name:      "keep-alive server",
			handler:   func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("Hello, World!")) },
			n:         200,
			wantConns: 200,
		},
		{
			name: "server that closes",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Connection", "close")
				_, _ = w.Write([]byte("bye"))
			},
			n:           20,
			wantErrText: "want 200 keep-alive",
		},
		{
			name:        "server that drops idle connections",
			handler:     func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("Hello, World!")) },
			idle:        5 * time.Millisecond,
			n:           20,
			wantErrText: "closed all 20 idle connections",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(tt.handler)
			srv.Config.IdleTimeout = tt.idle
			srv.Start()
			defer srv.Close()
			res, err := Measure(context.Background(), Config{
				Addr:        strings.TrimPrefix(srv.URL, "http://"),
				PID:         os.Getpid(),
				N:           tt.n,
				Path:        "/plaintext",
				Settle:      50 * time.Millisecond,
				Concurrency: 16,
				Timeout:     5 * time.Second,
			})
			if tt.wantErrText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrText) {
					t.Fatalf("err = %v, want %q", err, tt.wantErrText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Conns != tt.wantConns || res.Failed != tt.wantFailed || res.Dropped != 0 {
				t.Fatalf("result %+v, want %d conns, %d failed", res, tt.wantConns, tt.wantFailed)
			}
			if res.RSSBefore <= 0 || res.RSSAfter <= 0 {
				t.Fatalf("RSS not read: %+v", res)
			}
		})
	}
}
