package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// brokenPGLines are what PostgreSQL logs for a client that went away
// without ending its session (pgxpool's connections of a process that
// exits with its pool open).
var brokenPGLines = regexp.MustCompile(`(?i)connection reset|unexpected EOF|could not receive data from client`)

// TestDBAPIExampleLifecycle drives the example's plugin lifecycle over the
// real binary and a real PostgreSQL: the pool opens (and the database is
// pinged) before a generation reports ready, first and on a reload; a
// reload whose database cannot be reached leaves the running generation
// serving; readiness follows the database; and a generation that exits
// closes its pool, so PostgreSQL logs no broken connection.
func TestDBAPIExampleLifecycle(t *testing.T) {
	asyncd, _ := dbapiBinaries(t)
	pg := startPostgres(t)
	pg.psql(t, "-v", "seed_users=50", "-f", filepath.Join(repoRoot, dbapiDir, "schema.sql"))
	cfg := dbapiConfig(t, pg.url+"&pool_max_conns=4")
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := startDBAPI(t, asyncd, nil, cfg)
	get := func(path string, status int, body string) {
		t.Helper()
		got, _, b := srv.do(t, "GET", path, "")
		if got != status || !strings.Contains(b, body) {
			t.Errorf("GET %s: %d %q; want %d with %q", path, got, b, status, body)
		}
	}
	get("/users/42", 200, `"id":42`)
	get("/healthz", 200, "ok")

	// Warm before READY: each generation's "pool open" line (written by
	// the serving process before it tells the supervisor it is ready)
	// comes before the supervisor's "serving process ready" for it.
	warm := func(gen string) {
		t.Helper()
		srv.p.WaitLog(regexp.MustCompile(`msg="serving process ready" generation=`+gen+`\b`), 1, 60*time.Second)
		log := srv.logs()
		open := regexp.MustCompile(`msg="users: database pool open".*generation=` + gen + `\b`).FindStringIndex(log)
		ready := regexp.MustCompile(`msg="serving process ready" generation=` + gen + `\b`).FindStringIndex(log)
		if open == nil || open[0] > ready[0] {
			t.Errorf("generation %s reported ready before its pool was open (Provision):\n%s", gen, log)
		}
	}
	warm("1")
	srv.p.Signal(syscall.SIGHUP)
	warm("2")
	// Provision runs in serving processes only: the supervisor builds the
	// routes too (at start and on the reload), and must not connect.
	if n := strings.Count(srv.logs(), `msg="users: database pool open"`); n != 2 {
		t.Errorf("%d pools opened for 2 serving processes (the supervisor must not provision):\n%s", n, srv.logs())
	}
	srv.p.WaitLog(regexp.MustCompile(`msg="serving process exited" generation=1\b`), 1, 60*time.Second)
	srv.p.WaitLog(regexp.MustCompile(`msg="users: database pool closed"`), 1, 10*time.Second)
	if m := brokenPGLines.FindAllString(pg.serverLog(t), -1); m != nil {
		t.Errorf("PostgreSQL logged broken connections after generation 1 exited: %q\n%s", m, pg.serverLog(t))
	}
	get("/users/42", 200, `"id":42`)

	// A reload onto a database nothing answers on: the new generation's
	// Provision fails, and the running one keeps serving.
	writeDBAPIConfig(t, cfg, strings.Replace(string(good), pg.dir, t.TempDir(), 1))
	srv.p.Signal(syscall.SIGHUP)
	srv.p.WaitLog(regexp.MustCompile(`provision users: ping the database`), 1, 60*time.Second)
	srv.p.WaitLog(regexp.MustCompile(`new serving process exited before it was ready; the current one keeps serving`), 1, 60*time.Second)
	get("/users/42", 200, `"id":42`)
	get("/healthz", 200, "ok")
	writeDBAPIConfig(t, cfg, string(good))

	// Readiness follows the database, naming the failing check.
	pg.stop(t)
	waitHealth(t, srv, 503, "failing check: users (routes[1] /users)")
	pg.start(t)
	waitHealth(t, srv, 200, "ok")
	get("/users/42", 200, `"id":42`)

	before := len(pg.serverLog(t))
	srv.stop(t)
	if m := brokenPGLines.FindAllString(pg.serverLog(t)[before:], -1); m != nil {
		t.Errorf("PostgreSQL logged broken connections after asyncd stopped: %q\n%s", m, pg.serverLog(t))
	}
	if t.Failed() {
		t.Logf("asyncd output:\n%s", srv.logs())
	}
}

// waitHealth waits until /healthz answers status with body in it (the
// readiness check runs every second).
func waitHealth(t *testing.T, srv *dbapiServer, status int, body string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _, b := srv.do(t, "GET", "/healthz", "")
		if got == status && strings.Contains(b, body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz: %d %q; want %d with %q within 30s\n%s", got, b, status, body, srv.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
