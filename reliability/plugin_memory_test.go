package reliability_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/plugins"
	"github.com/asyncd/asyncd/plugins/echo"
	_ "github.com/asyncd/asyncd/plugins/files"
)

// TestEchoLargeBodiesBounded is issue 16's echo attack: concurrent large
// bodies to an echo route. echo reports them by length and SHA-256 as they
// stream through, so it must cost no more heap than a handler that reads
// the body and drops it, give or take a small fraction of the bytes sent
// (the old echo held each body and its JSON: 3.1 GB of RSS for two 50 MB
// bodies), and its reports must be right. The comparison, in the same run
// and on the same server, keeps the backend's own buffering out of the
// bound.
func TestEchoLargeBodiesBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: large bodies through the echo plugin, seconds on each backend; make test runs it")
	}
	const clients = 2
	size, rounds := 96*mib, 2 // per client: 192 MiB in all, per round
	if raceEnabled {
		size, rounds = 24*mib, 1
	}
	// The bound is a property, not a tuning: an eighth of what was sent
	// (16 MiB at least, for the noise of a small run). echo holds 64 KiB of
	// body, a 32 KiB buffer and a JSON answer of at most 6x64 KiB per
	// request.
	slack := uint64(max(clients*size/8, 16*mib))
	forBackends(t, func(t *testing.T, b loop.Backend) {
		h, err := echo.New(plugins.Route{Path: "/echo/", Handler: "echo"})
		if err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(enginetest.Router(t, &engine.Route{Path: "/echo/", Handler: h},
			&engine.Route{Path: "/discard/", Handler: engine.HandlerFunc(discardBody)}), nil)
		cfg.Dispatch = engine.OffLoop
		cfg.Limits.MaxBodySize = 1 << 30
		s := enginetest.Start(t, b, cfg)

		piece := []byte(pattern(64 << 10))
		d := sha256.New()
		for n := 0; n < size; n += len(piece) {
			d.Write(piece)
		}
		wantSum := hex.EncodeToString(d.Sum(nil))

		grew := map[string]uint64{}
		for i := 0; i < 2*rounds; i++ {
			route := []string{"/discard/", "/echo/"}[i%2]
			before := heapAfterGC()
			peak := heapSampler()
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for i := 0; i < clients; i++ {
				wg.Add(1)
				go func(chunked bool) {
					defer wg.Done()
					errs <- sendLargeBody(s.Addr, route, piece, size, chunked, wantSum)
				}(i%2 == 1)
			}
			wg.Wait()
			grew[route] = max(grew[route], growth(before, peak()))
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		}
		t.Logf("%d clients sent %d MiB each; heap grew %.1f MiB for echo, %.1f MiB for a handler that drops the body (slack %d MiB)",
			clients, size/mib, float64(grew["/echo/"])/mib, float64(grew["/discard/"])/mib, slack/mib)
		if grew["/echo/"] > grew["/discard/"]+slack {
			t.Errorf("heap grew %.1f MiB for %d MiB of bodies to echo, %.1f MiB when they are dropped: echo holds what it is sent",
				float64(grew["/echo/"])/mib, clients*size/mib, float64(grew["/discard/"])/mib)
		}
	})
}

// discardBody reads the body, drops it, and answers as echo would.
func discardBody(c *engine.Ctx) {
	d := sha256.New()
	n, err := io.Copy(d, c.BodyReader())
	if err != nil {
		c.SetStatus(400)
		return
	}
	fmt.Fprintf(c, `{"body":%q,"body_length":%d,"body_sha256":"%x","body_truncated":true}`, pattern(64<<10), n, d.Sum(nil))
}

// pattern is n bytes that are not all alike.
func pattern(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i*7%26)
	}
	return string(b)
}

// sendLargeBody posts size bytes (piece repeated) to route, with
// Content-Length or chunked, and checks echo's report of them.
func sendLargeBody(addr, route string, piece []byte, size int, chunked bool, wantSum string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	head := fmt.Sprintf("POST %sbig HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", route, size)
	if chunked {
		head = "POST " + route + "big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	}
	w := bufio.NewWriterSize(c, 128<<10)
	w.WriteString(head) //nolint:errcheck // the Flush below reports it
	for n := 0; n < size; n += len(piece) {
		if chunked {
			fmt.Fprintf(w, "%x\r\n", len(piece))
		}
		w.Write(piece) //nolint:errcheck
		if chunked {
			w.WriteString("\r\n") //nolint:errcheck
		}
	}
	if chunked {
		w.WriteString("0\r\n\r\n") //nolint:errcheck
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("%s chunked=%v: sending: %w", route, chunked, err)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second)) //nolint:errcheck
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("%s chunked=%v: %w", route, chunked, err)
	}
	defer r.Body.Close()
	var e struct {
		Body      string `json:"body"`
		Length    int64  `json:"body_length"`
		Sum       string `json:"body_sha256"`
		Truncated bool   `json:"body_truncated"`
	}
	if err := json.NewDecoder(r.Body).Decode(&e); err != nil || r.StatusCode != 200 {
		return fmt.Errorf("%s chunked=%v: %d, %v", route, chunked, r.StatusCode, err)
	}
	if e.Length != int64(size) || e.Sum != wantSum || !e.Truncated || len(e.Body) != 64<<10 {
		return fmt.Errorf("%s chunked=%v: reported length %d sha256 %s truncated %v with %d bytes shown; want %d, %s, true, 65536",
			route, chunked, e.Length, e.Sum, e.Truncated, len(e.Body), size, wantSum)
	}
	return nil
}

// TestFilesLargeDownloadsBounded: clients that ask for a large file and
// read it slowly hold the files plugin back (Flush waits for the loop),
// so the heap grows by a small fraction of the file, not by the file.
func TestFilesLargeDownloadsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: large files read slowly, seconds on each backend; make test runs it")
	}
	const (
		clients = 2
		size    = 128 * mib
		bound   = size / 8
	)
	root := t.TempDir()
	f, err := os.Create(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	forBackends(t, func(t *testing.T, b loop.Backend) {
		h, err := plugins.Build(plugins.Route{Path: "/files/", Handler: "files", Options: map[string]any{"root": root}})
		if err != nil {
			t.Fatal(err)
		}
		s := enginetest.Start(t, b, baseConfig(enginetest.Router(t, &engine.Route{Path: "/files/", Handler: h}), nil))
		before := heapAfterGC()
		peak := heapSampler()
		var read [clients]int
		for i := range clients {
			c, err := dialSmallWindow(s.Addr, 4096)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			setLinger0(c)
			if _, err := io.WriteString(c, "GET /files/big.bin HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			// Read a little, then stop: the server must hold off.
			c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
			buf := make([]byte, 64<<10)
			n, err := io.ReadAtLeast(c, buf, 1024)
			if err != nil {
				t.Fatal(err)
			}
			read[i] = n
		}
		time.Sleep(time.Second) // what the handlers push meanwhile is what is measured
		grew := growth(before, peak())
		t.Logf("%d clients read %v bytes of a %d MiB file; heap grew %.1f MiB (bound %d MiB)", clients, read, size/mib, float64(grew)/mib, bound/mib)
		if grew > bound {
			t.Errorf("heap grew %.1f MiB for %d stalled downloads of a %d MiB file (bound %d MiB)", float64(grew)/mib, clients, size/mib, bound/mib)
		}
	})
}
