package serving_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/internal/serving"
)

// TestChunkExtensionLimitFromConfig: limit_chunk_extension reaches the
// engine the serving process builds: over a real socket, on every backend,
// a chunk line whose extensions exceed it is answered 400, one within it
// is served.
func TestChunkExtensionLimitFromConfig(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) {
			cfg := config.Default()
			cfg.Bind = []string{"127.0.0.1:0"}
			cfg.Workers = 1
			cfg.Backend = config.Backend(b.Name())
			cfg.LimitChunkExtension = 16
			cfg.Routes = []config.Route{{Path: "/echo/", Handler: "echo"}}
			p, err := serving.New(serving.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Engine().Limits().MaxChunkExtension; got != 16 {
				t.Errorf("engine MaxChunkExtension = %d, want 16", got)
			}
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan serving.ReadyInfo, 1)
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx, nil, serving.Options{Ready: func(i serving.ReadyInfo) { ready <- i }}) }()
			<-ready
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			for _, tc := range []struct {
				ext    int // bytes after the chunk size
				status string
			}{{16, "200"}, {17, "400"}} {
				c, err := net.DialTimeout("tcp", p.Addrs()[0], 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
				fmt.Fprintf(c, "POST /echo/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+
					"3;x=%s\r\nabc\r\n0\r\n\r\n", strings.Repeat("v", tc.ext-3))
				got, _ := io.ReadAll(c)
				c.Close()
				if !strings.HasPrefix(string(got), "HTTP/1.1 "+tc.status+" ") {
					t.Errorf("%d-byte extension: %.40q, want %s", tc.ext, got, tc.status)
				}
			}
		})
	}
}
