// Package plugins is asyncd's handler-plugin registry: handler factories
// register by name at compile time (the database/sql-driver and Caddy-module
// pattern), and routes in the config name them. Each factory decodes its own
// route options with Decode, so a bad option is reported with the route and
// the option's name.
//
// It owns the registry, option decoding, building one route's handler
// (Build, NewInstance) and the plugin lifecycle (Context, Provision,
// readiness checks, Cleanup). Turning the config's routes list into the
// engine's router is the serving process's (internal/serving.BuildRoutes),
// which calls Build per route. It must not touch sockets, the parser or the
// process model;
// the built-in plugins live in sub-packages (static, echo, ...) and package
// standard imports them all.
package plugins

import (
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/config"
	"github.com/go-viper/mapstructure/v2"
)

// Route is what a factory learns about the route it serves.
type Route struct {
	// Index is the route's position in the config's routes list.
	Index int
	// Path is the route's path.
	Path string
	// Handler is the plugin name.
	Handler string
	// Options are the route's raw options, for Decode.
	Options map[string]any

	ctx *Context // set by NewInstance
}

// Context is what the process gives the route's plugin: its logger,
// metrics registry and process state.
func (r Route) Context() *Context {
	if r.ctx != nil {
		return r.ctx
	}
	return contextFor(r, nil)
}

// String names the route in errors: `routes[2] (/api/)`.
func (r Route) String() string {
	return fmt.Sprintf("routes[%d] (%s)", r.Index, r.Path)
}

// Factory builds the handler for one route.
type Factory func(r Route) (engine.Handler, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a handler plugin available under name. It is meant to be
// called from an init function; registering a name twice or a nil factory
// panics, as database/sql.Register does, because it is a programming error
// found at start-up.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if f == nil {
		panic("plugins: Register " + name + ": nil factory")
	}
	if _, dup := factories[name]; dup {
		panic("plugins: Register called twice for " + name)
	}
	factories[name] = f
}

// Lookup returns the factory registered under name.
func Lookup(name string) (Factory, bool) {
	mu.RLock()
	defer mu.RUnlock()
	f, ok := factories[name]
	return f, ok
}

// Names lists the registered plugins, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(factories))
	for n := range factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Build creates the handler of every route. Errors name the route.
// Its lifecycle (Provisioner, ...) is not run: see NewInstance.
func Build(r Route) (engine.Handler, error) {
	in, err := NewInstance(r, nil)
	if err != nil {
		return nil, err
	}
	return in.Handler, nil
}

// Decode decodes a route's options into out, a pointer to a struct whose
// fields carry `option:"name"` tags. An option that out does not name, or a
// value of the wrong type, is an error naming the option. Durations are read
// as settings' are (config.DecodeDuration): seconds (2, 2.5, "2.5") or Go
// durations ("250ms"). A field not mentioned in opts is left as out had it
// (defaults).
func Decode(opts map[string]any, out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("plugins: Decode needs a pointer to a struct, got %T", out)
	}
	known := map[string]bool{}
	t := rv.Elem().Type()
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("option"); tag != "" && tag != "-" {
			known[tag] = true
		}
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !known[k] {
			names := make([]string, 0, len(known))
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			return fmt.Errorf("options: unknown option %q (known: %s)", k, strings.Join(names, ", "))
		}
	}
	for _, k := range keys {
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			TagName:    "option",
			Result:     out,
			DecodeHook: durationHook,
			Squash:     true,
		})
		if err != nil {
			return fmt.Errorf("options: %w", err)
		}
		if err := dec.Decode(map[string]any{k: opts[k]}); err != nil {
			return fmt.Errorf("options.%s: %s", k, cleanErr(err, k))
		}
	}
	return nil
}

// cleanErr turns mapstructure's message into a short one.
func cleanErr(err error, key string) string {
	s := err.Error()
	if i := strings.Index(s, "expected type"); i >= 0 {
		s = s[i:]
	}
	s = strings.ReplaceAll(s, "'"+key+"' ", "")
	if strings.HasPrefix(s, "decoding failed due to the following error(s):") {
		s = strings.TrimSpace(strings.TrimPrefix(s, "decoding failed due to the following error(s):"))
	}
	return s
}

var durationType = reflect.TypeOf(time.Duration(0))

// durationHook decodes durations with the config's rules
// (config.DecodeDuration), so that an option takes what a setting takes.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	return config.DecodeDuration(data)
}

// RegisterHTTP registers a net/http handler as a plugin named name, so that
// a team's own Go code (an http.ServeMux, a router built on net/http) can be
// mounted on a route with `handler: name`. It takes no options (see
// RegisterHTTPFactory for a plugin that does); h may implement
// Provisioner, ReadyChecker and CleanerUpper, which run once however many
// routes name it.
func RegisterHTTP(name string, h http.Handler) {
	RegisterHTTPFactory(name, func(*Context, struct{}) (http.Handler, error) { return h, nil })
}
