package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestGunicornEnvironment: WEB_CONCURRENCY and PORT are defaults, as in
// Gunicorn (the file, ASYNCD_* and flags override them); GUNICORN_CMD_ARGS
// is read as flags above the file and below ASYNCD_* and the command line.
func TestGunicornEnvironment(t *testing.T) {
	files := map[string]string{
		"asyncd.yaml": "timeout: 10\n",
		"bound.yaml":  "bind: [':9000']\nworkers: 2\n",
		"other.yaml":  "keepalive: 75\n",
	}
	tests := []struct {
		name  string
		args  []string
		env   []string
		check func(c *Config) bool
	}{
		{"WEB_CONCURRENCY is the default of workers", withFile, []string{"WEB_CONCURRENCY=3"},
			func(c *Config) bool { return c.Workers == 3 && c.Source["workers"] == "WEB_CONCURRENCY" }},
		{"the file beats WEB_CONCURRENCY", []string{"-c", "bound.yaml"}, []string{"WEB_CONCURRENCY=3"},
			func(c *Config) bool { return c.Workers == 2 }},
		{"PORT makes the default bind", nil, []string{"PORT=5000"},
			func(c *Config) bool {
				return reflect.DeepEqual(c.Bind, []string{"0.0.0.0:5000"}) && c.Source["bind"] == "PORT"
			}},
		{"a bind given beats PORT", []string{"-c", "bound.yaml"}, []string{"PORT=5000"},
			func(c *Config) bool { return reflect.DeepEqual(c.Bind, []string{":9000"}) }},
		{"ASYNCD_BIND beats PORT", nil, []string{"PORT=5000", "ASYNCD_BIND=:7000"},
			func(c *Config) bool { return reflect.DeepEqual(c.Bind, []string{":7000"}) }},
		{"GUNICORN_CMD_ARGS over the file", withFile, []string{`GUNICORN_CMD_ARGS=--timeout 20 -w 4 --bind=":81" -b '[::1]:82'`},
			func(c *Config) bool {
				return c.Timeout == 20*time.Second && c.Workers == 4 && reflect.DeepEqual(c.Bind, []string{":81", "[::1]:82"}) &&
					c.Source["timeout"] == "GUNICORN_CMD_ARGS --timeout" && c.Source["workers"] == "GUNICORN_CMD_ARGS --workers"
			}},
		{"ASYNCD_* over GUNICORN_CMD_ARGS", withFile, []string{"GUNICORN_CMD_ARGS=--timeout 20", "ASYNCD_TIMEOUT=30"},
			func(c *Config) bool { return c.Timeout == 30*time.Second && c.Source["timeout"] == "ASYNCD_TIMEOUT" }},
		{"the command line over GUNICORN_CMD_ARGS", append([]string{"-t", "40"}, withFile...), []string{"GUNICORN_CMD_ARGS=--timeout 20"},
			func(c *Config) bool { return c.Timeout == 40*time.Second }},
		{"GUNICORN_CMD_ARGS names the config file", nil, []string{"GUNICORN_CMD_ARGS=-c other.yaml"},
			func(c *Config) bool { return c.ConfigFile == "other.yaml" && c.Keepalive == 75*time.Second }},
		{"-c beats GUNICORN_CMD_ARGS -c", []string{"-c", "bound.yaml"}, []string{"GUNICORN_CMD_ARGS=-c other.yaml"},
			func(c *Config) bool { return c.ConfigFile == "bound.yaml" }},
		{"empty variables are not set", nil, []string{"WEB_CONCURRENCY=", "PORT=", "GUNICORN_CMD_ARGS= "},
			func(c *Config) bool { return c.Workers == 0 && reflect.DeepEqual(c.Bind, []string{"127.0.0.1:8000"}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, files, tt.args, tt.env...)
			if !tt.check(c) {
				t.Fatalf("workers %d (%s) bind %v (%s) timeout %s (%s) file %q",
					c.Workers, c.Source.Of("workers"), c.Bind, c.Source.Of("bind"), c.Timeout, c.Source.Of("timeout"), c.ConfigFile)
			}
		})
	}
}

