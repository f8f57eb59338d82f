package reliability_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

const mib = 1 << 20

// forBackends runs fn as a subtest on every backend (a backend that cannot
// run here fails the test: see enginetest.Backends).
func forBackends(t *testing.T, fn func(t *testing.T, b loop.Backend)) {
	t.Helper()
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) { fn(t, b) })
	}
}

// goExec runs each off-loop request on its own goroutine, as worker_class
// async does.
type goExec struct{}

func (goExec) Submit(_ int, t engine.Task) bool { go t.Run(); return true }

// dispatchModes are the ways a request reaches a handler, each framed on a
// different path in the engine: on the loop (sync), on its own goroutine
// (async: the request is copied out of the input buffer), and with the
// body streamed to the handler through a pipe as it arrives (any body over
// the body buffer: here 8 bytes).
var dispatchModes = []struct {
	name       string
	dispatch   engine.Dispatch
	bodyBuffer int
}{
	{"sync", engine.Inline, 0},
	{"async", engine.OffLoop, 0},
	{"streamed", engine.Inline, 8},
}

// baseConfig is the engine configuration the suite starts from: two loops,
// a 1 MiB body limit, timeouts long enough never to fire unless a test
// shortens them, and a quiet logger the test can read.
func baseConfig(r *engine.Router, logw io.Writer) engine.Config {
	if logw == nil {
		logw = io.Discard
	}
	cfg := engine.Config{Router: r, Loops: 2, ServerHeader: "asyncd", Executor: goExec{},
		KeepAlive: 5 * time.Second, HeaderTimeout: 3 * time.Second, BodyTimeout: 3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logw, nil))}
	cfg.Limits.MaxBodySize = 1 * mib
	return cfg
}

// record is what a handler saw of one request.
type record struct {
	Method, Target, Host, Body string
}

func (r record) String() string {
	return fmt.Sprintf("%s %s host=%s body=%q", r.Method, r.Target, r.Host, r.Body)
}

// recorder is a handler that records every request it is given, per client
// connection (keyed by the client's address), so that a test can prove
// exactly which requests reached a handler, how often, and framed how.
type recorder struct {
	mu     sync.Mutex
	byConn map[netip.AddrPort][]record
	calls  atomic.Int64
	admin  atomic.Int64 // requests that reached /admin
}

func newRecorder() *recorder { return &recorder{byConn: map[netip.AddrPort][]record{}} }

// Serve implements engine.Handler. A streamed body is read whole first; a
// body that breaks off (bad framing, client gone) is answered with the
// parser's status, as a careful handler would, and the request is not
// recorded: it never arrived whole.
func (r *recorder) Serve(c *engine.Ctx) {
	body := c.Body()
	if c.BodyStreamed() {
		var err error
		body, err = io.ReadAll(c.BodyReader())
		if err != nil {
			status := 400
			var pe *httpparse.Error
			if errors.As(err, &pe) {
				status = pe.Status
			}
			c.SetStatus(status)
			fmt.Fprintf(c, "body: %v", err)
			return
		}
	}
	rec := record{Method: string(c.Method()), Target: string(c.Target()), Host: string(c.Host()), Body: string(body)}
	r.calls.Add(1)
	if string(c.Path()) == "/admin" {
		r.admin.Add(1)
	}
	r.mu.Lock()
	k := c.RemoteAddr()
	k = netip.AddrPortFrom(k.Addr().Unmap(), k.Port())
	r.byConn[k] = append(r.byConn[k], rec)
	r.mu.Unlock()
	c.SetContentType("text/plain")
	fmt.Fprintf(c, "seen %s %s %d", rec.Method, rec.Target, len(rec.Body))
}

