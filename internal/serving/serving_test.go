package serving_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/internal/serving"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/standard"
	"github.com/gorilla/websocket"
)

func TestClassAliases(t *testing.T) {
	cases := []struct {
		name    string
		threads int
		want    serving.Class
	}{
		{"sync", 1, serving.Sync},
		{"", 1, serving.Sync},
		{"sync", 4, serving.GThread}, // Gunicorn: sync with threads > 1 is gthread
		{"async", 1, serving.Async},
		{"gevent", 1, serving.Async},
		{"eventlet", 1, serving.Async},
		{"tornado", 1, serving.Async},
		{"uvicorn.workers.UvicornWorker", 1, serving.Async},
		{"gthread", 1, serving.GThread},
		// Every name config accepts runs (config.workerAliases).
		{"gunicorn.workers.sync.SyncWorker", 1, serving.Sync},
		{"gunicorn.workers.gthread.ThreadWorker", 1, serving.GThread},
		{"gunicorn.workers.gtornado.TornadoWorker", 1, serving.Async},
		{"uvicorn.workers.UvicornH11Worker", 1, serving.Async},
		{"uvicorn_worker.UvicornWorker", 1, serving.Async},
		{"GEVENT", 1, serving.Async},
	}
	for _, c := range cases {
		got, err := serving.ClassOf(c.name, c.threads)
		if err != nil || got != c.want {
			t.Errorf("ClassOf(%q, %d) = %v, %v; want %v", c.name, c.threads, got, err, c.want)
		}
	}
	if _, err := serving.ClassOf("meinheld", 1); err == nil || !strings.Contains(err.Error(), "meinheld") {
		t.Errorf("unknown class: %v", err)
	}
}

// gate is a handler that blocks until released, counting how many requests
// are inside it at once.
type gate struct {
	release chan struct{}
	in, max atomic.Int64
	entered chan struct{}
}

func newGate() *gate { return &gate{release: make(chan struct{}), entered: make(chan struct{}, 1000)} }

func (g *gate) Serve(c *engine.Ctx) {
	n := g.in.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			break
		}
	}
	g.entered <- struct{}{}
	<-g.release
	g.in.Add(-1)
	c.WriteString("released") //nolint:errcheck
}

var registerOnce sync.Once

// gates are the gate handlers by id: each test makes its own (newTestGate),
// so that the same test on another backend starts with a closed gate.
var (
	gatesMu sync.Mutex
	gates   = map[string]*gate{}
)

// newTestGate makes a gate for the running (sub)test; a route with handler
// "gate" and options {id: <the returned id>} serves it.
func newTestGate(t *testing.T) (string, *gate) {
	t.Helper()
	g := newGate()
	gatesMu.Lock()
	defer gatesMu.Unlock()
	gates[t.Name()] = g
	return t.Name(), g
}

func registerTestPlugins() {
	registerOnce.Do(func() {
		plugins.Register("gate", func(r plugins.Route) (engine.Handler, error) {
			var o struct {
				ID string `option:"id"`
			}
			if err := plugins.Decode(r.Options, &o); err != nil {
				return nil, err
			}
			gatesMu.Lock()
			defer gatesMu.Unlock()
			g, ok := gates[o.ID]
			if !ok {
				return nil, fmt.Errorf("gate %q: no such gate", o.ID)
			}
			return g, nil
		})
		plugins.Register("sleep", func(plugins.Route) (engine.Handler, error) {
			return engine.HandlerFunc(func(c *engine.Ctx) {
				time.Sleep(400 * time.Millisecond)
				c.WriteString("slept") //nolint:errcheck
			}), nil
		})
		up := websocket.Upgrader{}
		plugins.RegisterHTTP("ws-echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			for {
				mt, msg, err := conn.ReadMessage()
				if err != nil {
					return
				}
				if err := conn.WriteMessage(mt, append([]byte("echo: "), msg...)); err != nil {
					return
				}
			}
		}))
	})
}

// eachBackend runs test once per loop backend (enginetest.Backends: every
// backend that runs here, ASYNCDTEST_BACKENDS to choose), as a subtest
// named after it.
func eachBackend(t *testing.T, test func(t *testing.T, b loop.Backend)) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) { test(t, b) })
	}
}

