package reliability_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// memBound is the heap growth the memory checks allow. It is generous on
// purpose: what the server legitimately holds for these clients is a few
// hundred KiB (the output buffer limit, one stream chunk, a read buffer
// per connection), the race detector roughly doubles allocations, and
// other tests' garbage may still be live in this shared process. The
// failures these tests look for are an order of magnitude larger (80 to 100
// MiB buffered for one client), so the bound still separates them cleanly.
const memBound = 64 * mib

// okRoute answers "ok" on any path.
func okRoute() *engine.Route {
	return &engine.Route{Path: "/", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
		c.SetContentType("text/plain")
		c.WriteString("ok") //nolint:errcheck
	})}
}

// TestSlowClientsAreCutOffOthersServed opens many slowloris connections
// (a request head trickled a byte at a time, never finished) and slow-body
// connections (a body that stops arriving), and checks that each is
// answered 408 and closed once its timeout passes, while a normal client
// is served meanwhile with a median latency close to the one measured
// without attackers in the same run (a ratio, so the machine's speed does
// not matter).
func TestSlowClientsAreCutOffOthersServed(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out header and body timeouts, seconds on each backend; make test runs it")
	}
	const (
		headTimeout = 600 * time.Millisecond
		bodyTimeout = 600 * time.Millisecond
		loris       = 100
		slowBodies  = 100
		samples     = 300
		// A server that waited on slow clients (a blocking read, a loop
		// stuck on one connection) would multiply the latency by hundreds:
		// the trickle is 50ms per byte.
		maxRatio = 25
	)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		cfg := baseConfig(enginetest.Router(t, okRoute()), nil)
		cfg.HeaderTimeout, cfg.BodyTimeout = headTimeout, bodyTimeout
		s := enginetest.Start(t, b, cfg)
		if _, err := getLatencies(s.Addr, "/", 50); err != nil { // warm-up
			t.Fatal(err)
		}
		base, err := getLatencies(s.Addr, "/", samples)
		if err != nil {
			t.Fatal(err)
		}

		type outcome struct {
			kind   string
			status int
			closed bool
			took   time.Duration
			err    error
		}
		results := make(chan outcome, loris+slowBodies)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		attacker := func(kind string, first string, trickle string, gap time.Duration) {
			defer wg.Done()
			c, err := dial(s.Addr)
			if err != nil {
				results <- outcome{kind: kind, err: err}
				return
			}
			defer c.Close()
			began := time.Now()
			c.Write([]byte(first)) //nolint:errcheck
			// Trickle in the background; the reader below sees the answer.
			go func() {
				for i := 0; i < len(trickle); i++ {
					select {
					case <-stop:
						return
					case <-time.After(gap):
					}
					if _, err := c.Write([]byte{trickle[i]}); err != nil {
						return
					}
				}
			}()
			rs, closed, err := readAll(c, 0, 10*time.Second)
			o := outcome{kind: kind, closed: closed, took: time.Since(began), err: err}
			if len(rs) == 1 {
				o.status = rs[0].Status
			} else if err == nil {
				o.err = fmt.Errorf("%d responses", len(rs))
			}
			results <- o
		}
		for i := 0; i < loris; i++ {
			wg.Add(1)
			// A byte every 50ms: always progress, never a whole head.
			go attacker("slowloris", "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ", strings.Repeat("a", 400), 50*time.Millisecond)
		}
		for i := 0; i < slowBodies; i++ {
			wg.Add(1)
			// The body stalls for longer than body_timeout between bytes.
			go attacker("slow body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nab", strings.Repeat("b", 10), 2*bodyTimeout)
		}
		time.Sleep(100 * time.Millisecond) // the attackers are all connected and trickling
		attacked, err := getLatencies(s.Addr, "/", samples)
		if err != nil {
			t.Fatalf("a normal client failed while slow clients were connected: %v", err)
		}
		wg.Wait()
		close(stop)
		close(results)
		worst := map[string]time.Duration{}
		bad := map[string]int{}
		var examples []string
		for o := range results {
			if o.err != nil || o.status != 408 || !o.closed {
				bad[o.kind]++
				if len(examples) < 3 {
					examples = append(examples, fmt.Sprintf("%s client: status %d closed=%v err %v", o.kind, o.status, o.closed, o.err))
				}
				continue
			}
			worst[o.kind] = max(worst[o.kind], o.took)
		}
		if len(bad) > 0 {
			t.Errorf("slow clients not answered 408 and closed: %v of %d slowloris and %d slow-body; e.g.\n%s",
				bad, loris, slowBodies, strings.Join(examples, "\n"))
		}
		// A connection is cut at its deadline, checked every 100ms by the
		// engine's tick: allow a generous margin for a loaded machine, not
		// another whole timeout.
		if w := worst["slowloris"]; w > headTimeout+2*time.Second {
			t.Errorf("slowloris cut off after %v, header_timeout is %v", w, headTimeout)
		}
		if w := worst["slow body"]; w > bodyTimeout+2*time.Second {
			t.Errorf("stalled body cut off after %v, body_timeout is %v", w, bodyTimeout)
		}
		mb, ma := median(base), median(attacked)
		ratio := float64(ma) / float64(mb)
		t.Logf("median latency: %v alone, %v with %d slowloris and %d slow-body clients (x%.1f); slowest cut-off: slowloris %v, slow body %v",
			mb, ma, loris, slowBodies, ratio, worst["slowloris"], worst["slow body"])
		if ratio > maxRatio {
			t.Errorf("slow clients slowed a normal client down %.1f times (median %v -> %v), more than %d", ratio, mb, ma, maxRatio)
		}
	})
}

