package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// loadTestdata loads testdata/gunicorn/NAME as the file NAME.
func loadTestdata(t *testing.T, name string, environ ...string) (*Config, []string, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "gunicorn", name))
	if err != nil {
		t.Fatal(err)
	}
	return loadMem(map[string]string{name: string(b)}, []string{"-c", name}, environ...)
}

// TestGunicornOnePass is the done-criterion: Gunicorn's own
// example_config.py and real-world configs report every problem in one
// run, in line order (one line each, "file:line: ..."), and the warnings
// in line order too.
func TestGunicornOnePass(t *testing.T) {
	tests := []struct {
		file   string
		errors []string // "line: start of the message"
		warns  []string // "line: start of the message" ("0" for the file)
	}{
		{file: "example_config.py",
			errors: []string{
				"186: def post_fork(server, worker): a server hook",
				"189: def pre_fork(server, worker): a server hook",
				"192: def pre_exec(server): a server hook",
				"195: def when_ready(server): a server hook",
				"198: def worker_int(worker): a server hook",
				"215: def worker_abort(worker): a server hook",
			},
			// spew, daemon, tmp_upload_dir and proc_name hold Gunicorn's
			// defaults: no warning.
			warns: []string{"0: routes: none are configured", "72: keepalive: 2s is shorter"}},
		{file: "django_prod.py",
			errors: []string{
				"2: import multiprocessing: ",
				"3: import os: ",
				`5: bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000") is an expression`,
				"6: workers = multiprocessing.cpu_count() * 2 + 1 is an expression",
				`7: worker_class = gevent: gevent is a Python name, not a string: quote it: worker_class = "gevent"`,
				`9: threads = int(os.getenv("THREADS", "2")) is an expression`,
				`16: unknown key "logfile": write errorlog (logfile is Gunicorn's old name`,
				`17: loglevel = os.environ.get("LOG_LEVEL", "info") is an expression`,
				`24: if os.environ.get("ENV") == "staging": if statements are Python code`,
				"29: def on_starting(server): a server hook",
				"32: def post_request(worker, req, environ, resp): a server hook",
				"35: def worker_exit(server, worker): a server hook",
			},
			warns: []string{"0: routes: none", "14: preload_app has no effect", "20: debug is not a setting, and Gunicorn ignores it too",
				"21: proc_name has no effect"}},
		{file: "heroku.py",
			errors: []string{
				"2: import os: ",
				`4: bind = "0.0.0.0:" + os.environ.get("PORT", "5000") is an expression`,
				`5: workers = int(os.environ.get("WEB_CONCURRENCY", 2)) is an expression`,
			},
			warns: []string{"0: routes: none", `6: worker_class: "uvicorn.workers.UvicornWorker" runs as asyncd's "async" class`,
				"8: forwarded_allow_ips: '*' trusts", "11: capture_output has no effect", "12: enable_stdio_inheritance has no effect"}},
		{file: "digitalocean.py",
			warns: []string{"0: routes: none", "1: command is not a setting, and Gunicorn ignores it too", "2: pythonpath has no effect"}},
		{file: "websocket.py",
			errors: []string{`6: unknown key "log_file": write errorlog`, `7: unknown key "log_level": write loglevel`},
			warns: []string{"0: routes: none", `2: worker_class: "geventwebsocket.gunicorn.workers.GeventWebSocketWorker" runs as asyncd's "async" class`,
				"9: reload has no effect", "10: reload_extra_files has no effect"}},
		{file: "egg.py",
			errors: []string{
				`4: loglevel = info: info is a Python name, not a string: quote it: loglevel = "info"`,
				"5: preload_app = true: true is not a Python constant: write True",
				"7: keyfile: not supported: ",
				"8: certfile: not supported: ",
				`10: when_ready = lambda server: server.log.info("ready"): a server hook`,
			},
			warns: []string{"0: routes: none", `2: worker_class: "egg:gunicorn#gevent" runs as asyncd's "async" class`,
				"6: sendfile has no effect"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, warns, err := loadTestdata(t, tt.file)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			match(t, "error", tt.file, got, tt.errors)
			match(t, "warning", tt.file, warns, tt.warns)
		})
	}
}