// serve starts a serving process with cfg on backend b, on a free loopback
// port.
func serve(t *testing.T, b loop.Backend, mod func(*config.Config), logw io.Writer) string {
	t.Helper()
	registerTestPlugins()
	cfg := config.Default()
	cfg.Bind = []string{"127.0.0.1:0"}
	cfg.Workers = 1
	cfg.Backend = config.Backend(b.Name())
	cfg.Routes = []config.Route{
		{Path: "/fast", Handler: "static", Options: map[string]any{"body": "fast"}},
	}
	mod(cfg)
	if logw == nil {
		logw = io.Discard
	}
	p, err := serving.New(serving.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logw, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan serving.ReadyInfo, 1)
	done := make(chan error, 1)
	go func() {
		done <- p.Run(ctx, nil, serving.Options{Ready: func(i serving.ReadyInfo) { ready <- i }})
	}()
	if info := <-ready; info.Backend != b.Name() {
		t.Fatalf("serving on %s, want %s", info.Backend, b.Name())
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return "http://" + p.Addrs()[0]
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// gateRoute is a route at path served by the gate id.
func gateRoute(path, id string) config.Route {
	return config.Route{Path: path, Handler: "gate", Options: map[string]any{"id": id}}
}

func TestAsyncBlockingHandlerDoesNotStallTheLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a serving process per backend held by blocked handlers, seconds in all; make test runs it")
	}
	eachBackend(t, func(t *testing.T, b loop.Backend) {
		id, g := newTestGate(t)
		base := serve(t, b, func(c *config.Config) {
			c.WorkerClass = "gevent"
			c.Routes = append(c.Routes, gateRoute("/block", id))
		}, nil)
		slow := make(chan string, 1)
		go func() { slow <- get(t, base+"/block") }()
		<-g.entered // the blocking handler holds a goroutine, not the loop
		if got := get(t, base+"/fast"); got != "fast" {
			t.Fatalf("fast route: %q", got)
		}
		select {
		case <-slow:
			t.Fatal("the blocked request finished before it was released")
		default:
		}
		close(g.release)
		if got := <-slow; got != "released" {
			t.Fatalf("blocked route: %q", got)
		}
	})
}

func TestAsyncInflightBound(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a serving process per backend held by blocked handlers, seconds in all; make test runs it")
	}
	eachBackend(t, func(t *testing.T, b loop.Backend) {
		id, g := newTestGate(t)
		base := serve(t, b, func(c *config.Config) {
			c.WorkerClass = "async"
			c.WorkerConnections = 3
			c.Routes = append(c.Routes, gateRoute("/block", id))
		}, nil)
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); get(t, base+"/block") }()
		}
		for i := 0; i < 3; i++ {
			<-g.entered
		}
		// Give the other five every chance to (wrongly) get in.
		time.Sleep(300 * time.Millisecond)
		if n := g.in.Load(); n != 3 {
			t.Fatalf("%d requests in flight with worker_connections 3", n)
		}
		close(g.release)
		wg.Wait()
		if m := g.max.Load(); m != 3 {
			t.Fatalf("at most %d requests were in flight, want exactly the bound 3", m)
		}
	})
}

func TestGThreadPoolBound(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a serving process per backend held by blocked handlers, seconds in all; make test runs it")
	}
	eachBackend(t, func(t *testing.T, b loop.Backend) {
		id, g := newTestGate(t)
		base := serve(t, b, func(c *config.Config) {
			c.WorkerClass = "gthread"
			c.Threads = 2
			c.WorkerConnections = 2
			c.Routes = append(c.Routes, gateRoute("/block", id))
		}, nil)
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); get(t, base+"/block") }()
		}
		<-g.entered
		<-g.entered
		time.Sleep(300 * time.Millisecond)
		if n := g.in.Load(); n != 2 {
			t.Fatalf("%d requests running with threads 2", n)
		}
		close(g.release)
		wg.Wait()
	})
}

