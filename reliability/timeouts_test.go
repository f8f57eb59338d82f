package reliability_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/files"
)

// TestSlowReaderOutlivesRequestTimeout: a 10 MB response read by a slow but
// steady client (paced to take 2 s, through a 64 KiB receive window: longer
// than request_timeout and send_timeout together, with no stall near
// either) arrives whole, from the files plugin (the net/http
// adapter and http.ServeContent) and from a native handler that streams
// it. request_timeout bounds only the response's start, and send_timeout
// each stall, so neither cuts a long transfer (issue 16: the response was
// truncated at request_timeout).
func TestSlowReaderOutlivesRequestTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a slow reader outlasting request_timeout, seconds on each backend; make test runs it")
	}
	const size, readFor = 10 << 20, 2 * time.Second
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	want := sha256.Sum256(data)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := plugins.Build(plugins.Route{Path: "/files/", Handler: "files", Options: map[string]any{"root": dir}})
	if err != nil {
		t.Fatal(err)
	}
	stream := engine.HandlerFunc(func(c *engine.Ctx) {
		c.SetContentLength(size)
		for off := 0; off < size; off += 32 << 10 {
			if _, err := c.Write(data[off : off+32<<10]); err != nil || c.Flush() != nil {
				return
			}
		}
	})
	forBackends(t, func(t *testing.T, b loop.Backend) {
		r := enginetest.Router(t,
			&engine.Route{Path: "/files/", Blocking: true, Handler: files},
			&engine.Route{Path: "/stream", Blocking: true, Handler: stream})
		cfg := baseConfig(r, nil)
		cfg.RequestTimeout, cfg.SendTimeout = 700*time.Millisecond, 700*time.Millisecond
		s := enginetest.Start(t, b, cfg)
		for _, path := range []string{"/files/big.bin", "/stream"} {
			t.Run(path, func(t *testing.T) {
				c, err := dialSmallWindow(s.Addr, 64<<10)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				c.SetReadDeadline(start.Add(60 * time.Second)) //nolint:errcheck
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("head: %v %v", resp, err)
				}
				h := sha256.New()
				buf := make([]byte, 64<<10)
				got := 0
				for {
					n, err := resp.Body.Read(buf)
					h.Write(buf[:n])
					got += n
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("after %d of %d bytes in %v: %v", got, size, time.Since(start), err)
					}
					// Paced: never ahead of size bytes in readFor.
					time.Sleep(time.Until(start.Add(readFor * time.Duration(got) / size)))
				}
				took := time.Since(start)
				if got != size || !bytes.Equal(h.Sum(nil), want[:]) {
					t.Fatalf("got %d bytes (want %d), checksum match %v", got, size, bytes.Equal(h.Sum(nil), want[:]))
				}
				if took < cfg.RequestTimeout+cfg.SendTimeout {
					// Not a speed check: the test proves nothing unless the
					// transfer outlived both limits.
					t.Fatalf("the transfer took only %v; the reader must be slower than request_timeout + send_timeout", took)
				}
				t.Logf("%d bytes in %v", got, took)
			})
		}
	})
}
