package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestLoadErrors pins the exact message for every kind of mistake: the
// source, the key, and what is wrong.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string   // asyncd.yaml, loaded when non-empty
		args []string // extra flags
		env  []string
		want string
	}{
		// The examples.
		{name: "misspelled key", yaml: "worker_clas: sync\n",
			want: `asyncd.yaml:1: unknown key "worker_clas" (did you mean "worker_class"?)`},
		{name: "negative workers", yaml: "workers: -2\n",
			want: `asyncd.yaml:1: workers: must be >= 0, got -2`},
		{name: "env duration", env: []string{"ASYNCD_TIMEOUT=abc"},
			want: `ASYNCD_TIMEOUT: timeout: not a duration: "abc"`},
		{name: "misspelled route key", yaml: "routes:\n- {path: /a, handler: h}\n- {path: /b, handler: h}\n- {path: /c, hanlder: h}\n",
			want: `asyncd.yaml:1: unknown key "routes[2].hanlder" (did you mean "routes[2].handler"?)`},

		// Keys.
		{name: "unknown key without suggestion", yaml: "frobnicate: 1\n",
			want: `asyncd.yaml:1: unknown key "frobnicate"`},
		{name: "hyphenated key", yaml: "worker-class: sync\n",
			want: `asyncd.yaml:1: unknown key "worker-class" (did you mean "worker_class"?)`},
		{name: "every problem, in line order", yaml: "workers: -1\nworkerz: 1\n",
			want: "asyncd.yaml:1: workers: must be >= 0, got -1\n" + `asyncd.yaml:2: unknown key "workerz" (did you mean "workers"?)`},
		{name: "config inside the file", yaml: "config: other.yaml\n",
			want: `asyncd.yaml:1: config: cannot be set in a config file: use -c/--config or ASYNCD_CONFIG`},
		{name: "action as a key", yaml: "check_config: true\n",
			want: `asyncd.yaml:1: check_config: is a command-line action, not a setting: run asyncd --check-config`},

		// YAML structure.
		{name: "yaml syntax", yaml: "workers: [1,\n",
			want: `asyncd.yaml: line 1: did not find expected node content`},
		{name: "top level list", yaml: "- workers\n",
			want: `asyncd.yaml: line 1: the top level must be a mapping of settings (key: value)`},
		{name: "two documents", yaml: "workers: 1\n---\nworkers: 2\n",
			want: `asyncd.yaml: line 2: a second YAML document; asyncd reads one`},
		{name: "unterminated quote", yaml: "workers: 1\nbind: \"x\n",
			want: `asyncd.yaml: line 2: found unexpected end of stream`},
		{name: "first-line error gets a line", yaml: "%",
			want: `asyncd.yaml: line 1: could not find expected directive name`},
		{name: "control character", yaml: "workers: 1\nbind: \x01\n",
			want: `asyncd.yaml: line 2: control characters are not allowed`},
		{name: "duplicate key", yaml: "workers: 1\nworkers: 2\n",
			want: `asyncd.yaml: line 2: mapping key "workers" already defined at line 1`},

		// Types.
		{name: "int from word", yaml: "workers: four\n", want: `asyncd.yaml:1: workers: not an integer: "four"`},
		{name: "int from list", yaml: "workers: [1]\n", want: `asyncd.yaml:1: workers: must be an integer, got a list`},
		{name: "int from fraction", yaml: "workers: 1.5\n", want: `asyncd.yaml:1: workers: not an integer: 1.5`},
		{name: "int from null", yaml: "workers:\n", want: `asyncd.yaml:1: workers: must be an integer, got null`},
		{name: "bool from word", yaml: "reuse_port: maybe\n",
			want: `asyncd.yaml:1: reuse_port: not a boolean: "maybe" (use true or false)`},
		{name: "bool from number", yaml: "reuse_port: 1\n",
			want: `asyncd.yaml:1: reuse_port: must be true or false, got 1 (a number)`},
		{name: "string from bool", yaml: "server_header: true\n",
			want: `asyncd.yaml:1: server_header: must be a string, got true (a boolean)`},
		{name: "duration from word", yaml: "keepalive: soon\n", want: `asyncd.yaml:1: keepalive: not a duration: "soon"`},
		{name: "duration from list", yaml: "keepalive: [1]\n",
			want: `asyncd.yaml:1: keepalive: must be a duration (seconds, or a Go duration such as 1m30s), got a list`},
		{name: "size ambiguous unit", yaml: "limit_request_body: 10M\n",
			want: `asyncd.yaml:1: limit_request_body: not a size: "10M" (ambiguous unit: write MB for powers of 1000 or MiB for powers of 1024)`},
		{name: "size unknown unit", yaml: "limit_request_body: 10 parsecs\n",
			want: `asyncd.yaml:1: limit_request_body: not a size: "10 parsecs" (use bytes, or a unit: KB MB GB TB, KiB MiB GiB TiB)`},
		{name: "size fraction of a byte", yaml: "limit_request_body: 0.3KiB\n",
			want: `asyncd.yaml:1: limit_request_body: not a whole number of bytes: "0.3KiB"`},
		{name: "mode not octal", yaml: `socket_mode: "0999"` + "\n", want: `asyncd.yaml:1: socket_mode: not an octal mode: "0999"`},
		{name: "mode decimal int", yaml: "socket_mode: 660\n",
			want: `asyncd.yaml:1: socket_mode: must be between 0000 and 0777, got 01224 (the number 660: write octal modes as a string such as "0660")`},
		{name: "list item not string", yaml: "bind: [8000]\n",
			want: `asyncd.yaml:1: bind: item 0 must be a string, got 8000 (a number)`},
		{name: "map value not string", yaml: "secure_scheme_headers: {X-PROTO: 1}\n",
			want: `asyncd.yaml:1: secure_scheme_headers: X-PROTO: must be a string, got 1 (a number)`},
		{name: "map from list", yaml: "secure_scheme_headers: [a]\n",
			want: `asyncd.yaml:1: secure_scheme_headers: must be a mapping of header name to value, got a list`},
		{name: "enum", yaml: "backend: kqueue\n",
			want: `asyncd.yaml:1: backend: must be one of auto, epoll, io_uring, got "kqueue"`},
		{name: "worker class", yaml: "worker_class: fast\n",
			want: `asyncd.yaml:1: worker_class: must be one of sync, async, gthread (or Gunicorn's gevent, eventlet, tornado, uvicorn), got "fast"`},
		{name: "log level", yaml: "loglevel: verbose\n",
			want: `asyncd.yaml:1: loglevel: must be one of debug, info, warning, error, critical, got "verbose"`},
		{name: "proxy protocol", yaml: "proxy_protocol: v3\n",
			want: `asyncd.yaml:1: proxy_protocol: must be one of off, v1, v2, auto, got "v3"`},

		// Values.
		{name: "threads", yaml: "threads: 0\n", want: `asyncd.yaml:1: threads: must be >= 1, got 0`},
		{name: "backlog", yaml: "backlog: 0\n", want: `asyncd.yaml:1: backlog: must be >= 1, got 0`},
		{name: "body buffer", yaml: "body_buffer_size: 0\n", want: `asyncd.yaml:1: body_buffer_size: must be >= 1, got 0`},
		{name: "request line", yaml: "limit_request_line: 9000\n",
			want: `asyncd.yaml:1: limit_request_line: must be between 0 and 8190, got 9000`},
		{name: "header count", yaml: "limit_request_fields: 40000\n",
			want: `asyncd.yaml:1: limit_request_fields: must be between 0 and 32768, got 40000`},
		{name: "field size", yaml: "limit_request_field_size: -1\n",
			want: `asyncd.yaml:1: limit_request_field_size: must be between 0 and 1048576, got -1`},
		{name: "negative duration", yaml: "keepalive: -5\n", want: `asyncd.yaml:1: keepalive: must be >= 0, got -5s`},
		{name: "zero header timeout", yaml: "header_timeout: 0\n", want: `asyncd.yaml:1: header_timeout: must be > 0, got 0s`},
		{name: "negative size", yaml: "limit_request_body: -1\n", want: `asyncd.yaml:1: limit_request_body: must be >= 0, got -1`},
		{name: "zero output buffer", yaml: "output_buffer_limit: 0\n", want: `asyncd.yaml:1: output_buffer_limit: must be >= 1, got 0`},
		{name: "umask range", yaml: `umask: "1777"` + "\n", want: `asyncd.yaml:1: umask: must be between 0000 and 0777, got 01777`},
		{name: "bind host only", yaml: "bind: 0.0.0.0\n",
			want: `asyncd.yaml:1: bind: item 0: "0.0.0.0": missing port, e.g. 0.0.0.0:8000`},
		{name: "bind bare ipv6", yaml: `bind: "::1:80"` + "\n",
			want: `asyncd.yaml:1: bind: item 0: "::1:80": write IPv6 addresses in brackets, e.g. [::1]:8000`},
		{name: "bind port", yaml: "bind: [':80', ':99999']\n",
			want: `asyncd.yaml:1: bind: item 1: ":99999": port must be a number from 0 to 65535`},
		{name: "bind empty", yaml: "bind: []\n", want: `asyncd.yaml:1: bind: must name at least one address`},
		{name: "bind duplicate", yaml: "bind: [':80', '0.0.0.0:81', ':80']\n",
			want: `asyncd.yaml:1: bind: item 2: ":80" is already item 0`},
		{name: "bind fd", yaml: "bind: fd://x\n",
			want: `asyncd.yaml:1: bind: item 0: "fd://x": fd:// needs a descriptor number, e.g. fd://3`},
		{name: "bind long unix path", yaml: "bind: unix:/" + strings.Repeat("a", 110) + "\n",
			want: `asyncd.yaml:1: bind: item 0: "unix:/` + strings.Repeat("a", 110) + `": socket path longer than 107 bytes`},
		{name: "bind host", yaml: "bind: 'my_host:80'\n",
			want: `asyncd.yaml:1: bind: item 0: "my_host:80": "my_host" is not a host name or IP address (for every interface write :80)`},
		{name: "allow list", yaml: "forwarded_allow_ips: 10.0.0.0/33\n",
			want: `asyncd.yaml:1: forwarded_allow_ips: item 0: "10.0.0.0/33" is not a CIDR such as 10.0.0.0/8`},
		{name: "allow list word", yaml: "proxy_allow_ips: [localhost]\n",
			want: `asyncd.yaml:1: proxy_allow_ips: item 0: "localhost" is not an IP address, a CIDR or *`},
		{name: "scheme header name", yaml: "secure_scheme_headers: {'X FOO': 'on'}\n",
			want: `asyncd.yaml:1: secure_scheme_headers: "X FOO" is not a header name`},
		{name: "raw env", yaml: "raw_env: [FOO]\n", want: `asyncd.yaml:1: raw_env: item 0 must be KEY=VALUE, got "FOO"`},
		{name: "raw env empty key", yaml: "raw_env: ['A=1', '=x']\n", want: `asyncd.yaml:1: raw_env: item 1 must be KEY=VALUE, got "=x"`},
		{name: "scheme header empty value", yaml: "secure_scheme_headers: {X-A: ''}\n",
			want: `asyncd.yaml:1: secure_scheme_headers: X-A: value must not be empty`},
		{name: "server header spaces", yaml: "server_header: ' asyncd'\n",
			want: `asyncd.yaml:1: server_header: must not start or end with spaces, got " asyncd"`},
		{name: "huge integer", yaml: "workers: 18446744073709551615\n", want: `asyncd.yaml:1: workers: too large: 18446744073709551615`},
		{name: "server header", yaml: "server_header: \"a\\r\\nX-Evil: 1\"\n",
			want: `asyncd.yaml:1: server_header: must not contain control characters, got "a\r\nX-Evil: 1"`},

		// Routes.
		{name: "routes not a list", yaml: "routes: {path: /}\n",
			want: `asyncd.yaml:1: routes: must be a list of mappings (path, handler, ...), got a mapping`},
		{name: "route not a mapping", yaml: "routes: [foo]\n",
			want: `asyncd.yaml:1: routes[0]: must be a mapping (path, handler, ...), got "foo"`},
		{name: "route path", yaml: "routes: [{path: api, handler: h}]\n",
			want: `asyncd.yaml:1: routes[0].path: must start with "/", got "api"`},
		{name: "route path query", yaml: "routes: [{path: '/a?b', handler: h}]\n",
			want: `asyncd.yaml:1: routes[0].path: must not contain a query or fragment, got "/a?b"`},
		{name: "route handler", yaml: "routes: [{path: /}]\n", want: `asyncd.yaml:1: routes[0].handler: must name a handler`},
		{name: "route handler type", yaml: "routes: [{path: /, handler: [a]}]\n",
			want: `asyncd.yaml:1: routes[0].handler: must be a string, got a list`},
		{name: "route method", yaml: "routes: [{path: /, handler: h, methods: ['GE T']}]\n",
			want: `asyncd.yaml:1: routes[0].methods[0]: not an HTTP method: "GE T"`},
		{name: "route blocking", yaml: "routes: [{path: /, handler: h, blocking: sure}]\n",
			want: `asyncd.yaml:1: routes[0].blocking: not a boolean: "sure" (use true or false)`},
		{name: "route options", yaml: "routes: [{path: /, handler: h, options: [1]}]\n",
			want: `asyncd.yaml:1: routes[0].options: must be a mapping, got a list`},
		{name: "route duplicate method", yaml: "routes:\n- {path: /a, handler: h, methods: [GET]}\n- {path: /a, handler: g, methods: [POST, GET]}\n",
			want: `asyncd.yaml:1: routes[1]: path "/a", method GET: already routed by routes[0]`},
		{name: "route duplicate any", yaml: "routes:\n- {path: /a, handler: h}\n- {path: /a, handler: g}\n",
			want: `asyncd.yaml:1: routes[1]: path "/a", every method: already routed by routes[0]`},
		{name: "route ServeMux wildcard", yaml: "routes:\n- {path: \"/users/{id}\", handler: h}\n",
			want: `asyncd.yaml:1: routes[0].path: "/users/{id}": routes match paths literally, not as ServeMux patterns ({name} segments), so this would answer 404 to every request: route the subtree with ` + "`mount: /users`" + ` and let the handler's http.ServeMux match the pattern`},
		{name: "mount wildcard", yaml: "routes:\n- {mount: \"/{x}\", handler: h}\n",
			want: `asyncd.yaml:1: routes[0].mount: "/{x}": routes match paths literally, not as ServeMux patterns ({name} segments), so this would answer 404 to every request: route the subtree with ` + "`mount: /`" + ` and let the handler's http.ServeMux match the pattern`},
		{name: "mount trailing slash", yaml: "routes:\n- {mount: /users/, handler: h}\n",
			want: `asyncd.yaml:1: routes[0].mount: write the mount without the trailing /: "/users" covers "/users" and every path under "/users/"`},
		{name: "mount with methods", yaml: "routes:\n- {mount: /users, handler: h, methods: [GET]}\n",
			want: `asyncd.yaml:1: routes[0].methods: a mount hands every method to its handler (which answers 405 itself): drop methods, or route with path:`},
		{name: "mount and path", yaml: "routes:\n- {mount: /users, path: /users, handler: h}\n",
			want: `asyncd.yaml:1: routes[0].path: a route has path: or mount:, not both`},
		{name: "mount over a prefix route", yaml: "routes:\n- {path: /users/, handler: h}\n- {mount: /users, handler: g}\n",
			want: `asyncd.yaml:1: routes[1]: path "/users/", every method: already routed by routes[0]`},
		{name: "mount over an exact route", yaml: "routes:\n- {mount: /users, handler: g}\n- {path: /users, handler: h}\n",
			want: `asyncd.yaml:1: routes[1]: path "/users", every method: already routed by routes[0]`},
		{name: "route unknown key no suggestion", yaml: "routes: [{path: /, handler: h, weight: 2}]\n",
			want: `asyncd.yaml:1: unknown key "routes[0].weight"`},

		// Gunicorn settings asyncd does not implement.
		{name: "daemon on", yaml: "daemon: true\n",
			want: `asyncd.yaml:1: daemon: not supported: asyncd does not daemonize: run it in the foreground under systemd, supervisord or a container runtime`},
		{name: "certfile", yaml: "certfile: /etc/tls/cert.pem\n",
			want: `asyncd.yaml:1: certfile: not supported: ` + reasonNoTLS},
		{name: "hook", yaml: "on_starting: x\n", want: `asyncd.yaml:1: on_starting: a server hook is a Python function, ` +
			`and asyncd runs no Python: run that step with ExecStartPre= in the systemd unit, or in the container's entrypoint before exec asyncd`},
		{name: "wsgi app", yaml: "wsgi_app: app:app\n",
			want: `asyncd.yaml:1: wsgi_app: not supported: asyncd runs no Python: name Go handlers in routes instead`},
		{name: "obsolete folding", yaml: "permit_obsolete_folding: true\n",
			want: `asyncd.yaml:1: permit_obsolete_folding: not supported: ` + reasonStrict},

		// Environment.
		{name: "env unknown", env: []string{"ASYNCD_WORKER_CLAS=sync"},
			want: `ASYNCD_WORKER_CLAS: unknown setting "worker_clas" (did you mean ASYNCD_WORKER_CLASS?)`},
		{name: "env routes", env: []string{"ASYNCD_ROUTES=x"}, want: `ASYNCD_ROUTES: routes: can only be set in the config file`},
		{name: "env range", env: []string{"ASYNCD_WORKERS=-1"}, want: `ASYNCD_WORKERS: workers: must be >= 0, got -1`},
		{name: "env int", env: []string{"ASYNCD_WORKERS=many"}, want: `ASYNCD_WORKERS: workers: not an integer: "many"`},
		{name: "env map", env: []string{"ASYNCD_SECURE_SCHEME_HEADERS=X-A"},
			want: `ASYNCD_SECURE_SCHEME_HEADERS: secure_scheme_headers: item "X-A" must be NAME=VALUE`},
		{name: "env action", env: []string{"ASYNCD_PRINT_CONFIG=1"},
			want: `ASYNCD_PRINT_CONFIG: print_config: is a command-line action, not a setting: run asyncd --print-config`},
		{name: "env daemon", env: []string{"ASYNCD_DAEMON=yes"},
			want: `ASYNCD_DAEMON: daemon: not supported: asyncd does not daemonize: run it in the foreground under systemd, supervisord or a container runtime`},
		{name: "env, then flags", env: []string{"ASYNCD_WORKERS=x"}, args: []string{"--timeout=x"},
			want: "ASYNCD_WORKERS: workers: not an integer: \"x\"\n--timeout: timeout: not a duration: \"x\""},

		// Flags.
		{name: "flag misspelled", args: []string{"--worker-clas", "sync"},
			want: `--worker-clas: unknown flag (did you mean --worker-class?)`},
		{name: "flag unknown", args: []string{"--frobnicate"}, want: `--frobnicate: unknown flag`},
		{name: "flag range", args: []string{"--workers=-1"}, want: `--workers: workers: must be >= 0, got -1`},
		{name: "short flag range", args: []string{"-w", "-1"}, want: `--workers: workers: must be >= 0, got -1`},
		{name: "flag duration", args: []string{"-t", "abc"}, want: `--timeout: timeout: not a duration: "abc"`},
		{name: "flag missing argument", args: []string{"--bind"}, want: `command line: flag needs an argument: --bind`},
		{name: "flag bool", args: []string{"--reuse-port=maybe"},
			want: `--reuse-port: reuse_port: not a boolean: "maybe" (use true or false)`},
		{name: "positional", args: []string{"myapp:app"},
			want: `command line: unexpected argument "myapp:app": asyncd takes no application argument; name handlers in routes in the config file`},
		{name: "gunicorn daemon flag", args: []string{"-D"},
			want: `--daemon: daemon: not supported: asyncd does not daemonize: run it in the foreground under systemd, supervisord or a container runtime`},
		{name: "gunicorn paste flag", args: []string{"--paster", "x.ini"},
			want: `--paster: paste: not supported: there is no PasteDeploy: name handlers in routes`},
		{name: "gunicorn certfile flag", args: []string{"--certfile=c.pem"},
			want: `--certfile: certfile: not supported: ` + reasonNoTLS},

		// The config file itself.
		{name: "missing file", args: []string{"-c", "nope.yaml"},
			want: `nope.yaml: cannot read the config file: file does not exist`},
		{name: "python module", args: []string{"-c", "python:app.conf"},
			want: `python:app.conf: python:MODULE configs cannot be read: pass the file's path to -c`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.yaml != "" {
				args = append(append([]string{}, withFile...), args...)
			}
			c, _, err := loadMem(yamlFile(tt.yaml), args, tt.env...)
			if err == nil {
				t.Fatalf("loaded %+v, want error %q", c, tt.want)
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got: %s\nwant: %s", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *config.Error", err)
			}
			if c != nil {
				t.Fatalf("got a Config with an error")
			}
		})
	}
}