// TestPipelineFloodWithoutReading has a client pipeline 20,000 requests
// for 4 KiB responses without reading any. Unchecked, the server would
// queue 80 MiB of responses for it; with back-pressure it stops reading
// from the client once its output limit is reached. The test checks that
// the server stops serving (the count stalls well below what was sent),
// that its heap stays bounded meanwhile, and that once the client reads,
// every request is answered exactly once, in order.
func TestPipelineFloodWithoutReading(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: fills the socket buffers until the server stops reading, seconds on each backend; make test runs it")
	}
	const (
		requests = 20000
		bodySize = 4096
	)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		var served atomic.Int64
		pad := bytes.Repeat([]byte("p"), bodySize)
		r := enginetest.Router(t, &engine.Route{Path: "/", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			served.Add(1)
			c.Write(c.Query())            //nolint:errcheck
			c.Write(pad[len(c.Query()):]) //nolint:errcheck
		})})
		cfg := baseConfig(r, nil)
		s := enginetest.Start(t, b, cfg)
		before := heapAfterGC()
		peak := heapSampler()

		c, err := dialSmallWindow(s.Addr, 16<<10)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var raw bytes.Buffer
		for i := 0; i < requests; i++ {
			fmt.Fprintf(&raw, "GET /?%06d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		}
		writeErr := make(chan error, 1)
		go func() {
			_, err := c.Write(raw.Bytes())
			writeErr <- err
		}()
		// Wait until the server stops making progress: with back-pressure
		// it stalls; without, it serves everything.
		last := int64(-1)
		for {
			time.Sleep(300 * time.Millisecond)
			n := served.Load()
			if n == last || n == requests {
				break
			}
			last = n
		}
		stalled := served.Load()
		grew := growth(before, peak())
		t.Logf("served %d of %d pipelined requests while the client did not read; heap grew %.1f MiB", stalled, requests, float64(grew)/mib)
		// The server's output limit (256 KiB) plus the kernel's buffers
		// (a few MiB on loopback) hold a thousand or so 4 KiB responses.
		if stalled > requests/2 {
			t.Errorf("served %d of %d requests to a client that read nothing: no back-pressure", stalled, requests)
		}
		if grew > memBound {
			t.Errorf("heap grew %.1f MiB while a client pipelined without reading (bound %d MiB)", float64(grew)/mib, memBound/mib)
		}
		// Now read everything: each request answered once, in order.
		c.SetReadDeadline(time.Now().Add(60 * time.Second)) //nolint:errcheck
		br := bufio.NewReaderSize(c, 64<<10)
		body := make([]byte, bodySize)
		for i := 0; i < requests; i++ {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			if _, err := io.ReadFull(resp.Body, body); err != nil || resp.StatusCode != 200 {
				t.Fatalf("response %d: status %d: %v", i, resp.StatusCode, err)
			}
			resp.Body.Close()
			if got, want := string(body[:6]), fmt.Sprintf("%06d", i); got != want {
				t.Fatalf("response %d answers request %s: out of order", i, got)
			}
		}
		if err := <-writeErr; err != nil {
			t.Fatalf("writing the pipeline: %v", err)
		}
		if n := served.Load(); n != requests {
			t.Fatalf("handler ran %d times for %d requests", n, requests)
		}
	})
}

