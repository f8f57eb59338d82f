package looptest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
)

// eofBound is how long the client waits for the end of the connection after
// the response: it should take microseconds; the bound only absorbs a noisy
// machine.
const eofBound = 2 * time.Second

// testCloseEOF: a response written just before Close must be followed by the
// end of the connection (FIN from the lingering close) without the client
// sending anything more, whatever else the loop is doing meanwhile. Many
// connections in parallel interleave sends, shutdowns, receives and closes;
// half of them leave unread input behind the request, which the lingering
// close must discard rather than answer with a reset. Afterwards the server
// must hold none of their descriptors.
func testCloseEOF(t *testing.T, b loop.Backend) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	const workers = 16
	h := newHandler(t)
	h.onRead = func(c loop.Conn, in []byte) int {
		end := bytes.IndexByte(in, '\n') + 1
		if end == 0 {
			return 0
		}
		c.Write(in[:end])
		c.Close()
		return end // anything after the line stays unread
	}
	s := start(t, b, h, setup{loops: 2})

	one := func(i int) error {
		c, err := net.DialTimeout(s.network, s.addr, long)
		if err != nil {
			return err
		}
		defer c.Close()
		req := "req\n"
		if i%2 == 1 {
			req += "unread input"
		}
		c.SetDeadline(time.Now().Add(long))
		if _, err := io.WriteString(c, req); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			return errors.New("reading the response: " + err.Error())
		}
		// Nothing more is sent: only the server's close can end this read.
		c.SetReadDeadline(time.Now().Add(eofBound))
		var extra [16]byte
		k, err := c.Read(extra[:])
		switch {
		case k > 0:
			return errors.New("unexpected bytes after the response: " + string(extra[:k]))
		case isTimeout(err):
			return errors.New("no EOF within " + eofBound.String() + " of the response")
		case !errors.Is(err, io.EOF):
			return errors.New("want EOF after the response, got " + err.Error())
		}
		return nil
	}
	if err := one(0); err != nil { // warm-up: pools, buffers, first accept
		t.Fatal(err)
	}
	waitFor(t, "the warm-up connection closed", func() bool { return s.totalConns() == 0 })
	baseFD := openFDs(t)

	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := one(i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Errorf("%d of %d connections: %v", f, n, firstErr.Load())
	}
	waitFor(t, "every connection closed", func() bool {
		return s.totalConns() == 0 && h.closes.Load() == h.opens.Load()
	})
	// Closing is asynchronous in some backends; give it the usual bound.
	var fds int
	deadline := time.Now().Add(long)
	for fds = openFDs(t); fds > baseFD+2 && time.Now().Before(deadline); fds = openFDs(t) {
		time.Sleep(10 * time.Millisecond)
	}
	if fds > baseFD+2 {
		t.Errorf("descriptors leaked: %d open after %d closed connections, %d before", fds, n, baseFD)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
