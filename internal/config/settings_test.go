package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTableMatchesConfig guards the one-table rule: every Config setting
// field has exactly one row, typed like the field, and the rows are
// consistent with each other.
func TestTableMatchesConfig(t *testing.T) {
	rows := map[string]string{} // field -> key
	keys := map[string]bool{}
	flags := map[string]string{}
	shorts := map[string]string{}
	for _, s := range Describe() {
		if keys[s.Key] {
			t.Errorf("key %q appears twice", s.Key)
		}
		keys[s.Key] = true
		if !slices.Contains(Groups, s.Group) {
			t.Errorf("%s: group %q is not in Groups", s.Key, s.Group)
		}
		for _, f := range s.flagNames() {
			n := normalizeFlag(f)
			if other, dup := flags[n]; dup {
				t.Errorf("flag --%s of %s is already %s's", f, s.Key, other)
			}
			flags[n] = s.Key
		}
		if s.Short != "" {
			if other, dup := shorts[s.Short]; dup {
				t.Errorf("flag -%s of %s is already %s's", s.Short, s.Key, other)
			}
			shorts[s.Short] = s.Key
		}
		switch s.Support {
		case Supported:
			f, ok := configType.FieldByName(s.Field)
			if !ok {
				t.Errorf("%s: no Config field %q", s.Key, s.Field)
				continue
			}
			if other, dup := rows[s.Field]; dup {
				t.Errorf("field %s has two rows: %s and %s", s.Field, other, s.Key)
			}
			rows[s.Field] = s.Key
			if got := reflect.TypeOf(s.Default); got != f.Type {
				t.Errorf("%s: default is %v, field %s is %v", s.Key, got, s.Field, f.Type)
			}
			if s.Help == "" {
				t.Errorf("%s: no help", s.Key)
			}
			if s.Env != "" && s.Env != env(s.Key) {
				t.Errorf("%s: env %s, want %s", s.Key, s.Env, env(s.Key))
			}
			if s.Env == "" && s.Key != "routes" {
				t.Errorf("%s: every setting but routes should be settable from the environment", s.Key)
			}
			if s.Flag == "" && s.Key != "routes" && s.Key != "secure_scheme_headers" {
				t.Errorf("%s: no flag", s.Key)
			}
			if s.Type == TypeEnum && len(s.Choices) == 0 {
				t.Errorf("%s: enum without choices", s.Key)
			}
		case Action:
			if s.Field != "" || s.Flag == "" || s.Help == "" {
				t.Errorf("%s: an action needs a flag and help, and no field", s.Key)
			}
		default:
			if s.Field != "" || s.Reason == "" {
				t.Errorf("%s: an unimplemented Gunicorn setting needs a reason and no field", s.Key)
			}
		}
	}
	for i := 0; i < configType.NumField(); i++ {
		f := configType.Field(i)
		if f.Name == "Source" || f.Name == "Actions" {
			continue
		}
		if _, ok := rows[f.Name]; !ok {
			t.Errorf("Config.%s has no row in the settings table", f.Name)
		}
	}
}

// TestDefaults pins the defaults the task specifies, so a table edit that
// changes one is deliberate.
func TestDefaults(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	want := &Config{
		Bind: []string{"127.0.0.1:8000"}, Backlog: 2048, ReusePort: true, SocketMode: 0o660,
		Workers: 0, WorkerClass: "sync", Threads: 1, WorkerConnections: 1000, Backend: "auto",
		Timeout: 30 * time.Second, GracefulTimeout: 30 * time.Second, Keepalive: 90 * time.Second,
		RequestTimeout: 60 * time.Second, HeaderTimeout: 10 * time.Second, BodyTimeout: 30 * time.Second, SendTimeout: 60 * time.Second,
		ShutdownDelay: 0, MaxRequests: 0, MaxRequestsJitter: 0, MaxWorkerMemory: 0,
		LimitRequestLine: 4094, LimitRequestFields: 100, LimitRequestFieldSize: 8190,
		LimitRequestBody: 100 << 20, LimitChunkExtension: 4096, BodyBufferSize: 1 << 20, OutputBufferLimit: 256 << 10,
		BlockWarning: 100 * time.Millisecond, ServerHeader: "asyncd",
		AccessLog: "", AccessLogFormat: `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`,
		ErrorLog: "-", LogLevel: "info", ErrorLogFormat: "text",
		ForwardedAllowIPs: []string{"127.0.0.1", "::1"},
		SecureSchemeHeaders: map[string]string{
			"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"},
		ProxyProtocol: "off", ProxyAllowIPs: []string{"127.0.0.1", "::1"},
		RawEnv: []string{}, Routes: []Route{}, Source: Sources{},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", *c, *want)
	}
	if c.RequestLineLimit() != 4094 || c.HeaderCountLimit() != 100 || c.FieldSizeLimit() != 8190 {
		t.Fatal("limit helpers")
	}
	z := &Config{}
	if z.RequestLineLimit() != MaxRequestLine || z.HeaderCountLimit() != MaxHeaderCount || z.FieldSizeLimit() != MaxFieldSize {
		t.Fatal("limit helpers at 0")
	}
	// Defaults are copied, never shared.
	c.Bind[0] = "changed"
	c.SecureSchemeHeaders["X"] = "y"
	if d := Default(); d.Bind[0] != "127.0.0.1:8000" || len(d.SecureSchemeHeaders) != 3 {
		t.Fatal("Default shares slices or maps between Configs")
	}
}

