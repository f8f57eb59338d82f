package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/asyncd/asyncd/internal/testbin"
)

// The operator's first hour (issue 20), with the real binary: one
// --check-config run reports every problem, grouped and in line order;
// what it can check on the machine it checks; each warning is printed
// once, by the supervisor, naming the user's file, in the error log's
// format; --version and the start line say which build runs.

// checkConfig runs asyncd --check-config with args and returns its exit
// status, stdout and stderr.
func checkConfig(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(asyncdBinary(t), append([]string{"--check-config"}, args...)...)
	cmd.Env = testbin.Env(env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

var reportLine = regexp.MustCompile(`^  \S+?:(\d+): `)

// TestCheckConfigReportsEveryProblem: Gunicorn's example_config.py and a
// production Django config give all their problems in one run, grouped
// (delete, move to ASYNCD_*, hooks, unknown keys, values), in line order
// within each group, then the warnings; exit status 1.
func TestCheckConfigReportsEveryProblem(t *testing.T) {
	t.Parallel()
	testdata := filepath.Join("..", "internal", "config", "testdata", "gunicorn")
	for _, tc := range []struct {
		file          string
		errors, warns int
		groups        []string
		mustMention   []string
	}{
		{"example_config.py", 6, 2, []string{"Server hooks"},
			[]string{":186: def post_fork(server, worker)", ":215: def worker_abort(worker)", ":72: keepalive: 2s"}},
		{"django_prod.py", 12, 4, []string{"Delete these lines", "Values computed in Python", "Server hooks", "Unknown keys", "Values and lines to correct"},
			[]string{":2: import multiprocessing", `:7: worker_class = gevent: gevent is a Python name, not a string: quote it`,
				`:16: unknown key "logfile": write errorlog`, ":29: def on_starting(server)", ":20: debug is not a setting, and Gunicorn ignores it too"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(testdata, tc.file)
			code, stdout, stderr := checkConfig(t, nil, "-c", path)
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %q; want 1 and nothing\n%s", code, stdout, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if want := fmt.Sprintf("asyncd: %s: %d errors, %d warnings", path, tc.errors, tc.warns); lines[0] != want {
				t.Fatalf("first line %q, want %q", lines[0], want)
			}
			var titles []string
			problems, last := 0, 0
			for _, l := range lines[1:] {
				switch {
				case l == "":
				case !strings.HasPrefix(l, "  "):
					titles = append(titles, l)
					last = 0
				default:
					problems++
					if m := reportLine.FindStringSubmatch(l); m != nil {
						n, _ := strconv.Atoi(m[1])
						if n < last {
							t.Errorf("line %d after line %d in one group:\n%s", n, last, stderr)
						}
						last = n
					}
				}
			}
			if problems != tc.errors+tc.warns {
				t.Errorf("%d problems listed, want %d:\n%s", problems, tc.errors+tc.warns, stderr)
			}
			want := append(append([]string{}, tc.groups...), "Warnings")
			if len(titles) != len(want) {
				t.Fatalf("groups %q, want %q", titles, want)
			}
			for i := range want {
				if !strings.HasPrefix(titles[i], want[i]) {
					t.Errorf("group %d is %q, want %q", i, titles[i], want[i])
				}
			}
			for _, m := range tc.mustMention {
				if !strings.Contains(stderr, path+m) {
					t.Errorf("report does not say %q:\n%s", path+m, stderr)
				}
			}
		})
	}
	// Warnings alone: exit 0, "config OK" on stdout, the warnings on stderr.
	code, stdout, stderr := checkConfig(t, nil, "-c", filepath.Join(testdata, "digitalocean.py"))
	if code != 0 || !strings.Contains(stdout, "config OK") || strings.Count(stderr, "asyncd: warning: ") != 3 {
		t.Fatalf("warnings only: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

// TestCheckConfigChecksTheMachine: chdir, the log and pidfile
// directories, user and group are checked without starting.
func TestCheckConfigChecksTheMachine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	cfg := filepath.Join(dir, "asyncd.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`chdir: %s
errorlog: %s/error.log
pidfile: %s/asyncd.pid
user: asyncd-no-such-user
routes: [{path: /, handler: static}]
`, missing, missing, missing)), 0o644)
	code, _, stderr := checkConfig(t, nil, "-c", cfg)
	for _, want := range []string{
		"Paths, users and groups, checked on this machine:",
		cfg + ":1: chdir: " + missing + ": no such file or directory",
		cfg + ":2: errorlog: " + missing + "/error.log: the directory " + missing + " does not exist",
		cfg + ":3: pidfile: " + missing + "/asyncd.pid: the directory " + missing + " does not exist",
		cfg + `:4: user: "asyncd-no-such-user": no such user on this machine`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if code != 1 || t.Failed() {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
}

// TestStartWithMissingChdirNamesItOnce: the start-up error names the
// directory once (it said "chdir /x: chdir /x: no such file").
func TestStartWithMissingChdirNamesItOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "app")
	cfg := filepath.Join(dir, "asyncd.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("bind: [%q]\nchdir: %s\nroutes: [{path: /, handler: static}]\n", freePort(t), missing)), 0o644)
	out, err := execOutput(asyncdBinary(t), "-c", cfg)
	if err == nil {
		t.Fatalf("started with chdir %s:\n%s", missing, out)
	}
	want := fmt.Sprintf("%s:2: chdir: %s: no such file or directory", cfg, missing)
	if !strings.Contains(out, want) || strings.Count(out, missing) != 1 {
		t.Fatalf("want %q, naming the directory once:\n%s", want, out)
	}
}

// TestWarningsOnceInTheLogFormat: a warning is printed once, by the
// supervisor, naming the config file (not the serving process's
// /dev/fd/N pipe), as a record of the error log's format; durations in
// JSON are strings; SIGTTIN says what it does without a warning; and the
// start line carries the version.
func TestWarningsOnceInTheLogFormat(t *testing.T) {
	t.Parallel()
	loops := runtime.GOMAXPROCS(0)
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
workers: %d
keepalive: 2
spew: true
error_log_format: json
routes: [{path: /, handler: static}]
`, freePort(t), loops))
	p.signal(syscall.SIGTTIN) // one loop more than CPUs
	p.waitLog(`"msg":"asyncd ready"`, 2)
	p.signal(syscall.SIGTERM)
	p.exited()
	cfg := filepath.Join(p.dir, "asyncd.yaml")
	var warns []string
	records := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(p.log()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("not a JSON record: %q", l)
			continue
		}
		msg, _ := rec["msg"].(string)
		if rec["level"] == "WARN" {
			warns = append(warns, msg)
		}
		if _, seen := records[msg]; !seen {
			records[msg] = rec
		}
	}
	want := []string{
		"config: " + cfg + ":4: keepalive: 2s is shorter than the idle timeouts of most proxies and load balancers (nginx, AWS ALB: 60s); behind one, expect 502s on reused connections (asyncd's default is 90s)",
		"config: " + cfg + ":5: spew has no effect in asyncd: there is no Python interpreter to trace",
	}
	if strings.Join(warns, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(p.log(), "/dev/fd/") {
		t.Errorf("a message names the serving process's config pipe:\n%s", p.log())
	}
	if r := records["SIGTERM: graceful stop"]; r == nil || r["graceful_timeout"] != "30s" || r["shutdown_delay"] != "0s" {
		t.Errorf("durations in JSON: %v", r)
	}
	var ttin map[string]any
	for msg, r := range records {
		if strings.HasPrefix(msg, "SIGTTIN: changing the number of event loops until the next reload") {
			ttin = r
		}
	}
	if ttin == nil || ttin["level"] != "INFO" || ttin["loops"] != float64(loops+1) {
		t.Errorf("SIGTTIN record: %v", ttin)
	}
	if r := records["asyncd starting"]; r == nil || r["version"] == "" || r["version"] == nil {
		t.Errorf("start line without a version: %v", r)
	}
}

// TestVersion: --version and the start line print the version set with
// -ldflags -X (as make build does), or else the one the Go toolchain
// stamped into the binary.
func TestVersion(t *testing.T) {
	t.Parallel()
	// The shared binary has no -X: the module's version from its build
	// information, as `go version -m` shows it.
	bin := asyncdBinary(t)
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\tmod\tgithub\.com/asyncd/asyncd\t(\S+)`).FindSubmatch(info)
	if m == nil {
		t.Fatalf("no module line in:\n%s", info)
	}
	r := testbin.Run(t, bin, testbin.Options{Args: []string{"--version"}}, waitFor)
	if r.Code != 0 {
		t.Fatalf("--version: exit %d\n%s", r.Code, r.Stderr)
	}
	first := strings.SplitN(r.Stdout, "\n", 2)[0]
	stamped := string(m[1])
	if stamped != "(devel)" && !strings.HasPrefix(first, "asyncd "+stamped+" (") {
		t.Errorf("--version %q, want the stamped %s", first, stamped)
	} else if stamped == "(devel)" && !regexp.MustCompile(`^asyncd (\(devel\)|devel-[0-9a-f]{12}(\+dirty)?) \(`).MatchString(first) {
		t.Errorf("--version %q, want (devel) or the VCS revision", first)
	}

	// With -X, that version, in --version and in the start line.
	const v = "v9.8.7-test"
	xbin := testbin.Binary(t, testbin.Build{Version: v})
	r = testbin.Run(t, xbin, testbin.Options{Args: []string{"--version"}}, waitFor)
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, fmt.Sprintf("asyncd %s (%s, %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)) {
		t.Fatalf("--version: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "asyncd.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("bind: [%q]\nroutes: [{path: /, handler: static}]\n", freePort(t))), 0o644)
	p := testbin.Start(t, xbin, testbin.Options{Args: []string{"-c", cfg}})
	p.WaitLog(regexp.MustCompile(regexp.QuoteMeta(`msg="asyncd starting" version=`+v+" ")), 1, waitFor)
}

// TestGunicornVariablesInBinary: PORT gives the default bind and
// GUNICORN_CMD_ARGS sets flags, as in Gunicorn; the serving process does
// not apply GUNICORN_CMD_ARGS again over what the supervisor decided (a
// SIGTTIN's extra loop stays).
func TestGunicornVariablesInBinary(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	_, port, _ := strings.Cut(addr, ":")
	p := run(t, "routes: [{path: /, handler: static, options: {body: hi}}]\n",
		"PORT="+port, "GUNICORN_CMD_ARGS=--workers 1 --preload")
	if r := httpGet(t, "http://"+addr+"/"); r.status != 200 || r.body != "hi" {
		t.Fatalf("GET on $PORT: %d %q", r.status, r.body)
	}
	if !strings.Contains(p.log(), `msg="config: GUNICORN_CMD_ARGS --preload: preload_app: ignored: `) {
		t.Errorf("no warning for --preload in GUNICORN_CMD_ARGS:\n%s", p.log())
	}
	p.signal(syscall.SIGTTIN)
	p.waitLog("asyncd ready", 2)
	if !regexp.MustCompile(`msg="asyncd ready".* loops=2 `).MatchString(p.log()) {
		t.Errorf("after SIGTTIN the serving process does not run 2 loops:\n%s", p.log())
	}
	if strings.Count(p.log(), "preload_app") != 1 {
		t.Errorf("the warning is printed more than once:\n%s", p.log())
	}
	p.signal(syscall.SIGTERM)
	p.exited()
}
