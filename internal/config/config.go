package config

import (
	"errors"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"strings"
	"time"

	"github.com/asyncd/asyncd/loop"
)

// Config is the effective, validated configuration. Every exported field but
// Source and Actions is a setting described in the table (Describe).
type Config struct {
	// ConfigFile is the file the settings were read from ("" for none).
	ConfigFile string

	Bind        []string
	Backlog     int
	ReusePort   bool
	SocketMode  os.FileMode
	SocketOwner string
	SocketGroup string

	Workers           int
	WorkerClass       WorkerClass
	Threads           int
	WorkerConnections int
	Backend           Backend
	Timeout           time.Duration
	GracefulTimeout   time.Duration
	Keepalive         time.Duration
	RequestTimeout    time.Duration
	HeaderTimeout     time.Duration
	BodyTimeout       time.Duration
	SendTimeout       time.Duration
	ShutdownDelay     time.Duration
	MaxRequests       int
	MaxRequestsJitter int
	MaxWorkerMemory   int64

	LimitRequestLine      int
	LimitRequestFields    int
	LimitRequestFieldSize int
	LimitRequestBody      int64
	LimitChunkExtension   int
	BodyBufferSize        int64
	OutputBufferLimit     int64

	BlockWarning time.Duration
	ServerHeader string

	AccessLog       string
	AccessLogFormat string
	AccessLogJSON   bool
	ErrorLog        string
	LogLevel        LogLevel
	ErrorLogFormat  LogFormat
	StatsdHost      string
	StatsdPrefix    string
	DogstatsdTags   string
	MetricsBind     string

	ForwardedAllowIPs   []string
	SecureSchemeHeaders map[string]string
	ProxyProtocol       ProxyProtocol
	ProxyAllowIPs       []string

	PidFile string
	User    string
	Group   string
	Umask   int
	Chdir   string
	RawEnv  []string

	Routes []Route

	// Source records where each setting's value came from, for messages.
	Source Sources
	// Actions are the command-line actions (--check-config, --print-config)
	// the caller acts on; they are not settings.
	Actions Actions
}

// Route maps a path (and optionally methods) to a handler plugin.
type Route struct {
	// Path is the route's path (key path:), or the root of the subtree it
	// mounts (key mount:, Mount set).
	Path    string
	Handler string
	// Methods limits the route to these methods; empty means every method.
	Methods []string
	// Blocking says the handler may block (disk, network, locks), so the
	// engine must not run it on the event loop even with worker_class sync.
	Blocking bool
	// StreamBody is request_buffering: false: the handler reads the body
	// as it arrives, never buffered whole first.
	StreamBody bool
	// Options are passed to the handler plugin, which validates them.
	Options map[string]any
	// Index is the route's position in the routes list, for messages.
	Index int
	// Mount says the route was written `mount: PATH`: Path exactly and
	// every path under Path + "/", with every method.
	Mount bool
}

// PathKey is the key the route's path was written under: "mount" or
// "path".
func (r Route) PathKey() string {
	if r.Mount {
		return "mount"
	}
	return "path"
}

// Sources maps a setting key to where its value came from: a file name
// (with ":line" for .py files), an environment variable name or a flag
// ("--workers"). Keys left at their default are absent.
type Sources map[string]string

// Of returns where key's value came from, or "default".
func (s Sources) Of(key string) string {
	if v, ok := s[key]; ok {
		return v
	}
	return "default"
}

// Actions are the command-line actions Load parses but does not perform.
type Actions struct {
	CheckConfig bool // --check-config: validate, report, exit 0 or 1
	PrintConfig bool // --print-config: print Config.YAML and exit
}

// ErrHelp is returned by Load when -h/--help was given; the caller prints
// Help and exits 0. The config file is not read, so help works even when the
// configuration is broken.
var ErrHelp = errors.New("help requested")

// ErrVersion is returned by Load when -v/--version was given.
var ErrVersion = errors.New("version requested")

// InternalEnvPrefix marks environment variables asyncd's own processes pass
// to each other (for example across a re-exec); Load ignores them instead of
// rejecting them as unknown settings. Every other ASYNCD_ variable must name
// a setting.
const InternalEnvPrefix = "ASYNCD_INTERNAL_"

// Error is a configuration error. Its message names the source and the key:
// `asyncd.yaml: workers: must be >= 0, got -2`.
type Error struct {
	Source string // file, "file:line", env var, flag; "" if unknown
	Key    string // setting key or path such as "routes[2].handler"; may be ""
	Msg    string // the message after the source, usually starting with Key
	Err    error  // underlying error, if any
	Kind   Kind   // what to do about it, for the --check-config report; 0 = KindValue
}

