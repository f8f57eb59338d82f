package reliability_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// resetConns is how many connections TestAbruptResetsLeakNothing drops per
// backend: 10,000 normally; under the race detector, which makes every
// connection several times slower, 2,000, so that the suite stays within
// its time budget (the paths exercised are the same).
func resetConns() int {
	if raceEnabled {
		return 2000
	}
	return 10000
}

// TestAbruptResetsLeakNothing opens thousands of connections and drops
// each with a reset (SO_LINGER 0) at a different point: in the middle of a
// request head, in the middle of a body, after a request whose large
// response is being written (inline and streamed by an off-loop handler),
// and while an off-loop handler is still running. Afterwards the server
// must hold no connection, no request in flight, no extra goroutine, no
// extra descriptor and no extra heap, and must still serve.
func TestAbruptResetsLeakNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: thousands of resets on each backend; make test runs it")
	}
	n := resetConns()
	forBackends(t, func(t *testing.T, b loop.Backend) {
		big := bytes.Repeat([]byte("r"), 256<<10)
		var streamed atomic.Int64
		r := enginetest.Router(t,
			okRoute(),
			&engine.Route{Path: "/big", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
				c.Write(big) //nolint:errcheck
			})},
			&engine.Route{Path: "/stream", Blocking: true, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
				defer streamed.Add(1)
				for i := 0; i < 64; i++ {
					c.Write(big[:32<<10]) //nolint:errcheck
					if c.Flush() != nil {
						return
					}
				}
			})},
			&engine.Route{Path: "/slow", Blocking: true, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
				select {
				case <-c.Context().Done():
				case <-time.After(3 * time.Second):
				}
				c.WriteString("late") //nolint:errcheck
			})},
		)
		cfg := baseConfig(r, nil)
		s := enginetest.Start(t, b, cfg)
		kinds := []struct {
			name string
			send string
			read int // bytes of response to read before the reset
		}{
			{"mid-head", "GET / HTTP/1.1\r\nHost: a\r\nX-Long: aaaa", 0},
			{"mid-body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nabc", 0},
			{"mid-chunked-body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", 0},
			{"mid-response", "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", 100},
			{"mid-response-unread", "GET /big HTTP/1.1\r\nHost: a\r\n\r\nGET /big HTTP/1.1\r\nHost: a\r\n\r\n", 0},
			{"mid-stream", "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", 100},
			{"handler-running", "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		}
		drop := func(i int) error {
			k := kinds[i%len(kinds)]
			c, err := dial(s.Addr)
			if err != nil {
				return err
			}
			setLinger0(c)
			defer c.Close()
			if _, err := io.WriteString(c, k.send); err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			if k.read > 0 {
				c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
				if _, err := io.ReadFull(c, make([]byte, k.read)); err != nil {
					return fmt.Errorf("%s: %w", k.name, err)
				}
			}
			return nil
		}
		// Warm up every path once, so that pools and per-loop buffers
		// exist before the baseline is taken.
		for i := 0; i < 4*len(kinds); i++ {
			if err := drop(i); err != nil {
				t.Fatal(err)
			}
		}
		settle(t, s)
		baseG := runtime.NumGoroutine()
		baseFD := openFDs(t)
		baseHeap := heapAfterGC()

		const workers = 16
		var wg sync.WaitGroup
		var failed atomic.Int64
		var firstErr atomic.Value
		began := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					if err := drop(i); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}
			}()
		}
		wg.Wait()
		took := time.Since(began)
		if f := failed.Load(); f > 0 {
			t.Errorf("%d of %d connections failed before their reset: %v", f, n, firstErr.Load())
		}
		settle(t, s)
		waitGoroutines(t, baseG, 2, 10*time.Second)
		var fds int
		if !enginetest.Eventually(10*time.Second, func() bool { fds = openFDs(t); return fds <= baseFD+2 }) {
			t.Errorf("descriptors leaked: %d open, %d before", fds, baseFD)
		}
		heap := heapAfterGC()
		t.Logf("%d connections reset in %v (%d kinds); %d streams ended; goroutines %d -> %d, descriptors %d -> %d, heap %.1f -> %.1f MiB",
			n, took.Round(time.Millisecond), len(kinds), streamed.Load(), baseG, runtime.NumGoroutine(), baseFD, fds,
			float64(baseHeap)/mib, float64(heap)/mib)
		// The live heap after the run: the connections' buffers went back
		// to their pools, so anything beyond a few MiB is held by dead
		// connections.
		if g := growth(baseHeap, heap); g > 16*mib {
			t.Errorf("heap grew %.1f MiB over %d reset connections", float64(g)/mib, n)
		}
		if _, err := getLatencies(s.Addr, "/", 10); err != nil {
			t.Fatalf("server does not serve after the resets: %v", err)
		}
	})
}

// settle waits until the server holds no connection, then checks that
// its stats count no request in flight either (metrics and readiness read
// them).
func settle(t *testing.T, s *enginetest.Server) {
	t.Helper()
	ok := enginetest.Eventually(10*time.Second, func() bool {
		open := 0
		for _, n := range s.Loop.Conns() {
			open += n
		}
		for _, n := range s.Engine.Stats().ConnsPerLoop {
			open += n
		}
		return open == 0
	})
	if !ok {
		t.Fatalf("server still holds connections: loop %v, engine %+v", s.Loop.Conns(), s.Engine.Stats())
	}
	if !enginetest.Eventually(2*time.Second, func() bool { return s.Engine.Stats().InFlight == 0 }) {
		t.Errorf("engine stats count %d requests in flight with no connection open (a client that reset during an off-loop request is never uncounted)",
			s.Engine.Stats().InFlight)
	}
}
