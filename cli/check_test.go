package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/plugins"
)

// TestWriteReport: several problems are grouped by what to do, each group
// in line order; one problem alone is one line.
func TestWriteReport(t *testing.T) {
	errs := []*config.Error{
		{Source: "g.py:9", Msg: "unknown key \"x\"", Kind: config.KindUnknown},
		{Source: "g.py:7", Msg: "def on_exit(server): hook", Kind: config.KindHook},
		{Source: "g.py:3", Msg: "workers: bad", Kind: config.KindValue},
		{Source: "g.py:1", Msg: "import os: delete", Kind: config.KindDelete},
		{Source: "ASYNCD_TIMEOUT", Msg: "timeout: bad"},
		{Source: "g.py:2", Msg: "bind = x + y is an expression", Kind: config.KindEnv},
		{Source: "g.py:5", Msg: "chdir: /nope: no such file or directory", Kind: config.KindHost},
		{Source: "g.py:2", Msg: "import sys: delete", Kind: config.KindDelete},
	}
	var b bytes.Buffer
	writeReport(&b, "g.py", errs, []string{"g.py:4: spew has no effect"})
	want := `asyncd: g.py: 8 errors, 1 warning

` + config.KindDelete.Title() + `:
  g.py:1: import os: delete
  g.py:2: import sys: delete

` + config.KindEnv.Title() + `:
  g.py:2: bind = x + y is an expression

` + config.KindHook.Title() + `:
  g.py:7: def on_exit(server): hook

` + config.KindUnknown.Title() + `:
  g.py:9: unknown key "x"

` + config.KindValue.Title() + `:
  g.py:3: workers: bad
  ASYNCD_TIMEOUT: timeout: bad

` + config.KindHost.Title() + `:
  g.py:5: chdir: /nope: no such file or directory

Warnings (these load, but may not do what you meant):
  g.py:4: spew has no effect
`
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	writeReport(&b, "g.py", errs[:1], nil)
	if got := b.String(); got != "asyncd: g.py:9: unknown key \"x\"\n" {
		t.Errorf("one problem: %q", got)
	}
}