// Error returns "source: message", or the message alone without a source.
func (e *Error) Error() string {
	if e.Source == "" {
		return e.Msg
	}
	return e.Source + ": " + e.Msg
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// keyError builds the usual "source: key: detail" error.
func keyError(src, key, detail string) *Error {
	return &Error{Source: src, Key: key, Msg: key + ": " + detail}
}

// WorkerClass is the worker_class as given (Gunicorn's names are accepted);
// Normalized maps it to one of asyncd's classes.
type WorkerClass string

// asyncd's worker classes.
const (
	// WorkerSync runs handlers on the event loop; they must not block.
	WorkerSync WorkerClass = "sync"
	// WorkerAsync runs each request's handler on its own goroutine.
	WorkerAsync WorkerClass = "async"
	// WorkerGthread runs handlers on a pool of Threads goroutines per loop.
	WorkerGthread WorkerClass = "gthread"
)

// workerAliases maps Gunicorn's worker classes (lower-cased) to asyncd's.
var workerAliases = map[string]WorkerClass{
	"sync":                                  WorkerSync,
	"async":                                 WorkerAsync,
	"gthread":                               WorkerGthread,
	"gevent":                                WorkerAsync,
	"eventlet":                              WorkerAsync,
	"tornado":                               WorkerAsync,
	"uvicorn":                               WorkerAsync,
	"uvicorn.workers.uvicornworker":         WorkerAsync,
	"uvicorn.workers.uvicornh11worker":      WorkerAsync,
	"uvicorn_worker.uvicornworker":          WorkerAsync,
	"gunicorn.workers.sync.syncworker":      WorkerSync,
	"gunicorn.workers.gthread.threadworker": WorkerGthread,
	"gunicorn.workers.ggevent.geventworker": WorkerAsync,
	"gunicorn.workers.geventlet.eventletworker": WorkerAsync,
	"gunicorn.workers.gtornado.tornadoworker":   WorkerAsync,
	// Gunicorn's entry-point spelling of its own classes.
	"egg:gunicorn#sync":     WorkerSync,
	"egg:gunicorn#gthread":  WorkerGthread,
	"egg:gunicorn#gevent":   WorkerAsync,
	"egg:gunicorn#eventlet": WorkerAsync,
	"egg:gunicorn#tornado":  WorkerAsync,
	// gevent-websocket's worker: gevent, plus WebSocket upgrades, which
	// async routes can do with http.Hijacker.
	"geventwebsocket.gunicorn.workers.geventwebsocketworker": WorkerAsync,
}

// Normalized returns the asyncd class w stands for (gevent -> async), or ""
// if w names no class.
func (w WorkerClass) Normalized() WorkerClass {
	return workerAliases[strings.ToLower(strings.TrimSpace(string(w)))]
}

// EffectiveWorkerClass is the class the workers run: Normalized, except that
// sync with threads > 1 runs as gthread, as in Gunicorn.
func (c *Config) EffectiveWorkerClass() WorkerClass {
	n := c.WorkerClass.Normalized()
	if n == WorkerSync && c.Threads > 1 {
		return WorkerGthread
	}
	return n
}

// Backend selects the event-loop implementation: the name of a backend
// registered with loop.Register ("epoll", "io_uring"), or BackendAuto.
type Backend string

// BackendAuto runs the backend measured cheaper where it can run
// (loop.Choose).
const BackendAuto Backend = loop.Auto

// LogLevel is a Gunicorn log level name.
type LogLevel string

// Log levels, Gunicorn's names.
const (
	LogDebug    LogLevel = "debug"
	LogInfo     LogLevel = "info"
	LogWarning  LogLevel = "warning"
	LogError    LogLevel = "error"
	LogCritical LogLevel = "critical"
)

// Slog maps the level to slog's; critical is above slog.LevelError.
func (l LogLevel) Slog() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarning:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	case LogCritical:
		return slog.LevelError + 4
	default:
		return slog.LevelInfo
	}
}

// LogFormat is the error log's line format.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// ProxyProtocol selects PROXY protocol handling on accepted connections.
type ProxyProtocol string

// PROXY protocol modes.
const (
	ProxyOff  ProxyProtocol = "off"
	ProxyV1   ProxyProtocol = "v1"   // text header only
	ProxyV2   ProxyProtocol = "v2"   // binary header only
	ProxyAuto ProxyProtocol = "auto" // either, detected per connection
)

// Limits that the 0 ("as large as allowed") values of the limit_request_*
// settings stand for.
const (
	MaxRequestLine = 8190
	MaxHeaderCount = 32768
	// MaxFieldSize caps a header field when limit_request_field_size is 0
	// (Gunicorn: unlimited). A cap remains so one connection cannot make the
	// engine buffer without bound.
	MaxFieldSize = 1 << 20
)

// RequestLineLimit is limit_request_line with 0 resolved to MaxRequestLine.
func (c *Config) RequestLineLimit() int {
	if c.LimitRequestLine == 0 {
		return MaxRequestLine
	}
	return c.LimitRequestLine
}

// HeaderCountLimit is limit_request_fields with 0 resolved to MaxHeaderCount.
func (c *Config) HeaderCountLimit() int {
	if c.LimitRequestFields == 0 {
		return MaxHeaderCount
	}
	return c.LimitRequestFields
}

// FieldSizeLimit is limit_request_field_size with 0 resolved to MaxFieldSize.
func (c *Config) FieldSizeLimit() int {
	if c.LimitRequestFieldSize == 0 {
		return MaxFieldSize
	}
	return c.LimitRequestFieldSize
}

// Loops is the number of event loops: workers, or when 0 one per CPU the Go
// runtime may use. GOMAXPROCS rather than NumCPU because since Go 1.25 it
// follows the container's CPU quota: a 2-CPU pod on a 64-core host gets 2
// loops, not 64.
func (c *Config) Loops() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// Default returns a Config holding the built-in defaults.
func Default() *Config {
	c := &Config{Source: Sources{}}
	v := reflect.ValueOf(c).Elem()
	for i := range settings {
		s := &settings[i]
		if s.Field == "" {
			continue
		}
		v.FieldByName(s.Field).Set(reflect.ValueOf(cloneValue(s.Default)))
	}
	return c
}

// cloneValue copies slices and maps so Configs never share defaults.
func cloneValue(v any) any {
	switch x := v.(type) {
	case []string:
		return append(make([]string, 0, len(x)), x...)
	case map[string]string:
		m := make(map[string]string, len(x))
		for k, e := range x {
			m[k] = e
		}
		return m
	case []Route:
		return append(make([]Route, 0, len(x)), x...)
	}
	return v
}
