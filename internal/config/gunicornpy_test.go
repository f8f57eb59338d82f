package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// typicalGunicorn is the configuration most Gunicorn deployments carry.
const typicalGunicorn = `# gunicorn.conf.py
bind = "0.0.0.0:8000"
workers = 3
worker_class = "gevent"
worker_connections = 1000
timeout = 30
keepalive = 2
max_requests = 1000
max_requests_jitter = 100
loglevel = "info"
accesslog = "-"
errorlog = "-"
preload_app = False
`

func loadPy(src string, args ...string) (*Config, []string, error) {
	return loadMem(map[string]string{"gunicorn.conf.py": src}, append([]string{"-c", "gunicorn.conf.py"}, args...))
}

func TestGunicornTypical(t *testing.T) {
	c, w, err := loadPy(typicalGunicorn, "--workers=1") // 1: no CPU-count warning on small machines
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.ConfigFile = "gunicorn.conf.py"
	want.Bind = []string{"0.0.0.0:8000"}
	want.Workers = 1
	want.WorkerClass = "gevent"
	want.Timeout = 30 * time.Second
	want.Keepalive = 2 * time.Second
	want.MaxRequests = 1000
	want.MaxRequestsJitter = 100
	want.AccessLog = "-"
	c.Source, want.Source = nil, nil
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", *c, *want)
	}
	// preload_app = False is Gunicorn's default: no warning.
	wantWarn := []string{
		"gunicorn.conf.py: routes: none are configured, so every request is answered 404 Not Found: add routes (path and handler) to the config file",
		`gunicorn.conf.py:4: worker_class: "gevent" runs as asyncd's "async" class (handlers are Go code; nothing is monkey-patched)`,
		"gunicorn.conf.py:7: keepalive: 2s is shorter than the idle timeouts of most proxies and load balancers (nginx, AWS ALB: 60s); behind one, expect 502s on reused connections (asyncd's default is 90s)",
	}
	if !reflect.DeepEqual(w, wantWarn) {
		t.Fatalf("warnings:\n%s", strings.Join(w, "\n"))
	}
	// Without the flag the file's workers = 3 holds, with its line as source.
	c, _, err = loadPy(typicalGunicorn)
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 3 || c.Source["workers"] != "gunicorn.conf.py:3" || c.EffectiveWorkerClass() != WorkerAsync {
		t.Fatalf("workers %d from %s, class %s", c.Workers, c.Source["workers"], c.EffectiveWorkerClass())
	}
}

