package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/testbin"
)

// The database-backed example (examples/dbapi/README.md) is tested here,
// not in its own module: `make test` runs the main module's ./..., which
// does not enter examples/, and this package already builds the team's
// own binaries the way their READMEs say (custom_plugin_test.go).

// dbapiDir is the example, relative to the repository root.
const dbapiDir = "examples/dbapi"

// dbapiBuildCommands are the two commands of the README's build line
// (joined there with &&); the test runs exactly these in that directory.
var dbapiBuildCommands = [][]string{
	{"go", "build", "-o", "asyncd-dbapi", "."},
	{"go", "build", "-o", "dbapi-standalone", "./standalone"},
}

var dbapiBuild struct {
	once               sync.Once
	asyncd, standalone string
	err                error
}

// dbapiBinaries builds the example's two commands once per test binary,
// with the README's commands, under the same lock discipline as
// customBinary, and returns them moved out of the source tree.
func dbapiBinaries(t *testing.T) (asyncd, standalone string) {
	t.Helper()
	testbin.SkipShort(t)
	dbapiBuild.once.Do(func() {
		dbapiBuild.asyncd, dbapiBuild.standalone, dbapiBuild.err = buildDBAPI()
	})
	if dbapiBuild.err != nil {
		t.Fatal(dbapiBuild.err)
	}
	return dbapiBuild.asyncd, dbapiBuild.standalone
}

func buildDBAPI() (string, string, error) {
	dir := filepath.Join(repoRoot, dbapiDir)
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "asyncd-dbapi-build.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return "", "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", "", fmt.Errorf("lock the example build: %v", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck

	tmp, err := os.MkdirTemp(exampleBins, "dbapi-")
	if err != nil {
		return "", "", err
	}
	var bins []string
	for _, argv := range dbapiBuildCommands {
		built := filepath.Join(dir, argv[3])
		cmd := exec.Command(goBin, argv[1:]...)
		cmd.Dir = dir
		cmd.Env = goEnvAsOnAFreshClone()
		out, err := cmd.CombinedOutput()
		if err != nil {
			os.Remove(built)
			return "", "", fmt.Errorf("cd %s && %s: %v\n%s\n(after changing asyncd's go.mod, run `go mod tidy` in %s)",
				dbapiDir, strings.Join(argv, " "), err, out, dbapiDir)
		}
		bin := filepath.Join(tmp, argv[3])
		if err := os.Rename(built, bin); err != nil {
			os.Remove(built)
			return "", "", err
		}
		bins = append(bins, bin)
	}
	return bins[0], bins[1], nil
}

// TestDBAPIExampleTidy checks that the example's go.mod and go.sum are what
// `go mod tidy` makes of them.
func TestDBAPIExampleTidy(t *testing.T) {
	cmd := exec.Command(goBin, "mod", "tidy", "-diff")
	cmd.Dir = filepath.Join(repoRoot, dbapiDir)
	cmd.Env = goEnvAsOnAFreshClone()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cd %s && go mod tidy -diff: %v\n%s\nrun `go mod tidy` there and commit go.mod and go.sum", dbapiDir, err, out)
	}
}

