package serving_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/internal/serving"
	"github.com/asyncd/asyncd/plugins"
)

// lifePlugin is a net/http plugin that records its lifecycle, as a
// database handler would go through it: Provision, CheckReady while
// serving, requests, Cleanup.
type lifePlugin struct {
	mu        sync.Mutex
	events    []string
	provision error
	notReady  error
	release   chan struct{} // a request to /life/wait waits for it
	entered   chan struct{}
}

func (p *lifePlugin) record(e string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
}

func (p *lifePlugin) Events() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.events...)
}

func (p *lifePlugin) setNotReady(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notReady = err
}

func (p *lifePlugin) Provision(context.Context) error {
	p.record("provision")
	return p.provision
}

func (p *lifePlugin) CheckReady(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.notReady
}

func (p *lifePlugin) Cleanup() error {
	p.record("cleanup")
	return nil
}

func (p *lifePlugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/life/wait" {
		p.entered <- struct{}{}
		<-p.release
		p.record("request done")
	}
	io.WriteString(w, "life "+r.URL.Path) //nolint:errcheck
}

var (
	lifeMu      sync.Mutex
	lifePlugins = map[string]*lifePlugin{}
	lifeOnce    sync.Once
)

// newLifePlugin makes the plugin a route {handler: life, options: {id:
// <the test's name>}} serves.
func newLifePlugin(t *testing.T) *lifePlugin {
	lifeOnce.Do(func() {
		plugins.RegisterHTTPFactory("life", func(ctx *plugins.Context, o struct {
			ID string `option:"id"`
		}) (http.Handler, error) {
			lifeMu.Lock()
			defer lifeMu.Unlock()
			p, ok := lifePlugins[o.ID]
			if !ok {
				return nil, errors.New("no life plugin " + o.ID)
			}
			return p, nil
		})
	})
	p := &lifePlugin{release: make(chan struct{}), entered: make(chan struct{}, 1)}
	lifeMu.Lock()
	defer lifeMu.Unlock()
	lifePlugins[t.Name()] = p
	return p
}

// startLife starts a serving process (worker_class async) with the life
// plugin mounted on /life and a readiness route on /ready.
func startLife(t *testing.T, p *lifePlugin, logw io.Writer) (*serving.Process, func() error, context.CancelFunc, string) {
	t.Helper()
	registerTestPlugins()
	cfg := config.Default()
	cfg.Bind = []string{"127.0.0.1:0"}
	cfg.Workers = 1
	cfg.WorkerClass = "async"
	cfg.RequestTimeout = 300 * time.Millisecond
	cfg.Backend = config.Backend(enginetest.Backends(t)[0].Name())
	cfg.Routes = []config.Route{
		{Path: "/ready", Handler: "health"},
		{Path: "/life", Mount: true, Handler: "life", Options: map[string]any{"id": t.Name()}},
	}
	proc, err := serving.New(serving.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logw, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- proc.Run(ctx, nil, serving.Options{Ready: func(serving.ReadyInfo) {
			p.record("ready")
			close(ready)
		}})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return nil, func() error { return err }, cancel, ""
	}
	var once sync.Once
	var runErr error
	wait := func() error {
		once.Do(func() { runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { cancel(); wait() }) //nolint:errcheck
	return proc, wait, cancel, "http://" + proc.Addrs()[0]
}

// TestPluginLifecycle: Provision runs before READY; a failing readiness
// check turns the health route to 503 naming the check, and back; Cleanup
// runs on drain only after the last handler returned, even one whose
// client left.
func TestPluginLifecycle(t *testing.T) {
	testingShortSkip(t)
	p := newLifePlugin(t)
	var logs lockedBuffer
	_, wait, cancel, base := startLife(t, p, &logs)
	if got := get(t, base+"/life/x"); got != "life /life/x" {
		t.Errorf("GET /life/x: %q", got)
	}
	if status, body := getStatus(t, base+"/ready"); status != 200 {
		t.Errorf("GET /ready with the check passing: %d %q", status, body)
	}
	p.setNotReady(errors.New("database down"))
	waitFor(t, "readiness 503 naming the check", func() bool {
		status, body := getStatus(t, base+"/ready")
		return status == 503 && body == "unavailable\nfailing check: life (routes[1] /life)\n"
	})
	p.setNotReady(nil)
	waitFor(t, "readiness 200 again", func() bool {
		status, _ := getStatus(t, base+"/ready")
		return status == 200
	})

	// A request past request_timeout: the engine answers it and lets it
	// go, its handler runs on; the drain finds no connection open, and
	// Cleanup must still wait for the handler (a pool closed under a
	// query).
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /life/wait HTTP/1.1\r\nHost: x\r\n\r\n") //nolint:errcheck
	<-p.entered
	c.Close()
	cancel() // drain, with the handler still running
	waitFor(t, "cleanup waiting for the handler", func() bool {
		for _, e := range p.Events() {
			if e == "cleanup" {
				t.Fatalf("Cleanup ran while a handler was still running: %q", p.Events())
			}
		}
		return strings.Contains(logs.String(), "plugin cleanup waits for the handlers still running")
	})
	close(p.release)
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{"provision", "ready", "request done", "cleanup"}
	if got := p.Events(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %q, want %q", got, want)
	}
}

// TestProvisionErrorFailsTheStart: Run returns the error, naming the route,
// and never reports ready.
func TestProvisionErrorFailsTheStart(t *testing.T) {
	testingShortSkip(t)
	p := newLifePlugin(t)
	p.provision = errors.New("ping: connection refused")
	_, wait, _, _ := startLife(t, p, io.Discard)
	err := wait()
	if err == nil || err.Error() != "routes[1] (/life): provision life: ping: connection refused" {
		t.Errorf("Run: %v; want the provision error naming the route", err)
	}
	if got := p.Events(); strings.Join(got, ",") != "provision,cleanup" {
		t.Errorf("events %q, want provision, cleanup (and never ready)", got)
	}
}

func testingShortSkip(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a serving process; make test runs it")
	}
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