// TestValidateHandBuilt: Validate works on a Config built in code (no
// sources: the message has no source prefix).
func TestValidateHandBuilt(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"workers", func(c *Config) { c.Workers = -2 }, "workers: must be >= 0, got -2"},
		{"worker class", func(c *Config) { c.WorkerClass = "x" },
			`worker_class: must be one of sync, async, gthread (or Gunicorn's gevent, eventlet, tornado, uvicorn), got "x"`},
		{"backend", func(c *Config) { c.Backend = "kqueue" }, `backend: must be one of auto, epoll, io_uring, got "kqueue"`},
		{"mode", func(c *Config) { c.SocketMode = 0o1777 }, "socket_mode: must be between 0000 and 0777, got 01777"},
		{"umask", func(c *Config) { c.Umask = -1 }, "umask: must be between 0000 and 0777, got -0001"},
		{"socket owner", func(c *Config) { c.SocketOwner = "www data" }, `socket_owner: "www data" is not a user or group name or id`},
		{"socket group", func(c *Config) { c.SocketGroup = "www:data" }, `socket_group: "www:data" is not a user or group name or id`},
		{"route", func(c *Config) { c.Routes = []Route{{Path: "/", Handler: " "}} }, "routes[0].handler: must name a handler"},
		{"source prefix", func(c *Config) { c.Threads = 0; c.Source["threads"] = "ASYNCD_THREADS" },
			"ASYNCD_THREADS: threads: must be >= 1, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(c)
			if err := c.Validate(); err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestWorkerClassNormalized(t *testing.T) {
	for in, want := range map[WorkerClass]WorkerClass{
		"sync": WorkerSync, "async": WorkerAsync, "gthread": WorkerGthread, "gevent": WorkerAsync,
		"eventlet": WorkerAsync, "tornado": WorkerAsync, "uvicorn.workers.UvicornWorker": WorkerAsync,
		"uvicorn": WorkerAsync, "gunicorn.workers.ggevent.GeventWorker": WorkerAsync, "SYNC": WorkerSync,
		"gunicorn.workers.gthread.ThreadWorker": WorkerGthread, "custom.Worker": "",
	} {
		if got := in.Normalized(); got != want {
			t.Errorf("%q.Normalized() = %q, want %q", in, got, want)
		}
	}
}

func TestLogLevelSlog(t *testing.T) {
	levels := []LogLevel{LogDebug, LogInfo, LogWarning, LogError, LogCritical}
	for i := 1; i < len(levels); i++ {
		if levels[i-1].Slog() >= levels[i].Slog() {
			t.Errorf("%s (%v) is not below %s (%v)", levels[i-1], levels[i-1].Slog(), levels[i], levels[i].Slog())
		}
	}
}

// TestHelp checks --help lists every implemented flag under Gunicorn's
// groups, in order, with defaults, and hides the unimplemented ones.
func TestHelp(t *testing.T) {
	h := Help("asyncd")
	if !strings.HasPrefix(h, "usage: asyncd [OPTIONS]\n") {
		t.Fatalf("help starts %q", h[:40])
	}
	last := -1
	for _, g := range []Group{GroupConfigFile, GroupServerSocket, GroupWorkerProcesses, GroupSecurity,
		GroupDebugging, GroupServerMechanics, GroupLogging} {
		i := strings.Index(h, "\n"+string(g)+":\n")
		if i < 0 || i < last {
			t.Fatalf("group %q missing or out of order", g)
		}
		last = i
	}
	var opts strings.Builder // the option lines only, not the prose
	for _, line := range strings.Split(h, "\n") {
		if strings.HasPrefix(line, "  -") {
			opts.WriteString(line + "\n")
		}
	}
	for _, s := range Describe() {
		if s.Flag == "" {
			continue
		}
		o := opts.String()
		shown := strings.Contains(o, "--"+s.Flag+" ") || strings.Contains(o, "--"+s.Flag+"\n") ||
			strings.Contains(o, "--"+s.Flag+",")
		if want := s.Support == Supported || s.Support == Action; shown != want {
			t.Errorf("--%s shown=%v, want %v", s.Flag, shown, want)
		}
	}
	for _, want := range []string{
		"  -h, --help            Show this help message and exit.\n",
		"  -b ADDRESS, --bind ADDRESS\n",
		"  --error-logfile FILE, --log-file FILE\n",
		"[127.0.0.1:8000]", "[90s]", "[100MiB]", "[0660]",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, line := range strings.Split(h, "\n") {
		if len(line) > 80 {
			t.Errorf("line longer than 80 columns: %q", line)
		}
	}
	// Usage prints the same text to the flag set's output.
	fs := NewFlagSet("asyncd")
	var b strings.Builder
	fs.SetOutput(&b)
	fs.Usage()
	if b.String() != h {
		t.Fatal("Usage does not print Help")
	}
}

// TestPrintConfigRoundTrip: YAML() of a Config loads back to the same
// Config, for defaults and for a configuration touching every type.
func TestPrintConfigRoundTrip(t *testing.T) {
	rich := `
bind: [':8080', 'unix:/run/asyncd.sock', 'fd://3', '[::1]:0']
backlog: 128
socket_mode: "0600"
workers: 2
worker_class: gevent
threads: 4
worker_connections: 50
backend: epoll
timeout: 0
graceful_timeout: 1m
keepalive: 75s
request_timeout: 1500ms
header_timeout: 5
body_timeout: 2.5
shutdown_delay: 10s
max_requests: 100
max_requests_jitter: 10
max_worker_memory: 1GB
limit_request_line: 0
limit_request_fields: 50
limit_request_field_size: 0
limit_request_body: 12345
body_buffer_size: 64KiB
output_buffer_limit: 1MiB
block_warning: 0
server_header: ""
accesslog: '-'
access_log_format: '%(h)s "%(r)s"'
access_log_json: true
errorlog: /var/log/asyncd.log
loglevel: debug
error_log_format: json
forwarded_allow_ips: ['*']
secure_scheme_headers: {X-FORWARDED-PROTO: https}
proxy_protocol: v1
proxy_allow_ips: [10.0.0.0/8, '::1']
pidfile: /run/asyncd.pid
user: www-data
group: '1000'
umask: "0027"
chdir: /srv
raw_env: ['A=1', 'B=x=y']
routes:
  - path: /
    handler: hello
  - path: /api
    handler: api
    methods: [GET, POST]
    blocking: true
    options: {root: /srv, depth: 3, ratio: 0.5, tags: [a, b], nested: {on: true, none: null}}
`
	for name, files := range map[string]map[string]string{"defaults": yamlFile(""), "rich": yamlFile(rich)} {
		t.Run(name, func(t *testing.T) {
			first, _ := mustLoad(t, files, withFile)
			out, err := first.YAML()
			if err != nil {
				t.Fatal(err)
			}
			second, _ := mustLoad(t, map[string]string{"printed.yaml": string(out)}, []string{"-c", "printed.yaml"})
			first.Source, second.Source = nil, nil
			first.ConfigFile, second.ConfigFile = "", ""
			if !reflect.DeepEqual(first, second) {
				t.Fatalf("round trip differs\nprinted:\n%s\nfirst  %+v\nsecond %+v", out, *first, *second)
			}
			again, err := second.YAML()
			if err != nil {
				t.Fatal(err)
			}
			if stripComments(string(again)) != stripComments(string(out)) {
				t.Fatalf("printing is not stable:\n%s\n---\n%s", out, again)
			}
		})
	}
	// Sources are printed as comments.
	c, _ := mustLoad(t, yamlFile("workers: 2\nbind: [':1']\n"), append([]string{"-t", "5"}, withFile...))
	out, _ := c.YAML()
	for _, want := range []string{"workers: 2 # from asyncd.yaml:1\n", "timeout: 5s # from --timeout\n", "bind: # from asyncd.yaml:2\n", "backlog: 2048\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("printed config lacks %q:\n%s", want, out)
		}
	}
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, " # from "); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// TestPrintConfigFromGunicorn: a .py config prints as YAML that loads.
func TestPrintConfigFromGunicorn(t *testing.T) {
	c, _, err := loadPy(typicalGunicorn)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, _ := mustLoad(t, map[string]string{"p.yaml": string(out)}, []string{"-c", "p.yaml"})
	if back.Workers != 3 || back.WorkerClass != "gevent" || back.Keepalive != 2*time.Second || back.AccessLog != "-" {
		t.Fatalf("round trip: %+v", *back)
	}
}

func TestMain(m *testing.M) {
	// No test may depend on the developer's ASYNCD_* variables: Load takes
	// environ explicitly, and this keeps it that way.
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ASYNCD_") {
			k, _, _ := strings.Cut(kv, "=")
			os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}