func TestBlockingRouteRunsOffLoopUnderSync(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a serving process per backend held by blocked handlers, seconds in all; make test runs it")
	}
	eachBackend(t, func(t *testing.T, b loop.Backend) {
		id, g := newTestGate(t)
		base := serve(t, b, func(c *config.Config) {
			c.WorkerClass = "sync"
			r := gateRoute("/block", id)
			r.Blocking = true
			c.Routes = append(c.Routes, r)
		}, nil)
		slow := make(chan string, 1)
		go func() { slow <- get(t, base+"/block") }()
		<-g.entered
		if got := get(t, base+"/fast"); got != "fast" {
			t.Fatalf("fast route: %q", got)
		}
		close(g.release)
		<-slow
	})
}

func TestSyncBlockWarningNamesTheRoute(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a serving process per backend held by blocked handlers, seconds in all; make test runs it")
	}
	eachBackend(t, func(t *testing.T, b loop.Backend) {
		var buf lockedBuffer
		base := serve(t, b, func(c *config.Config) {
			c.WorkerClass = "sync"
			c.BlockWarning = 50 * time.Millisecond
			c.Routes = append(c.Routes, config.Route{Path: "/sleepy", Handler: "sleep"})
		}, &buf)
		get(t, base+"/sleepy")
		if !strings.Contains(buf.String(), "blocking its event loop") || !strings.Contains(buf.String(), "/sleepy") {
			t.Fatalf("no warning naming the route:\n%s", buf.String())
		}
		// Each request blocks for several watchdog ticks (400 ms against
		// 100 ms ticks): the route is logged once, then at most once a
		// minute, not at every tick.
		get(t, base+"/sleepy")
		if n := strings.Count(buf.String(), "blocking its event loop"); n != 1 {
			t.Errorf("%d block warnings for one route within a minute, want 1:\n%s", n, buf.String())
		}
	})
}

// wsEcho opens a WebSocket to the ws-echo route at base and checks that it
// echoes; the caller closes it.
func wsEcho(t *testing.T, base string) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("hello %d", i)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, got, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("got %q", got)
		}
	}
	return conn
}

func TestHijackWebSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a serving process per backend held by blocked handlers, seconds in all; make test runs it")
	}
	eachBackend(t, func(t *testing.T, b loop.Backend) {
		base := serve(t, b, func(c *config.Config) {
			c.WorkerClass = "async"
			c.Routes = append(c.Routes, config.Route{Path: "/ws", Handler: "ws-echo"})
		}, nil)
		conn := wsEcho(t, base)
		defer conn.Close()
		// The loop still serves plain HTTP after handing a connection over.
		if got := get(t, base+"/fast"); got != "fast" {
			t.Fatalf("fast route: %q", got)
		}
	})
}

// TestHijackedConnectionsDoNotHoldTheBound: a hijacked connection leaves
// the engine's in-flight count while its handler goroutine lives on, so
// WebSockets as many as worker_connections must not stall the requests (and
// upgrades) that the engine admits next: the async pool does not count the
// goroutines they hold.
func TestHijackedConnectionsDoNotHoldTheBound(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a serving process per backend held by blocked handlers, seconds in all; make test runs it")
	}
	eachBackend(t, func(t *testing.T, b loop.Backend) {
		base := serve(t, b, func(c *config.Config) {
			c.WorkerClass = "async"
			c.WorkerConnections = 2
			c.Routes = append(c.Routes, config.Route{Path: "/ws", Handler: "ws-echo"})
		}, nil)
		var open []*websocket.Conn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		for i := 0; i < 5; i++ {
			open = append(open, wsEcho(t, base))
			if got := get(t, base+"/fast"); got != "fast" {
				t.Fatalf("fast route with %d WebSockets open: %q", len(open), got)
			}
		}
		// every connection still echoes: none lost its goroutine
		for i, c := range open {
			if err := c.WriteMessage(websocket.TextMessage, []byte("again")); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, got, err := c.ReadMessage(); err != nil || string(got) != "echo: again" {
				t.Fatalf("WebSocket %d: %q, %v", i, got, err)
			}
		}
	})
}

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