// TestGunicornErrors pins the message for each construct asyncd refuses.
func TestGunicornErrors(t *testing.T) {
	const f = "gunicorn.conf.py:"
	tests := []struct {
		name, src, want string
	}{
		{"the issue's example", "# gunicorn config\n\nworkers = multiprocessing.cpu_count()*2+1\n",
			f + "3: workers = multiprocessing.cpu_count()*2+1 is an expression; asyncd reads literals only: set workers = 0 for one event loop per CPU (with no workers, $WEB_CONCURRENCY is the default, as in Gunicorn)"},
		{"import", "import multiprocessing\nworkers = 2\n",
			f + "1: import multiprocessing: asyncd reads literal assignments only and runs no Python, so imports cannot work; delete it (instead of multiprocessing.cpu_count(), set workers = 0: one event loop per CPU)"},
		{"from import", "from os import environ\n",
			f + "1: from os import environ: asyncd reads literal assignments only and runs no Python, so imports cannot work; delete it (instead of reading os.environ, set ASYNCD_<KEY> environment variables)"},
		{"environ lookup", "bind = '0.0.0.0:' + os.environ.get('PORT', '8000')\n",
			f + "1: bind = '0.0.0.0:' + os.environ.get('PORT', '8000') is an expression; asyncd reads literals only: write the address itself, e.g. bind = \"0.0.0.0:8000\", or pass it with ASYNCD_BIND or -b (with no bind, $PORT means 0.0.0.0:$PORT, as in Gunicorn)"},
		{"helper literal", "port = 8000\n",
			f + `1: unknown key "port"`},
		{"f-string value", "bind = f\"0.0.0.0:{8000}\"\n",
			f + `1: bind = f"0.0.0.0:{8000}" uses an f-string; asyncd reads literals only: write the address itself, e.g. bind = "0.0.0.0:8000", or pass it with ASYNCD_BIND or -b (with no bind, $PORT means 0.0.0.0:$PORT, as in Gunicorn)`},
		{"generic hint", "timeout = 10 * 3\n",
			f + "1: timeout = 10 * 3 is an expression; asyncd reads literals only: write the value itself, or set it with ASYNCD_TIMEOUT or --timeout"},
		{"multi-line expression", "threads = (\n  1 +\n  2)\n",
			f + "1: threads = ( 1 + 2) is an expression; asyncd reads literals only: write the value itself, or set it with ASYNCD_THREADS or --threads"},
		{"helper variable", "port = int('8000')\n",
			f + `1: port = int('8000') is an expression, and "port" is not a setting; asyncd reads literals only: write the final values into the settings that use it`},
		{"misspelled expression", "worker = w\n",
			f + `1: worker = w is an expression, and "worker" is not a setting (did you mean "workers"?); asyncd reads literals only: write the final values into the settings that use it`},
		{"unimplemented setting expression", "proc_name = NAME\n",
			f + "1: proc_name = NAME is an expression; asyncd reads literals only: delete it (proc_name has no effect in asyncd: asyncd does not rename its processes)"},
		{"hook", "bind = ':80'\n\ndef on_starting(server):\n    server.log.info('hi')\n",
			f + "3: def on_starting(server): a server hook is a Python function, and asyncd runs no Python: " +
				"run that step with ExecStartPre= in the systemd unit, or in the container's entrypoint before exec asyncd"},
		{"function", "def helper():\n    return 1\n",
			f + "1: def helper(): functions are Python code; asyncd reads literal assignments only (name = value)"},
		{"if block", "if True:\n    workers = 2\n",
			f + "1: if True: if statements are Python code; asyncd reads literal assignments only (name = value): write one literal value per setting, and use ASYNCD_<KEY> environment variables for values that differ between environments"},
		{"indentation", "workers = 2\n  threads = 2\n",
			f + "2: unexpected indentation: asyncd reads top-level assignments only (name = value)"},
		{"call statement", "print('hi')\n",
			f + "1: print('hi') is not an assignment; asyncd reads literal assignments only (name = value)"},
		{"augmented assignment", "workers += 1\n",
			f + "1: workers += 1 is not an assignment; asyncd reads literal assignments only (name = value)"},
		{"annotation", "workers: int = 1\n",
			f + "1: workers: int = 1 is not an assignment; asyncd reads literal assignments only (name = value)"},
		{"chained assignment", "workers = threads = 2\n",
			f + "1: workers = threads = 2 is an expression; asyncd reads literals only: set workers = 0 for one event loop per CPU (with no workers, $WEB_CONCURRENCY is the default, as in Gunicorn)"},
		{"bare number", "42\n",
			f + "1: 42 is not an assignment; asyncd reads literal assignments only (name = value)"},
		{"unterminated string", "workers = 1\nbind = \"0.0.0.0:8000\n",
			f + "2: unterminated string (the closing quote is missing on this line)"},
		{"unterminated triple", "x = '''abc\n\n",
			f + "1: unterminated string"},
		{"unclosed bracket", "bind = [\n  ':80',\n",
			f + `1: '[' is never closed`},
		{"mismatched bracket", "bind = [':80')\n",
			f + `1: ')' does not match '[' opened on line 1`},
		{"leading zero", "umask = 0022\n",
			f + "1: 0022: leading zeros are not allowed in Python 3 (write 0o22 for an octal number)"},
		{"bad number", "workers = 12abc\n", f + `1: invalid number "12abc"`},
		{"complex", "workers = 3j\n", f + "1: 3j: complex numbers are not setting values"},
		{"huge int", "workers = 99999999999999999999\n", f + "1: 99999999999999999999: number too large"},
		{"set literal", "forwarded_allow_ips = {'127.0.0.1'}\n",
			f + "1: sets are not setting values: write a list [...]"},
		{"dict key", "secure_scheme_headers = {1: 'x'}\n",
			f + "1: dict keys must be strings, got 1 (a number)"},
		{"bytes", "bind = b':80'\n", f + `1: bytes literals (b"...") are not setting values: drop the b`},
		{"unknown name", "worker_clas = 'sync'\n",
			f + `1: unknown key "worker_clas" (did you mean "worker_class"?)`},
		{"value error with line", "\n\nworkers = -2\n", f + "3: workers: must be >= 0, got -2"},
		{"type error with line", "bind = 8000\n", f + "1: bind: must be a list of strings, got 8000 (a number)"},
		{"refused setting", "daemon = True\n",
			f + "1: daemon: not supported: asyncd does not daemonize: run it in the foreground under systemd, supervisord or a container runtime"},
		{"hook assigned", "when_ready = None\n", f + "1: when_ready: a server hook is a Python function, and asyncd runs no Python: " +
			"asyncd reports readiness: with Type=notify, systemd starts units ordered After=asyncd.service once asyncd serves " +
			"(or use ExecStartPost=); load balancers and Kubernetes use the health plugin's readiness route"},
		{"stray character", "workers = 2 ?\n", f + `1: unexpected character '?'`},
		{"N escape", `a = "\N{BULLET}"`, f + `1: \N{...} escapes are not supported: write the character itself`},
		{"deep nesting", "a = " + strings.Repeat("[", 70) + strings.Repeat("]", 70) + "\n",
			f + "1: values nested more than 64 deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := loadPy(tt.src)
			if err == nil {
				t.Fatalf("loaded %+v", c)
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}