// TestDBAPIExampleWithoutDatabase runs the example where there is no
// database, as --check-config and a misconfigured deployment see it.
// asyncd: the config checks (the plugin connects only in a serving
// process, in Provision), a config without a DSN is refused naming the
// option, and a DSN nothing answers on fails the serving process's start
// (Provision), the log saying why. net/http: the standalone starts and
// answers 503 (its pool opens on first use), and 400 to a request that
// needs no database.
func TestDBAPIExampleWithoutDatabase(t *testing.T) {
	checkDBAPIReadme(t)
	asyncd, standalone := dbapiBinaries(t)
	t.Run("asyncd", func(t *testing.T) {
		check := func(cfg string) (string, error) {
			cmd := exec.Command(asyncd, "--check-config", "-c", cfg)
			cmd.Dir = filepath.Join(repoRoot, dbapiDir)
			cmd.Env = withoutVar(os.Environ(), "DATABASE_URL")
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := check("asyncd.yaml"); err != nil {
			t.Errorf("--check-config -c asyncd.yaml without a database: %v\n%s", err, out)
		}
		noDSN := dbapiConfig(t, "")
		if out, err := check(noDSN); err == nil || !strings.Contains(out, "routes[1] (/users): options.dsn: required") {
			t.Errorf("--check-config without a DSN: %v\n%s; want the missing options.dsn named", err, out)
		}
		nowhere := dbapiConfig(t, "postgres://dbapi@/dbapi?host="+t.TempDir()+"&connect_timeout=2")
		srv := startDBAPIProcess(t, asyncd, nil, nowhere)
		srv.p.WaitLog(regexp.MustCompile(`routes\[1\] \(/users\): provision users: ping the database`), 1, 30*time.Second)
		srv.p.WaitLog(regexp.MustCompile(`new serving process exited before it was ready`), 1, 30*time.Second)
		srv.p.Signal(syscall.SIGTERM)
		srv.p.Wait(60 * time.Second)
	})
	t.Run("net/http", func(t *testing.T) {
		srv := startDBAPI(t, standalone, nil, "")
		for _, tt := range []struct {
			path   string
			status int
			body   string
		}{
			{"/users/42", 503, `{"error":"database not configured"}`},
			{"/users/abc", 400, `{"error":"id must be a positive integer"}`},
		} {
			status, _, body := srv.do(t, "GET", tt.path, "")
			if status != tt.status || body != tt.body+"\n" {
				t.Errorf("GET %s: %d %q; want %d %q\n%s", tt.path, status, body, tt.status, tt.body, srv.logs())
			}
		}
		srv.stop(t)
	})
}

// TestDBAPIExample starts a throw-away PostgreSQL, seeds it with the
// example's schema.sql, and asks asyncd (asyncd.yaml, worker_class async)
// and the standalone net/http server the same requests: each answer must
// be right, and the two servers' answers to the same GETs identical.
func TestDBAPIExample(t *testing.T) {
	checkDBAPIReadme(t)
	asyncd, standalone := dbapiBinaries(t)
	pg := startPostgres(t)
	pg.psql(t, "-v", "seed_users=50", "-f", filepath.Join(repoRoot, dbapiDir, "schema.sql"))
	dsn := pg.url + "&pool_max_conns=4"
	env := []string{"DATABASE_URL=" + dsn} // the standalone's
	cfg := dbapiConfig(t, dsn)             // asyncd.yaml, on this database

	gets := []struct {
		path   string
		status int
		want   string // a prefix of the body; the rest is compared across servers
	}{
		{"/users/42", 200, `{"id":42,"name":"User 42","email":"user42@example.com","created_at":"`},
		{"/users?after=40&limit=2", 200, `[{"id":41,"name":"User 41",`},
		{"/users?limit=0", 400, `{"error":"limit must be 1 to 100"}`},
		{"/users/9999", 404, `{"error":"no user 9999"}`},
		{"/users/abc", 400, `{"error":"id must be a positive integer"}`},
	}
	answers := map[string][]string{}
	for i, s := range []struct{ name, bin string }{{"asyncd", asyncd}, {"net/http", standalone}} {
		t.Run(s.name, func(t *testing.T) {
			srv := startDBAPI(t, s.bin, env, cfg)
			if s.name == "asyncd" {
				if status, _, body := srv.do(t, "GET", "/healthz", ""); status != 200 {
					t.Errorf("GET /healthz with the database up: %d %q", status, body)
				}
			}
			for _, tt := range gets {
				status, _, body := srv.do(t, "GET", tt.path, "")
				if status != tt.status || !strings.HasPrefix(body, tt.want) {
					t.Errorf("GET %s: %d %q; want %d %q...", tt.path, status, body, tt.status, tt.want)
				}
				answers[tt.path] = append(answers[tt.path], fmt.Sprintf("%d %s", status, body))
			}
			if status, _, body := srv.do(t, "DELETE", "/users/1", ""); status != 405 {
				t.Errorf("DELETE /users/1: %d %q; want 405 from the mux", status, body)
			}

			email := fmt.Sprintf("ada%d@example.com", i)
			newUser := `{"name":"Ada","email":"` + email + `"}`
			status, loc, body := srv.do(t, "POST", "/users", newUser)
			var u struct {
				ID    int64  `json:"id"`
				Email string `json:"email"`
			}
			if err := json.Unmarshal([]byte(body), &u); status != 201 || err != nil || u.Email != email ||
				loc != "/users/"+strconv.FormatInt(u.ID, 10) {
				t.Fatalf("POST /users %s: %d Location %q %q (%v); want 201 with the new user and its Location", newUser, status, loc, body, err)
			}
			if status, _, body := srv.do(t, "GET", loc, ""); status != 200 || !strings.Contains(body, email) {
				t.Errorf("GET %s after POST: %d %q; want 200 with %s", loc, status, body, email)
			}
			if status, _, body := srv.do(t, "POST", "/users", newUser); status != 409 {
				t.Errorf("POST /users again with %s: %d %q; want 409", email, status, body)
			}
			if status, _, body := srv.do(t, "POST", "/users", `{"name":`); status != 400 {
				t.Errorf("POST /users with broken JSON: %d %q; want 400", status, body)
			}
			srv.stop(t)
			if t.Failed() {
				t.Logf("%s output:\n%s", s.name, srv.logs())
			}
		})
	}
	paths := make([]string, 0, len(answers))
	for p := range answers {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if a := answers[p]; len(a) == 2 && a[0] != a[1] {
			t.Errorf("GET %s: asyncd answered %q, net/http %q: the same handler must give the same answer", p, a[0], a[1])
		}
	}
}

// checkDBAPIReadme fails when the README no longer shows the commands this
// test runs.
func checkDBAPIReadme(t *testing.T) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot, dbapiDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	build := strings.Join(dbapiBuildCommands[0], " ") + " && " + strings.Join(dbapiBuildCommands[1], " ")
	for _, want := range []string{build, "./asyncd-dbapi -c asyncd.yaml", "./dbapi-standalone -b 127.0.0.1:8001"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("%s/README.md no longer documents %q: update the README or this test", dbapiDir, want)
		}
	}
}