// TestGunicornCmdArgsRest: what GUNICORN_CMD_ARGS holds that asyncd
// cannot honour is skipped with a warning naming it; values of flags
// asyncd has are checked as on the command line.
func TestGunicornCmdArgsRest(t *testing.T) {
	const src = "GUNICORN_CMD_ARGS"
	tests := []struct {
		name, args string
		warns      []string
		err        string
	}{
		{name: "application argument", args: "-w 2 myapp.wsgi:application",
			warns: []string{src + `: "myapp.wsgi:application": ignored: asyncd takes no application argument; name handlers in routes in the config file`}},
		{name: "unknown flag and its value", args: "--worker-tmp-dir /dev/shm --frobnicate 3 --timeout 5",
			warns: []string{
				src + ": --frobnicate 3: ignored: not a flag asyncd has",
				src + " --worker-tmp-dir: worker_tmp_dir: ignored: the heartbeat does not use files",
			}},
		{name: "refused settings are only warned about", args: "--daemon --certfile=c.pem --paste x.ini",
			warns: []string{
				src + " --daemon: daemon: ignored: asyncd does not daemonize: run it in the foreground under systemd, supervisord or a container runtime",
				src + " --paste: paste: ignored: there is no PasteDeploy: name handlers in routes",
				src + " --certfile: certfile: ignored: " + reasonNoTLS,
			}},
		{name: "Gunicorn's defaults say nothing", args: "--log-syslog-prefix= -R=false"},
		{name: "actions", args: "--check-config --version",
			warns: []string{
				src + ": --check-config: ignored: a command-line action; give it on the command line",
				src + ": --version: ignored: a command-line action; give it on the command line",
			}},
		{name: "bad value", args: "--workers many", err: src + ` --workers: workers: not an integer: "many"`},
		{name: "missing value", args: "--bind", err: src + ": flag needs an argument: --bind"},
		{name: "bad quoting", args: `--bind "0.0.0.0:80`, err: src + `: unterminated " quote`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warns, err := loadMem(yamlFile("routes: [{path: /, handler: h}]\n"), withFile, src+"="+tt.args)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(warns, "\n") != strings.Join(tt.warns, "\n") {
				t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(tt.warns, "\n"))
			}
		})
	}
}

// TestGunicornEnvErrorsNameTheVariable: a bad WEB_CONCURRENCY or PORT is
// an error naming the variable.
func TestGunicornEnvErrorsNameTheVariable(t *testing.T) {
	for env, want := range map[string]string{
		"WEB_CONCURRENCY=lots": `WEB_CONCURRENCY: workers: not an integer: "lots"`,
		"PORT=http":            `PORT: bind: item 0: "0.0.0.0:http": port must be a number from 0 to 65535`,
	} {
		if _, _, err := loadMem(nil, nil, env); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", env, err, want)
		}
	}
}

func TestSplitShell(t *testing.T) {
	for in, want := range map[string][]string{
		``:                                 nil,
		`  -w   4 `:                        {"-w", "4"},
		`--bind '0.0.0.0:80' -k x`:         {"--bind", "0.0.0.0:80", "-k", "x"},
		`--name "a \"b\" \$c \d"`:          {"--name", `a "b" $c \d`},
		`a\ b c\\d`:                        {"a b", `c\d`},
		`''`:                               {""},
		`x'y'"z"`:                          {"xyz"},
		"--access-logformat '%(h)s %(r)s'": {"--access-logformat", "%(h)s %(r)s"},
	} {
		got, err := splitShell(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitShell(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`'a`, `"a`, `a "b\"`} {
		if got, err := splitShell(in); err == nil {
			t.Errorf("splitShell(%q) = %q, want an error", in, got)
		}
	}
}