// TestCheckHost: --check-config checks what the config names on this
// machine: chdir, the log and pidfile directories (writable by whoever
// writes there), unix socket directories, user and group.
func TestCheckHost(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	src := config.Sources{"chdir": "a.yaml:1", "errorlog": "a.yaml:2", "accesslog": "a.yaml:3", "pidfile": "a.yaml:4",
		"user": "a.yaml:5", "group": "a.yaml:6"}
	tests := []struct {
		name string
		cfg  config.Config
		want []string
		root bool // the case switches users: only root can
	}{
		{name: "all there", cfg: config.Config{Chdir: dir, ErrorLog: "err.log", AccessLog: "acc.log", PidFile: "run.pid"}},
		{name: "stdout and stderr", cfg: config.Config{ErrorLog: "-", AccessLog: "-"}},
		{name: "chdir missing", cfg: config.Config{Chdir: missing, PidFile: "run.pid"},
			want: []string{"a.yaml:1: chdir: " + missing + ": no such file or directory"}},
		{name: "chdir a file", cfg: config.Config{Chdir: file},
			want: []string{"a.yaml:1: chdir: " + file + ": not a directory"}},
		{name: "directories missing", cfg: config.Config{
			ErrorLog: filepath.Join(missing, "e.log"), AccessLog: filepath.Join(missing, "a.log"), PidFile: filepath.Join(missing, "p.pid")},
			want: []string{
				"a.yaml:2: errorlog: " + filepath.Join(missing, "e.log") + ": the directory " + missing + " does not exist",
				"a.yaml:4: pidfile: " + filepath.Join(missing, "p.pid") + ": the directory " + missing + " does not exist",
				"a.yaml:3: accesslog: " + filepath.Join(missing, "a.log") + ": the directory " + missing + " does not exist",
			}},
		{name: "relative to chdir", cfg: config.Config{Chdir: dir, AccessLog: "missing/a.log"},
			want: []string{"a.yaml:3: accesslog: " + filepath.Join(dir, "missing/a.log") + ": the directory " + missing + " does not exist"}},
		{name: "a directory as the log", cfg: config.Config{ErrorLog: dir},
			want: []string{"a.yaml:2: errorlog: " + dir + ": is a directory"}},
		{name: "no such user and group", cfg: config.Config{User: "asyncd-no-such-user", Group: "asyncd-no-such-group"},
			want: []string{`a.yaml:5: user: "asyncd-no-such-user": no such user on this machine`}},
		{name: "no such group", cfg: config.Config{Group: "asyncd-no-such-group"},
			want: []string{`a.yaml:6: group: "asyncd-no-such-group": no such group on this machine`}},
		{name: "the serving user cannot write the access log's directory", root: true,
			cfg: config.Config{User: "nobody", AccessLog: filepath.Join(ro, "a.log"), ErrorLog: filepath.Join(ro, "e.log")},
			want: []string{"a.yaml:3: accesslog: " + filepath.Join(ro, "a.log") + ": uid " + uidOf(t, "nobody") +
				" cannot create files in " + ro + " (-rwxr-xr-x, owner uid 0, group gid 0)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("switching users needs root")
			}
			cfg := tt.cfg
			cfg.Source = src
			errs, warns := checkHost(&cfg)
			var got []string
			for _, e := range errs {
				if e.Kind != config.KindHost {
					t.Errorf("%s: kind %v", e, e.Kind)
				}
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") || len(warns) != 0 {
				t.Fatalf("problems:\n%s\nwarnings: %q\nwant:\n%s", strings.Join(got, "\n"), warns, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func uidOf(t *testing.T, name string) string {
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("no user %s here: %v", name, err)
	}
	return u.Uid
}

// TestCheckHostNotRoot: a config that switches users, checked by someone
// who cannot switch, gets a warning rather than a check as the wrong user.
func TestCheckHostNotRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root: switching works")
	}
	cfg := config.Config{User: "root", Source: config.Sources{"user": "a.yaml:5"}}
	errs, warns := checkHost(&cfg)
	if len(errs) != 0 || len(warns) != 1 || !strings.Contains(warns[0], "needs asyncd to start as root") {
		t.Fatalf("errors %v, warnings %q", errs, warns)
	}
}

func TestVersionFrom(t *testing.T) {
	dep := &debug.Module{Path: modulePath, Version: "v1.4.0"}
	for _, tc := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v1.2.3"}}, "v1.2.3"},
		{debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v0.0.0-20260101000000-0123456789ab+dirty"}},
			"v0.0.0-20260101000000-0123456789ab+dirty"},
		{debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}},
			"devel-0123456789ab+dirty"},
		{debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, "(devel)"},
		// A team's binary: asyncd is a dependency.
		{debug.BuildInfo{Main: debug.Module{Path: "example.com/team/server", Version: "(devel)"},
			Deps: []*debug.Module{{Path: "golang.org/x/sys", Version: "v0.1.0"}, dep}}, "v1.4.0"},
		{debug.BuildInfo{Main: debug.Module{Path: "example.com/team/server"},
			Deps: []*debug.Module{{Path: modulePath, Version: "v1.4.0", Replace: &debug.Module{Path: "../asyncd"}}}}, "v1.4.0"},
	} {
		if got := versionFrom(&tc.bi); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.bi.Main, got, tc.want)
		}
	}
}

// TestJSONLogDurations: the JSON error log writes durations as the
// config does ("30s"), not in nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	var b bytes.Buffer
	cfg := config.Default()
	cfg.ErrorLogFormat = config.LogJSON
	logs, err := openErrorLog(cfg, &b)
	if err != nil {
		t.Fatal(err)
	}
	logs.Logger.Info("draining", "graceful_timeout", 30*time.Second, "n", 3, "waited", 1500*time.Millisecond)
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	if rec["graceful_timeout"] != "30s" || rec["waited"] != "1.5s" || rec["n"] != float64(3) {
		t.Fatalf("record %v", rec)
	}
}

func TestWithoutGunicornEnv(t *testing.T) {
	got := withoutGunicornEnv([]string{"PORT=1", "PATH=/bin", "WEB_CONCURRENCY=2", "GUNICORN_CMD_ARGS=-w 2", "PORTS=3"})
	if strings.Join(got, " ") != "PATH=/bin PORTS=3" {
		t.Fatalf("%q", got)
	}
}

// TestPrintConfigMasksSecrets: asyncd --print-config, as an operator runs
// it to paste into a ticket, shows no password from the file, the
// environment (ASYNCD_RAW_ENV) or a route's options.
func TestPrintConfigMasksSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "asyncd.yaml")
	yaml := "routes:\n" +
		"- {mount: /users, handler: test-print, options: {dsn: \"postgres://app:hunter2@db/app\"}}\n"
	plugins.RegisterHTTPFactory("test-print", func(_ *plugins.Context, o struct {
		DSN string `option:"dsn"`
	}) (http.Handler, error) {
		return http.NotFoundHandler(), nil
	})
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"--print-config", "-c", file}, []string{"ASYNCD_RAW_ENV=DB_PASSWORD=hunter2"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"DB_PASSWORD=xxxxx", "dsn: postgres://app:xxxxx@db/app", "mount: /users"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("--print-config shows a secret:\n%s", out.String())
	}
}