// TestCheckConfigMisspelledKey is the done-criterion from the
// config side: --check-config with a misspelled key fails naming the key.
func TestCheckConfigMisspelledKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "asyncd.yaml")
	if err := os.WriteFile(path, []byte("bind: ':8080'\nworkres: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load(NewFlagSet("asyncd"), []string{"--check-config", "-c", path}, nil)
	want := path + `:2: unknown key "workres" (did you mean "workers"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "workres" || ce.Source != path+":2" || ce.Kind != KindUnknown {
		t.Fatalf("error fields: %+v", ce)
	}
}

// TestLoadRealFile covers the real file provider: reading, and a missing file.
func TestLoadRealFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "asyncd.yaml")
	if err := os.WriteFile(path, []byte("workers: 3\nkeepalive: 1m30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(NewFlagSet("asyncd"), []string{"--check-config", "-c", path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 3 || c.Keepalive != 90*time.Second || !c.Actions.CheckConfig || c.ConfigFile != path {
		t.Fatalf("got workers=%d keepalive=%s actions=%+v file=%q", c.Workers, c.Keepalive, c.Actions, c.ConfigFile)
	}
	missing := filepath.Join(dir, "missing.yaml")
	_, _, err = Load(NewFlagSet("asyncd"), []string{"-c", missing}, nil)
	if want := missing + ": cannot read the config file: no such file or directory"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

// TestPrecedence checks defaults < file < environment < flags, key by key,
// and that Source says which one won.
func TestPrecedence(t *testing.T) {
	files := yamlFile("workers: 2\ntimeout: 10\nbackend: epoll\n")
	tests := []struct {
		name    string
		args    []string
		env     []string
		workers int
		src     string
	}{
		{"default", nil, nil, 0, "default"},
		{"file", withFile, nil, 2, "asyncd.yaml:1"},
		{"env over file", withFile, []string{"ASYNCD_WORKERS=3"}, 3, "ASYNCD_WORKERS"},
		{"flag over env", append([]string{"-w", "4"}, withFile...), []string{"ASYNCD_WORKERS=3"}, 4, "--workers"},
		{"long flag", []string{"--workers=5"}, []string{"ASYNCD_WORKERS=3"}, 5, "--workers"},
		{"file named by env", nil, []string{"ASYNCD_CONFIG=asyncd.yaml"}, 2, "asyncd.yaml:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, files, tt.args, tt.env...)
			if c.Workers != tt.workers || c.Source.Of("workers") != tt.src {
				t.Fatalf("workers = %d from %s, want %d from %s", c.Workers, c.Source.Of("workers"), tt.workers, tt.src)
			}
		})
	}
	// Keys not overridden keep the file's value.
	c, _ := mustLoad(t, files, append([]string{"-w", "4"}, withFile...), "ASYNCD_TIMEOUT=20")
	if c.Timeout != 20*time.Second || c.Backend != "epoll" || c.Source["backend"] != "asyncd.yaml:3" {
		t.Fatalf("timeout %s backend %s (%s)", c.Timeout, c.Backend, c.Source["backend"])
	}
	// -c beats ASYNCD_CONFIG.
	files["other.yaml"] = "workers: 7\n"
	c, _ = mustLoad(t, files, []string{"-c", "other.yaml"}, "ASYNCD_CONFIG=asyncd.yaml")
	if c.Workers != 7 || c.ConfigFile != "other.yaml" || c.Source["config"] != "--config" {
		t.Fatalf("workers %d from file %q (%s)", c.Workers, c.ConfigFile, c.Source["config"])
	}
}

// TestLists covers repeatable flags, comma-separated environment lists and
// whole-list replacement across sources.
func TestLists(t *testing.T) {
	files := yamlFile("bind: ['127.0.0.1:9000']\nforwarded_allow_ips: '10.0.0.1, 10.0.0.2'\nraw_env: ['A=1,2']\n")
	tests := []struct {
		name  string
		args  []string
		env   []string
		bind  []string
		fwd   []string
		raw   []string
		bsrc  string
		fwsrc string
	}{
		{name: "file", args: withFile,
			bind: []string{"127.0.0.1:9000"}, fwd: []string{"10.0.0.1", "10.0.0.2"}, raw: []string{"A=1,2"},
			bsrc: "asyncd.yaml:1", fwsrc: "asyncd.yaml:2"},
		{name: "repeated -b replaces the file's list", args: append([]string{"-b", ":80", "--bind", "unix:/run/a.sock", "-b=[::1]:81"}, withFile...),
			bind: []string{":80", "unix:/run/a.sock", "[::1]:81"}, fwd: []string{"10.0.0.1", "10.0.0.2"}, raw: []string{"A=1,2"},
			bsrc: "--bind", fwsrc: "asyncd.yaml:2"},
		{name: "env lists split on commas", env: []string{"ASYNCD_BIND=:80, :81", "ASYNCD_FORWARDED_ALLOW_IPS=*", "ASYNCD_RAW_ENV=A=1,B=2"},
			bind: []string{":80", ":81"}, fwd: []string{"*"}, raw: []string{"A=1", "B=2"},
			bsrc: "ASYNCD_BIND", fwsrc: "ASYNCD_FORWARDED_ALLOW_IPS"},
		{name: "comma flag", args: []string{"--forwarded-allow-ips", "10.1.0.0/16,::1", "-e", "X=a,b", "-e", "Y=2"},
			bind: []string{"127.0.0.1:8000"}, fwd: []string{"10.1.0.0/16", "::1"}, raw: []string{"X=a,b", "Y=2"},
			bsrc: "default", fwsrc: "--forwarded-allow-ips"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, files, tt.args, tt.env...)
			if !reflect.DeepEqual(c.Bind, tt.bind) || !reflect.DeepEqual(c.ForwardedAllowIPs, tt.fwd) || !reflect.DeepEqual(c.RawEnv, tt.raw) {
				t.Fatalf("bind %q fwd %q raw_env %q", c.Bind, c.ForwardedAllowIPs, c.RawEnv)
			}
			if c.Source.Of("bind") != tt.bsrc || c.Source.Of("forwarded_allow_ips") != tt.fwsrc {
				t.Fatalf("sources %s %s", c.Source.Of("bind"), c.Source.Of("forwarded_allow_ips"))
			}
		})
	}
}

// TestValues checks each value syntax lands as the right Go value.
func TestValues(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   []string
		args  []string
		check func(c *Config) bool
	}{
		{name: "gunicorn seconds", yaml: "timeout: 45\ngraceful_timeout: '5'\nkeepalive: 2.5\n",
			check: func(c *Config) bool {
				return c.Timeout == 45*time.Second && c.GracefulTimeout == 5*time.Second && c.Keepalive == 2500*time.Millisecond
			}},
		{name: "go durations", yaml: "request_timeout: 1m30s\nblock_warning: 250ms\nshutdown_delay: 0\n",
			check: func(c *Config) bool {
				return c.RequestTimeout == 90*time.Second && c.BlockWarning == 250*time.Millisecond && c.ShutdownDelay == 0
			}},
		{name: "sizes", yaml: "limit_request_body: 10MB\nbody_buffer_size: 64KiB\nmax_worker_memory: 1.5GiB\noutput_buffer_limit: 4096\n",
			check: func(c *Config) bool {
				return c.LimitRequestBody == 10_000_000 && c.BodyBufferSize == 65536 &&
					c.MaxWorkerMemory == 3<<29 && c.OutputBufferLimit == 4096
			}},
		{name: "size from env and flag", env: []string{"ASYNCD_LIMIT_REQUEST_BODY=2 gib"}, args: []string{"--body-buffer-size", "1"},
			check: func(c *Config) bool { return c.LimitRequestBody == 2<<30 && c.BodyBufferSize == 1 }},
		{name: "modes", yaml: "socket_mode: 0600\numask: '027'\n",
			check: func(c *Config) bool { return c.SocketMode == 0o600 && c.Umask == 0o27 }},
		{name: "mode strings are octal", env: []string{"ASYNCD_SOCKET_MODE=660", "ASYNCD_UMASK=0o022"},
			check: func(c *Config) bool { return c.SocketMode == 0o660 && c.Umask == 0o22 }},
		{name: "bools", env: []string{"ASYNCD_REUSE_PORT=no", "ASYNCD_ACCESS_LOG_JSON=on"},
			check: func(c *Config) bool { return !c.ReusePort && c.AccessLogJSON }},
		{name: "bool flags", args: []string{"--reuse-port=false", "--access-log-json"},
			check: func(c *Config) bool { return !c.ReusePort && c.AccessLogJSON }},
		{name: "null strings", yaml: "accesslog:\npidfile: ~\nraw_env:\n",
			check: func(c *Config) bool { return c.AccessLog == "" && c.PidFile == "" && len(c.RawEnv) == 0 }},
		{name: "numeric user", yaml: "user: 1000\ngroup: 1000\n",
			check: func(c *Config) bool { return c.User == "1000" && c.Group == "1000" }},
		{name: "worker class kept as given", yaml: "worker_class: uvicorn.workers.UvicornWorker\n",
			check: func(c *Config) bool {
				return c.WorkerClass == "uvicorn.workers.UvicornWorker" && c.EffectiveWorkerClass() == WorkerAsync
			}},
		{name: "sync with threads is gthread", args: []string{"--threads", "4"},
			check: func(c *Config) bool { return c.WorkerClass == WorkerSync && c.EffectiveWorkerClass() == WorkerGthread }},
		{name: "enums are case-insensitive", yaml: "loglevel: WARNING\nbackend: IO_URING\nerror_log_format: JSON\n",
			check: func(c *Config) bool {
				return c.LogLevel == LogWarning && c.Backend == "io_uring" && c.ErrorLogFormat == LogJSON
			}},
		{name: "proxy protocol bool", yaml: "proxy_protocol: true\n",
			check: func(c *Config) bool { return c.ProxyProtocol == ProxyAuto }},
		{name: "proxy protocol bare flag", args: []string{"--proxy-protocol"},
			check: func(c *Config) bool { return c.ProxyProtocol == ProxyAuto }},
		{name: "proxy protocol version", args: []string{"--proxy-protocol=v2"}, env: []string{"ASYNCD_PROXY_PROTOCOL=false"},
			check: func(c *Config) bool { return c.ProxyProtocol == ProxyV2 }},
		{name: "proxy protocol env false", env: []string{"ASYNCD_PROXY_PROTOCOL=false"},
			check: func(c *Config) bool { return c.ProxyProtocol == ProxyOff }},
		{name: "scheme headers upper-cased", yaml: "secure_scheme_headers: {x-forwarded-proto: https}\n",
			check: func(c *Config) bool {
				return reflect.DeepEqual(c.SecureSchemeHeaders, map[string]string{"X-FORWARDED-PROTO": "https"})
			}},
		{name: "scheme headers from env", env: []string{"ASYNCD_SECURE_SCHEME_HEADERS=X-Proto=https, X-SSL=on"},
			check: func(c *Config) bool {
				return reflect.DeepEqual(c.SecureSchemeHeaders, map[string]string{"X-PROTO": "https", "X-SSL": "on"})
			}},
		{name: "flags take _ for -", args: []string{"--worker_class", "gthread", "--limit-request-field-size", "100", "--max_requests=5"},
			check: func(c *Config) bool {
				return c.WorkerClass == WorkerGthread && c.LimitRequestFieldSize == 100 && c.MaxRequests == 5
			}},
		{name: "gunicorn spelling", args: []string{"--limit-request-field_size", "0"},
			check: func(c *Config) bool { return c.LimitRequestFieldSize == 0 && c.FieldSizeLimit() == MaxFieldSize }},
		{name: "log-file alias", args: []string{"--log-file", "/var/log/a.log"},
			check: func(c *Config) bool { return c.ErrorLog == "/var/log/a.log" && c.Source["errorlog"] == "--log-file" }},
		{name: "repeated scalar flag: last wins", args: []string{"-w", "2", "-w", "3"},
			check: func(c *Config) bool { return c.Workers == 3 }},
		{name: "internal env ignored", env: []string{"ASYNCD_INTERNAL_LISTEN_FDS=3", "ASYNCD=1", "PATH=/bin"},
			check: func(c *Config) bool { return c.Workers == 0 }},
		{name: "file: prefix", args: []string{"-c", "file:asyncd.yaml"}, yaml: "workers: 6\n",
			check: func(c *Config) bool { return c.Workers == 6 }},
		{name: "routes", yaml: "routes:\n- {path: /, handler: a, methods: 'GET, HEAD', options: {}}\n- {path: /, handler: b, methods: [POST], blocking: true, options: {k: [1]}}\n- {path: /x, handler: c, methods: []}\n",
			check: func(c *Config) bool {
				return reflect.DeepEqual(c.Routes, []Route{
					{Path: "/", Handler: "a", Methods: []string{"GET", "HEAD"}},
					{Path: "/", Handler: "b", Methods: []string{"POST"}, Blocking: true, Options: map[string]any{"k": []any{1}}, Index: 1},
					{Path: "/x", Handler: "c", Index: 2},
				}) && c.Source["routes"] == "asyncd.yaml:1"
			}},
		{name: "null routes", yaml: "routes:\n", check: func(c *Config) bool { return c.Routes != nil && len(c.Routes) == 0 }},
		{name: "empty file", args: withFile, yaml: "# nothing yet\n",
			check: func(c *Config) bool { return reflect.DeepEqual(c.Bind, []string{"127.0.0.1:8000"}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.yaml != "" && len(args) == 0 {
				args = withFile
			}
			c, _ := mustLoad(t, yamlFile(tt.yaml), args, tt.env...)
			if !tt.check(c) {
				t.Fatalf("unexpected config: %+v", *c)
			}
		})
	}
}

// TestWarnings pins the warnings for settings that are valid but have no
// effect or probably do not do what was meant.
func TestWarnings(t *testing.T) {
	const route = "routes: [{path: /, handler: h}]\n"
	tests := []struct {
		name string
		yaml string // a route is added unless it has routes
		args []string
		env  []string
		want []string
	}{
		{name: "defaults and a route: none"},
		{name: "no routes", yaml: "workers: 1\nroutes: []\n",
			want: []string{"asyncd.yaml:2: routes: none are configured, so every request is answered 404 Not Found: " +
				"add routes (path and handler) to the config file"}},
		{name: "ignored gunicorn setting", yaml: "preload_app: true\nsendfile: false\n",
			want: []string{
				"asyncd.yaml:1: preload_app has no effect in asyncd: handlers are compiled into the binary; there is no application to load before forking",
				"asyncd.yaml:2: sendfile has no effect in asyncd: the engine decides how responses are written",
			}},
		// The issue: values that are Gunicorn's defaults change nothing there
		// either, so they are not worth a warning.
		{name: "gunicorn defaults: none", yaml: "daemon: false\ncertfile: null\nspew: false\nproc_name: null\n" +
			"preload_app: false\nsendfile: null\nheader_map: drop\nsuppress_ragged_eofs: true\nreload_engine: auto\n" +
			"logconfig_dict: {}\nraw_paste_global_conf: []\nworker_tmp_dir: null\n" +
			"forwarder_headers: 'SCRIPT_NAME, PATH_INFO'\nssl_version: 2\ncert_reqs: 0\n"},
		{name: "gunicorn defaults from env", env: []string{"ASYNCD_SPEW=false", "ASYNCD_DAEMON=no", "ASYNCD_PRELOAD_APP=0"}},
		{name: "not gunicorn's defaults", yaml: "proc_name: myapp\nsuppress_ragged_eofs: false\nheader_map: dangerous\n",
			want: []string{
				"asyncd.yaml:1: proc_name has no effect in asyncd: asyncd does not rename its processes",
				"asyncd.yaml:2: suppress_ragged_eofs has no effect in asyncd: " + reasonNoTLS,
				"asyncd.yaml:3: header_map has no effect in asyncd: there is no WSGI environ: header names reach handlers as sent, so - and _ never collide",
			}},
		{name: "gunicorn flag", args: []string{"--preload"},
			want: []string{"--preload: preload_app has no effect in asyncd: handlers are compiled into the binary; there is no application to load before forking"}},
		{name: "gunicorn env", env: []string{"ASYNCD_SPEW=1"},
			want: []string{"ASYNCD_SPEW: spew has no effect in asyncd: there is no Python interpreter to trace"}},
		{name: "worker alias and short keepalive", yaml: "worker_class: gevent\nkeepalive: 2\n",
			want: []string{
				`asyncd.yaml:1: worker_class: "gevent" runs as asyncd's "async" class (handlers are Go code; nothing is monkey-patched)`,
				"asyncd.yaml:2: keepalive: 2s is shorter than the idle timeouts of most proxies and load balancers (nginx, AWS ALB: 60s); behind one, expect 502s on reused connections (asyncd's default is 90s)",
			}},
		{name: "egg spelling", yaml: "worker_class: 'egg:gunicorn#gevent'\n",
			want: []string{`asyncd.yaml:1: worker_class: "egg:gunicorn#gevent" runs as asyncd's "async" class (handlers are Go code; nothing is monkey-patched)`}},
		{name: "gevent-websocket", yaml: "worker_class: geventwebsocket.gunicorn.workers.GeventWebSocketWorker\n",
			want: []string{`asyncd.yaml:1: worker_class: "geventwebsocket.gunicorn.workers.GeventWebSocketWorker" runs as asyncd's "async" class ` +
				"(handlers are Go code; nothing is monkey-patched); " + workerNotes["geventwebsocket.gunicorn.workers.geventwebsocketworker"]}},
		{name: "names gunicorn ignores too", yaml: "debug: true\ncommand: /srv/env/bin/gunicorn\n",
			want: []string{
				"asyncd.yaml:1: debug is not a setting, and Gunicorn ignores it too (its debug setting was removed in Gunicorn 19): delete the line",
				"asyncd.yaml:2: command is not a setting, and Gunicorn ignores it too (it was never a Gunicorn setting; it comes from supervisord-style examples): delete the line",
			}},
		{name: "threads with async", args: []string{"-k", "async", "--threads", "8"},
			want: []string{"--threads: threads has no effect with worker_class async"}},
		{name: "jitter without max_requests", env: []string{"ASYNCD_MAX_REQUESTS_JITTER=50"},
			want: []string{"ASYNCD_MAX_REQUESTS_JITTER: max_requests_jitter has no effect while max_requests is 0"}},
		{name: "forwarded_allow_ips '*'", yaml: "forwarded_allow_ips: '*'\n",
			want: []string{"asyncd.yaml:1: forwarded_allow_ips: '*' trusts the X-Forwarded-For, Forwarded and scheme headers of every peer, so any client that reaches asyncd directly sets its own address and scheme; list the proxies' addresses instead"}},
		{name: "forwarded_allow_ips '*' among others, from the environment", env: []string{"ASYNCD_FORWARDED_ALLOW_IPS=10.0.0.0/8, *"},
			want: []string{"ASYNCD_FORWARDED_ALLOW_IPS: forwarded_allow_ips: '*' trusts the X-Forwarded-For, Forwarded and scheme headers of every peer, so any client that reaches asyncd directly sets its own address and scheme; list the proxies' addresses instead"}},
		{name: "lower-case method", yaml: "routes: [{path: /, handler: h, methods: [get]}]\n",
			want: []string{`asyncd.yaml:1: routes[0].methods[0]: "get" is not "GET": HTTP methods are case-sensitive`}},
		{name: "in line order, whatever the kind", yaml: "keepalive: 1\nspew: true\nworkers: 1\nworker_class: eventlet\n",
			want: []string{
				"asyncd.yaml:1: keepalive: 1s is shorter than the idle timeouts of most proxies and load balancers (nginx, AWS ALB: 60s); behind one, expect 502s on reused connections (asyncd's default is 90s)",
				"asyncd.yaml:2: spew has no effect in asyncd: there is no Python interpreter to trace",
				`asyncd.yaml:4: worker_class: "eventlet" runs as asyncd's "async" class (handlers are Go code; nothing is monkey-patched)`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := tt.yaml
			if !strings.Contains(y, "routes:") {
				y += route
			}
			args := append(append([]string{}, withFile...), tt.args...)
			_, w := mustLoad(t, yamlFile(y), args, tt.env...)
			if len(w) != len(tt.want) {
				t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(w, "\n"), strings.Join(tt.want, "\n"))
			}
			for i := range w {
				if w[i] != tt.want[i] {
					t.Fatalf("warning %d\n got: %s\nwant: %s", i, w[i], tt.want[i])
				}
			}
		})
	}
}

