package plugins

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// lifeHandler records its lifecycle calls in a shared log.
type lifeHandler struct {
	name      string
	calls     *[]string
	provision error
	ready     error
}

func (h *lifeHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

func (h *lifeHandler) Provision(context.Context) error {
	*h.calls = append(*h.calls, "provision "+h.name)
	return h.provision
}

func (h *lifeHandler) CheckReady(context.Context) error {
	*h.calls = append(*h.calls, "ready "+h.name)
	return h.ready
}

func (h *lifeHandler) Cleanup() error {
	*h.calls = append(*h.calls, "cleanup "+h.name)
	return nil
}

// TestRegisterHTTPFactoryOptions: the route's options are decoded into
// the factory's struct, the factory gets the route's context, and an
// unknown option is an error naming the route and the option.
func TestRegisterHTTPFactoryOptions(t *testing.T) {
	type opts struct {
		DSN  string `option:"dsn"`
		Pool int    `option:"pool"`
	}
	var got opts
	var gotRoute Route
	RegisterHTTPFactory("test-factory-options", func(ctx *Context, o opts) (http.Handler, error) {
		got, gotRoute = o, ctx.Route
		if ctx.Logger == nil || ctx.Metrics == nil {
			t.Error("context without logger or metrics")
		}
		return http.NotFoundHandler(), nil
	})
	r := Route{Index: 3, Path: "/users", Handler: "test-factory-options", Options: map[string]any{"dsn": "postgres://db", "pool": 8}}
	if _, err := Build(r); err != nil {
		t.Fatal(err)
	}
	if want := (opts{DSN: "postgres://db", Pool: 8}); got != want || gotRoute.Path != "/users" || gotRoute.Index != 3 {
		t.Errorf("factory got %+v on %v; want %+v on routes[3]", got, gotRoute, want)
	}
	r.Options = map[string]any{"dns": "x"}
	_, err := Build(r)
	if err == nil || !strings.Contains(err.Error(), `routes[3] (/users): options: unknown option "dns" (known: dsn, pool)`) {
		t.Errorf("unknown option: %v", err)
	}
}

// TestLifecycleOrder: provisioned in route order, once per handler however
// many routes name it; checked in order, the first failing one named;
// cleaned up in reverse order.
func TestLifecycleOrder(t *testing.T) {
	var calls []string
	a := &lifeHandler{name: "a", calls: &calls}
	b := &lifeHandler{name: "b", calls: &calls, ready: errors.New("db down")}
	RegisterHTTP("test-life-a", a)
	RegisterHTTP("test-life-b", b)
	ins := instances(t, "test-life-a", "test-life-a", "test-life-b")
	if err := ins.Provision(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	name, err := ins.CheckReady(context.Background())
	if name != "test-life-b (routes[2] /p)" || err == nil || err.Error() != "db down" {
		t.Errorf("CheckReady = %q, %v; want test-life-b (routes[2] /p), db down", name, err)
	}
	ins.Cleanup(slog.New(slog.NewTextHandler(io.Discard, nil)))
	want := []string{"provision a", "provision b", "ready a", "ready b", "cleanup b", "cleanup a"}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("calls %q, want %q", calls, want)
	}
}

// TestProvisionErrorCleansUp: a failing Provision stops the start, names
// the route, and cleans up itself (it may have opened a pool before its
// ping failed) and what was provisioned before it, last first.
func TestProvisionErrorCleansUp(t *testing.T) {
	var calls []string
	ok := &lifeHandler{name: "ok", calls: &calls}
	bad := &lifeHandler{name: "bad", calls: &calls, provision: errors.New("ping: connection refused")}
	RegisterHTTP("test-prov-ok", ok)
	RegisterHTTP("test-prov-bad", bad)
	ins := instances(t, "test-prov-ok", "test-prov-bad")
	err := ins.Provision(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || err.Error() != "routes[1] (/p): provision test-prov-bad: ping: connection refused" {
		t.Errorf("Provision: %v", err)
	}
	if want := []string{"provision ok", "provision bad", "cleanup bad", "cleanup ok"}; !reflect.DeepEqual(calls, want) {
		t.Errorf("calls %q, want %q", calls, want)
	}
}

// instances builds one route on /p per plugin name, routes[0] first.
func instances(t *testing.T, names ...string) Instances {
	t.Helper()
	var ins Instances
	for i, name := range names {
		in, err := NewInstance(Route{Index: i, Path: "/p", Handler: name}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	return ins
}