// dbapiServer is one of the example's commands, running.
type dbapiServer struct {
	addr string
	p    *testbin.Process
}

// logs is what the server printed so far.
func (s *dbapiServer) logs() string { return s.p.Output() }

// startDBAPI starts bin (asyncd-dbapi with asyncd.yaml, or the standalone)
// in the example's directory on a free port, with env as its environment
// (testbin.Env: no DATABASE_URL unless env has one), and waits until it
// answers.
func startDBAPI(t *testing.T, bin string, env []string, cfg string) *dbapiServer {
	t.Helper()
	s := startDBAPIProcess(t, bin, env, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		// A bad id is answered by the handler without the database.
		if resp, err := http.Get("http://" + s.addr + "/users/abc"); err == nil {
			resp.Body.Close()
			return s
		}
		select {
		case <-s.p.Done():
			t.Fatalf("%s exited at start: %v\n%s", bin, s.p.Err(), s.logs())
		case <-ctx.Done():
			t.Fatalf("%s did not answer on %s within 30s\n%s", bin, s.addr, s.logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startDBAPIProcess starts bin as startDBAPI does, without waiting.
func startDBAPIProcess(t *testing.T, bin string, env []string, cfg string) *dbapiServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"-b", addr} // the standalone's flag; asyncd's too
	if filepath.Base(bin) == "asyncd-dbapi" {
		// README: ./asyncd-dbapi -c asyncd.yaml (here a copy on the
		// test's database, dbapiConfig); -b moves it off the example's
		// fixed port 8000.
		args = append([]string{"-c", cfg}, args...)
	}
	return &dbapiServer{addr: addr, p: testbin.Start(t, bin, testbin.Options{Args: args, Dir: filepath.Join(repoRoot, dbapiDir),
		Env: env, CombinedOutput: true, SysProcAttr: &syscall.SysProcAttr{Setpgid: true}})}
}

// dbapiDSN is the connection string examples/dbapi/asyncd.yaml documents
// (README: the database's socket in /tmp/dbapi-pg).
const dbapiDSN = "dsn: postgres://dbapi@/dbapi?host=/tmp/dbapi-pg&pool_max_conns=24"

// dbapiConfig writes the example's asyncd.yaml with its DSN replaced by
// dsn (the option dropped when dsn is ""), and returns the file's path.
func dbapiConfig(t *testing.T, dsn string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, dbapiDir, "asyncd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), dbapiDSN) {
		t.Fatalf("%s/asyncd.yaml no longer has %q: update it or this test", dbapiDir, dbapiDSN)
	}
	repl := ""
	if dsn != "" {
		repl = "dsn: " + strconv.Quote(dsn)
	}
	path := filepath.Join(t.TempDir(), "asyncd.yaml")
	writeDBAPIConfig(t, path, strings.Replace(string(b), dbapiDSN, repl, 1))
	return path
}

// writeDBAPIConfig (re)writes a config, as an operator edits it before a
// reload: to a temporary file renamed over it.
func writeDBAPIConfig(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// do sends one request and returns the status, the Location header and
// the body.
func (s *dbapiServer) do(t *testing.T, method, path, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", method, path, err, s.logs())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// stop sends SIGTERM and expects a clean exit.
func (s *dbapiServer) stop(t *testing.T) {
	t.Helper()
	s.p.Signal(syscall.SIGTERM)
	select {
	case <-s.p.Done():
		if err := s.p.Err(); err != nil {
			t.Errorf("after SIGTERM: %v\n%s", err, s.logs())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit within 60s of SIGTERM\n%s", s.logs())
	}
}

func withoutVar(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// postgres is a throw-away PostgreSQL cluster listening only on a unix
// socket in its own temporary directory (so no port can clash), stopped
// and removed when the test ends.
type postgres struct {
	bin  string              // the server's bin directory (initdb, pg_ctl, psql)
	dir  string              // data in dir/data, socket in dir
	url  string              // a pgx/libpq URL for the database "dbapi" as user "dbapi"
	cred *syscall.Credential // the server's user, when the test runs as root
}

// postgresBinDir finds PostgreSQL's server programs: `pg_config --bindir`,
// else the newest /usr/lib/postgresql/N/bin (Debian puts them there, off
// PATH), or "" with what was looked for.
func postgresBinDir() (string, string) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, ""
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(found, func(i, j int) bool { return pgMajor(found[i]) > pgMajor(found[j]) })
	if len(found) > 0 {
		return filepath.Dir(found[0]), ""
	}
	return "", "no initdb in `pg_config --bindir` or /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)"
}

func pgMajor(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// startPostgres initializes and starts a cluster, or skips the test where
// PostgreSQL is not installed. initdb and the server refuse to run as
// root: as root they run as the user postgres (or nobody), which owns the
// directory.
func startPostgres(t *testing.T) *postgres {
	t.Helper()
	bin, missing := postgresBinDir()
	if bin == "" {
		t.Skip("PostgreSQL is not installed: " + missing)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			if u, err = user.Lookup("nobody"); err != nil {
				t.Fatalf("running as root, and neither the user postgres nor nobody exists to run initdb as: %v", err)
			}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parents are root's 0700 directories, which the
	// server's user cannot enter. /tmp, and not a long $TMPDIR, because a
	// unix socket's path must fit in 107 bytes.
	dir, err := os.MkdirTemp("/tmp", "asyncd-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	pg := &postgres{bin: bin, dir: dir, url: "postgres://dbapi@/dbapi?host=" + dir, cred: cred}
	run := func(asServer bool, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.Env = append(withoutVar(os.Environ(), "PGDATA"), "LC_ALL=C")
		if asServer && cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("%s %s: %v\n%s\nserver log:\n%s", name, strings.Join(args, " "), err, out, log)
		}
	}
	data := filepath.Join(dir, "data")
	run(true, "initdb", "-D", data, "-U", "dbapi", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	pg.start(t)
	t.Cleanup(func() {
		cmd := exec.Command(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		cmd.Dir = dir
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("stop PostgreSQL: %v\n%s", err, out)
		}
	})
	run(false, "createdb", "-h", dir, "-U", "dbapi", "dbapi")
	return pg
}

// start starts the server (again). log_min_messages=debug1 makes it log a
// client that leaves without ending its session ("unexpected EOF on client
// connection", DEBUG1), which TestDBAPIExampleLifecycle looks for.
func (pg *postgres) start(t *testing.T) {
	t.Helper()
	pg.ctl(t, "-l", pg.logFile(), "-w", "-t", "60", "start", "-o", "-k "+pg.dir+" -c listen_addresses= -c fsync=off -c log_min_messages=debug1")
}

// stop stops the server, ending its connections (-m fast).
func (pg *postgres) stop(t *testing.T) {
	t.Helper()
	pg.ctl(t, "-m", "fast", "-w", "-t", "60", "stop")
}

func (pg *postgres) ctl(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(pg.bin, "pg_ctl"), append([]string{"-D", filepath.Join(pg.dir, "data")}, args...)...)
	cmd.Dir = pg.dir
	cmd.Env = append(withoutVar(os.Environ(), "PGDATA"), "LC_ALL=C")
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(pg.logFile())
		t.Fatalf("pg_ctl %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, log)
	}
}

func (pg *postgres) logFile() string { return filepath.Join(pg.dir, "log") }

// serverLog is the server's log so far.
func (pg *postgres) serverLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(pg.logFile())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// psql runs psql on the cluster's database with args.
func (pg *postgres) psql(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(pg.bin, "psql"), append([]string{"-h", pg.dir, "-U", "dbapi", "-d", "dbapi", "-q"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