// take returns what the handler saw from the client connection c, and
// forgets it: the kernel reuses a client port as soon as its connection is
// gone, so the records must be taken before c closes and not left for the
// next connection that gets the same port.
func (r *recorder) take(c net.Conn) []record {
	k := clientAddr(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.byConn[k]
	delete(r.byConn, k)
	return out
}

func clientAddr(c net.Conn) netip.AddrPort {
	ap := c.LocalAddr().(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// recorderRoutes routes "/" (any method, prefix), "/admin" and "/get" (GET
// only) to rec.
func recorderRoutes(t testing.TB, rec *recorder) *engine.Router {
	return enginetest.Router(t,
		&engine.Route{Path: "/", Handler: rec},
		&engine.Route{Path: "/admin", Handler: rec},
		&engine.Route{Path: "/get", Methods: []string{"GET"}, Handler: rec},
	)
}

// response is one response read off a raw connection.
type response struct {
	Status int
	Close  bool // the response said Connection: close
	Body   []byte
	Header http.Header
}

// readAll reads responses from c until the server closes the connection,
// want responses arrived (want > 0), or timeout passes. closed reports that
// the server closed (EOF or reset) after the last response. It never calls
// t.Fatal, so goroutines may use it. A response the client cannot frame is
// an error.
func readAll(c net.Conn, want int, timeout time.Duration) (resps []response, closed bool, err error) {
	c.SetReadDeadline(time.Now().Add(timeout)) //nolint:errcheck
	br := bufio.NewReader(c)
	for want <= 0 || len(resps) < want {
		if _, err := br.Peek(1); err != nil {
			if isClosed(err) {
				return resps, true, nil
			}
			return resps, false, fmt.Errorf("waiting for response %d: %w", len(resps)+1, err)
		}
		r, err := readOne(br)
		if err != nil {
			return resps, false, fmt.Errorf("response %d: %w", len(resps)+1, err)
		}
		resps = append(resps, r)
	}
	return resps, false, nil
}

// readOne reads one final response (skipping 1xx) with its body.
func readOne(br *bufio.Reader) (response, error) {
	for {
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			return response{}, err
		}
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return response{}, fmt.Errorf("body of a %d: %w", r.StatusCode, err)
		}
		if r.StatusCode/100 == 1 {
			continue
		}
		return response{Status: r.StatusCode, Close: r.Close, Body: body, Header: r.Header}, nil
	}
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

func statuses(rs []response) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.Status
	}
	return out
}

// dial connects to addr with a deadline.
func dial(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp4", addr, 5*time.Second)
}

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// openFDs counts this process's open descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count descriptors: %v", err)
	}
	return len(ents)
}

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC() // the second pass frees what the first one's finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// heapSampler records the peak heap while a test runs; stop returns it.
// Sampling every 25ms can miss a spike shorter than that, which is why the
// tests also check the quantity that would cause growth (bytes a handler
// managed to write, requests served) where they can.
func heapSampler() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(25 * time.Millisecond)
		defer tk.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// growth is after-before, or 0 when memory shrank.
func growth(before, after uint64) uint64 {
	if after > before {
		return after - before
	}
	return 0
}

// waitGoroutines waits until at most base+slack goroutines run; on timeout
// it fails the test with a dump of the goroutines.
func waitGoroutines(t testing.TB, base, slack int, timeout time.Duration) {
	t.Helper()
	if enginetest.Eventually(timeout, func() bool { return runtime.NumGoroutine() <= base+slack }) {
		return
	}
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	t.Errorf("goroutines leaked: %d running, %d before (slack %d)\n%s", runtime.NumGoroutine(), base, slack, summarizeStacks(string(buf[:n])))
}

// summarizeStacks groups a goroutine dump by the first function of each
// goroutine's stack, so that a leak of thousands reads in a few lines.
func summarizeStacks(dump string) string {
	counts := map[string]int{}
	for _, g := range strings.Split(dump, "\n\n") {
		lines := strings.Split(g, "\n")
		key := g
		if len(lines) >= 2 {
			key = lines[1]
			if len(lines) >= 4 {
				key += " <- " + lines[3]
			}
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	var b strings.Builder
	for i, k := range keys {
		if i == 15 {
			break
		}
		fmt.Fprintf(&b, "%6d  %s\n", counts[k], k)
	}
	return b.String()
}

// procCPU returns the user+system CPU time of process pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	const clkTck = 100 // USER_HZ, fixed on Linux
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// median of durations (sorted copy).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// getLatencies sends n GETs one after another on one keep-alive connection
// and returns each round trip.
func getLatencies(addr, path string, n int) ([]time.Duration, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			return out, fmt.Errorf("request %d: %w", i, err)
		}
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			return out, fmt.Errorf("response %d: %w", i, err)
		}
		_, err = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if err != nil {
			return out, fmt.Errorf("response %d body: %w", i, err)
		}
		if r.StatusCode != 200 {
			return out, fmt.Errorf("response %d: status %d", i, r.StatusCode)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// setLinger0 makes Close send RST instead of FIN.
func setLinger0(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) //nolint:errcheck
	}
}

// dialSmallWindow connects with a small receive buffer set before the
// handshake, so that the window the server sees stays small: a slow reader
// then really holds the server back instead of the kernel soaking up
// megabytes on its behalf.
func dialSmallWindow(addr string, rcvbuf int) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.Dial("tcp4", addr)
}