// TestWorkersAboveCPUsWarns needs the CPU count, so it is computed.
func TestWorkersAboveCPUsWarns(t *testing.T) {
	c, w := mustLoad(t, yamlFile("routes: [{path: /, handler: h}]\n"), []string{"-c", "asyncd.yaml", "-w", "100000"})
	if c.Loops() != 100000 {
		t.Fatalf("Loops() = %d", c.Loops())
	}
	if len(w) != 1 || !strings.HasPrefix(w[0], "--workers: workers: 100000 event loops on ") ||
		!strings.HasSuffix(w[0], "use workers = 0 for one per CPU") {
		t.Fatalf("warnings %q", w)
	}
	c, w = mustLoad(t, yamlFile("routes: [{path: /, handler: h}]\n"), withFile)
	if len(w) != 0 || c.Loops() < 1 {
		t.Fatalf("default: loops %d warnings %q", c.Loops(), w)
	}
}

// TestHelpAndVersion: -h/--help and -v/--version short-circuit before any
// file or environment is read, so they work with a broken configuration.
func TestHelpAndVersion(t *testing.T) {
	broken := yamlFile("worker_clas: x\n")
	for _, tt := range []struct {
		args []string
		want error
	}{
		{[]string{"-h"}, ErrHelp},
		{[]string{"--help", "-c", "asyncd.yaml"}, ErrHelp},
		{[]string{"-c", "asyncd.yaml", "-v"}, ErrVersion},
		{[]string{"--version"}, ErrVersion},
	} {
		c, w, err := loadMem(broken, tt.args, "ASYNCD_NOPE=1")
		if !errors.Is(err, tt.want) || c != nil || w != nil {
			t.Errorf("%v: got %v, %v, %v; want %v", tt.args, c, w, err, tt.want)
		}
	}
}

func TestActions(t *testing.T) {
	c, _ := mustLoad(t, nil, []string{"--print-config"})
	if !c.Actions.PrintConfig || c.Actions.CheckConfig {
		t.Fatalf("actions %+v", c.Actions)
	}
	c, _ = mustLoad(t, nil, []string{"--check-config"})
	if c.Actions.PrintConfig || !c.Actions.CheckConfig {
		t.Fatalf("actions %+v", c.Actions)
	}
}
