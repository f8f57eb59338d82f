package testbin

import (
	"os"
	"strings"
)

// passThrough are the only variables of the test's own environment that
// a binary started by this package gets: with them a shell, a user's home
// and the temporary directory resolve as for any process.
var passThrough = []string{"PATH", "HOME", "TMPDIR"}

// Env is the environment a test starts a binary with: PATH, HOME and
// TMPDIR from the test's environment, then extra. Nothing else is
// inherited: not asyncd's settings (ASYNCD_*), Gunicorn's
// (GUNICORN_CMD_ARGS, WEB_CONCURRENCY, PORT), systemd's (LISTEN_FDS,
// NOTIFY_SOCKET, WATCHDOG_USEC...), GORACE (whose log_path would hide a
// race report) nor a test knob, so that a developer's or a CI runner's
// variables cannot change a verdict. A test passes what asyncd should see.
func Env(extra ...string) []string {
	var env []string
	for _, name := range passThrough {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return append(env, extra...)
}

// BackendsVar narrows the loop backends the suites run on, e.g.
// ASYNCDTEST_BACKENDS=epoll on a machine without io_uring. Unset, they run
// on every backend, and one that cannot run here fails its tests rather
// than being skipped: a silently missing backend would be a false pass.
const BackendsVar = "ASYNCDTEST_BACKENDS"

// oldBackendsVar is BackendsVar's name before the test knobs left asyncd's
// ASYNCD_ namespace. It is still read, after BackendsVar, so that scripts
// and CI jobs that set it keep working; asyncd never sees it (Env).
const oldBackendsVar = "ASYNCD_TEST_BACKENDS"

// WantBackend reports whether the suites run on the backend named name:
// every backend when neither BackendsVar nor its old name is set, else
// those the value names ("epoll", "io_uring", "epoll,io_uring").
func WantBackend(name string) bool {
	want := os.Getenv(BackendsVar)
	if want == "" {
		want = os.Getenv(oldBackendsVar)
	}
	return want == "" || strings.Contains(want, name)
}