// match checks that got, one "file:line: message" each, are want
// ("line: message start", line 0 for the file alone), in order.
func match(t *testing.T, what, file string, got, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		line, msg, _ := strings.Cut(want[i], ": ")
		prefix := file + ":" + line + ": " + msg
		if line == "0" {
			prefix = file + ": " + msg
		}
		ok = strings.HasPrefix(got[i], prefix)
	}
	if !ok {
		t.Errorf("%ss:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestProblemKinds: each problem says what to do about it, which the
// --check-config report groups by.
func TestProblemKinds(t *testing.T) {
	tests := []struct {
		name string
		py   string
		want []Kind
	}{
		{"import", "import os\n", []Kind{KindDelete}},
		{"call", "print('x')\n", []Kind{KindDelete}},
		{"function", "def f():\n    pass\n", []Kind{KindDelete}},
		{"helper variable", "port = int('80')\n", []Kind{KindDelete}},
		{"refused setting", "daemon = True\nwsgi_app = 'a:b'\n", []Kind{KindDelete, KindDelete}},
		{"expression", "timeout = 10 * 3\n", []Kind{KindEnv}},
		{"block", "if True:\n    workers = 2\n", []Kind{KindEnv}},
		{"hook def", "def on_exit(server):\n    pass\n", []Kind{KindHook}},
		{"hook assigned", "on_exit = None\npre_request = lambda w, r: None\n", []Kind{KindHook, KindHook}},
		{"unknown", "frobnicate = 1\nlogfile = 'x'\n", []Kind{KindUnknown, KindUnknown}},
		{"value", "workers = -1\nworker_class = gevent\nbind = b':80'\n", []Kind{KindValue, KindValue, KindValue}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadPy(tt.py)
			var got []Kind
			for _, e := range AllErrors(err) {
				got = append(got, e.Kind)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("kinds %v, want %v: %v", got, tt.want, err)
			}
		})
	}
}

// TestPyReadsPastErrors: after a statement it cannot take, the .py
// reader resumes at the next statement: a refused block's body, its
// else/except clauses, a broken line's bracket continuation are skipped
// and reported once.
func TestPyReadsPastErrors(t *testing.T) {
	tests := []struct {
		name, src string
		errors    []string // "line: message start"
		assigned  []string // names read
	}{
		{"block body and clauses", "if X:\n    workers = 2\nelif Y:\n    workers = 3\nelse:\n    workers = 4\ntimeout = 5\n",
			[]string{"1: if X: if statements are Python code"}, []string{"timeout"}},
		{"try", "try:\n    import a\nexcept ImportError:\n    pass\nfinally:\n    pass\nthreads = 2\n",
			[]string{"1: try: try statements"}, []string{"threads"}},
		{"two blocks are two problems", "if A:\n    pass\nif B:\n    pass\n",
			[]string{"1: if A:", "3: if B:"}, nil},
		{"else without a refused block", "workers = 1\nelse:\n    pass\n",
			[]string{"2: else: else statements are Python code"}, []string{"workers"}},
		{"one-line block with semicolons", "if X: workers = 2; threads = 3\ntimeout = 5\n",
			[]string{"1: if X: workers = 2: if statements"}, []string{"timeout"}},
		{"statements after a semicolon", "import os; workers = 2\n",
			[]string{"1: import os: "}, []string{"workers"}},
		{"decorated function", "@decorator\ndef on_exit(server):\n    pass\nworkers = 1\n",
			[]string{"1: @decorator is not an assignment", "2: def on_exit(server): a server hook"}, []string{"workers"}},
		{"unterminated string", "bind = \"0.0.0.0:8000\nworkers = 2\n",
			[]string{"1: unterminated string"}, []string{"workers"}},
		{"unterminated string in a bracket", "raw_env = [\n    \"A=1,\n    'B=2',\n]\nworkers = 2\n",
			[]string{"2: unterminated string"}, []string{"workers"}},
		{"bad number, then more", "workers = 12abc\ntimeout = 2x\nthreads = 2\n",
			[]string{`1: invalid number "12abc"`, `2: invalid number "2x"`}, []string{"threads"}},
		{"value errors inside brackets", "forwarded_allow_ips = {'a'}\nsecure_scheme_headers = {1: 'x'}\nworkers = 2\n",
			[]string{"1: sets are not setting values", "2: dict keys must be strings"}, []string{"workers"}},
		{"indented lines after a good one", "workers = 2\n  threads = 2\n  timeout = 3\nbacklog = 10\n",
			[]string{"2: unexpected indentation"}, []string{"workers", "backlog"}},
		{"never closed", "workers = 2\nbind = [':80',\n", []string{"2: '[' is never closed"}, []string{"workers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assigns, err := parseGunicornPy("g.py", []byte(tt.src))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			match(t, "error", "g.py", got, tt.errors)
			var names []string
			for _, a := range assigns {
				names = append(names, a.Name)
			}
			if !reflect.DeepEqual(names, tt.assigned) {
				t.Errorf("read %v, want %v", names, tt.assigned)
			}
		})
	}
}

// TestYAMLOnePass: a YAML config reports every problem too, each with the
// line of its key, in line order.
func TestYAMLOnePass(t *testing.T) {
	_, warns, err := loadMem(yamlFile(`workers: -1
worker_clas: sync
daemon: true
on_starting: x
logfile: /var/log/a.log
keepalive: 1
routes:
  - {path: nope, handler: static}
  - {path: /a}
debug: true
`), withFile)
	var got []string
	if err != nil {
		got = strings.Split(err.Error(), "\n")
	}
	match(t, "error", "asyncd.yaml", got, []string{
		"1: workers: must be >= 0, got -1",
		`2: unknown key "worker_clas" (did you mean "worker_class"?)`,
		"3: daemon: not supported: ",
		"4: on_starting: a server hook is a Python function",
		`5: unknown key "logfile": write errorlog`,
		`7: routes[0].path: must start with "/"`,
		"7: routes[1].handler: must name a handler",
	})
	match(t, "warning", "asyncd.yaml", warns, []string{
		"6: keepalive: 1s is shorter",
		"10: debug is not a setting, and Gunicorn ignores it too",
	})
	kinds := map[string]Kind{}
	for _, e := range AllErrors(err) {
		kinds[e.Key] = e.Kind
	}
	want := map[string]Kind{"workers": KindValue, "worker_clas": KindUnknown, "daemon": KindDelete,
		"on_starting": KindHook, "logfile": KindUnknown, "routes[0].path": KindValue, "routes[1].handler": KindValue}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
}

// TestCheckReturnsWhatItRead: Check gives the Config as far as it was read
// with the errors (for the plugin checks), Load never does.
func TestCheckReturnsWhatItRead(t *testing.T) {
	files := yamlFile("workers: -1\nroutes: [{path: /, handler: static, options: {x: 1}}]\n")
	c, _, err := load(NewFlagSet("asyncd"), withFile, nil, memOpen(files))
	if err == nil || c == nil || len(c.Routes) != 1 || c.Routes[0].Options["x"] != 1 {
		t.Fatalf("Check: %v, %+v", err, c)
	}
	if c, _, err := loadMem(files, withFile); err == nil || c != nil {
		t.Fatalf("Load: %v, %+v", err, c)
	}
}