// TestSlowReaderOfLargeStream has an off-loop handler stream 100 MiB to a
// client that reads 1 KiB a second through a 4 KiB receive window. The
// handler must be held back by the client (Flush blocks), so the server
// buffers at most its output limit and the kernel's socket buffer, not the
// response; when the client goes away the handler's Flush fails and the
// handler returns.
func TestSlowReaderOfLargeStream(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a client reading 1 KiB a second, seconds on each backend; make test runs it")
	}
	const (
		total   = 100 * mib
		readFor = 3 * time.Second
		// What the handler may have pushed: the engine's output limit
		// (256 KiB) plus one stream chunk plus the server's socket send
		// buffer (at most 4 MiB here: net.ipv4.tcp_wmem) and the client's
		// small window; 16 MiB is four times that.
		maxPushed = 16 * mib
	)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		var pushed atomic.Int64
		handlerErr := make(chan error, 1)
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB
		r := enginetest.Router(t, okRoute(), &engine.Route{Path: "/big", Blocking: true, Handler: engine.HandlerFunc(func(c *engine.Ctx) {
			c.SetContentLength(total)
			for n := 0; n < total; n += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					handlerErr <- err
					return
				}
				if err := c.Flush(); err != nil {
					handlerErr <- err
					return
				}
				pushed.Add(int64(len(chunk)))
			}
			handlerErr <- nil
		})})
		s := enginetest.Start(t, b, baseConfig(r, nil))
		base := runtime.NumGoroutine()
		before := heapAfterGC()
		peak := heapSampler()

		c, err := dialSmallWindow(s.Addr, 4096)
		if err != nil {
			t.Fatal(err)
		}
		setLinger0(c)
		if _, err := c.Write([]byte("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1024)
		read := 0
		deadline := time.Now().Add(readFor)
		for time.Now().Before(deadline) {
			c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			n, err := io.ReadFull(c, buf)
			read += n
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			time.Sleep(time.Second)
		}
		grew := growth(before, peak())
		p := pushed.Load()
		t.Logf("client read %d bytes in %v; the handler pushed %.1f MiB of %d MiB; heap grew %.1f MiB",
			read, readFor, float64(p)/mib, total/mib, float64(grew)/mib)
		if p > maxPushed {
			t.Errorf("the handler pushed %.1f MiB to a client that read %d bytes: the stream is not held back", float64(p)/mib, read)
		}
		if grew > memBound {
			t.Errorf("heap grew %.1f MiB for one slow reader (bound %d MiB)", float64(grew)/mib, memBound/mib)
		}
		c.Close() // RST: the client is gone mid-response
		select {
		case err := <-handlerErr:
			if err == nil {
				t.Errorf("the handler finished 100 MiB although the client read %d bytes", read)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the streaming handler did not return after its client went away")
		}
		waitGoroutines(t, base, 2, 5*time.Second)
		// The server still serves others at once.
		if _, err := getLatencies(s.Addr, "/", 5); err != nil {
			t.Fatalf("after the slow reader left: %v", err)
		}
	})
}
