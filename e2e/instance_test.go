package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/testbin"
	"golang.org/x/sys/unix"
)

// One instance per address and per pidfile (issue 20, Must fix 1), and
// start-up errors on stderr even when errorlog is a file (Must fix 7).

// runOnce runs asyncd on config (written to a directory of its own) until
// it exits, and returns its exit code and stderr.
func runOnce(t *testing.T, config string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "asyncd.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(config, "@DIR@", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := testbin.Run(t, asyncdBinary(t), testbin.Options{Args: []string{"-c", path}, Dir: dir, CombinedOutput: true}, 30*time.Second)
	return r.Code, r.Stderr
}

// TestSecondInstanceRefused: a second asyncd on the address of a running
// one exits 1 with "address already in use" (it used to join the first
// one's SO_REUSEPORT group and take part of its connections), on stderr
// although its errorlog is a file; one on another address with the first
// one's pidfile exits 1 with "already running", and the first one's
// pidfile stays as it was.
func TestSecondInstanceRefused(t *testing.T) {
	t.Parallel()
	first := startServer(t, baseConfig+"pidfile: @DIR@/asyncd.pid\n", options{})
	addr := first.addr()
	pidfile := filepath.Join(first.dir, "asyncd.pid")
	want := strconv.Itoa(first.cmd.Process.Pid) + "\n"

	code, stderr := runOnce(t, strings.Replace(baseConfig, "127.0.0.1:0", addr, 1)+
		"errorlog: \"@DIR@/error.log\"\npidfile: \"@DIR@/second.pid\"\n")
	if code != 1 || !strings.Contains(stderr, "address already in use: another process listens on "+addr) {
		t.Errorf("second instance on %s: exit %d, stderr:\n%s\nwant exit 1 and 'address already in use: another process listens on %s'",
			addr, code, stderr, addr)
	}
	if !strings.Contains(stderr, "error.log") {
		t.Errorf("stderr does not name the error log to read:\n%s", stderr)
	}

	code, stderr = runOnce(t, baseConfig+"pidfile: \""+pidfile+"\"\n")
	wantMsg := fmt.Sprintf("pidfile %s: already running on PID %d", pidfile, first.cmd.Process.Pid)
	if code != 1 || !strings.Contains(stderr, wantMsg) {
		t.Errorf("second instance with the same pidfile: exit %d, stderr:\n%s\nwant exit 1 and %q", code, stderr, wantMsg)
	}
	if b, err := os.ReadFile(pidfile); err != nil || string(b) != want {
		t.Errorf("the first instance's pidfile now holds %q (%v), want %q", b, err, want)
	}
	// the first instance serves every connection
	for i := 0; i < 10; i++ {
		if r := get(t, "tcp", addr, "/"); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	if first.generations() != 1 {
		t.Errorf("%d generations, want 1", first.generations())
	}
}

// TestForeignReusePortListener: the README's quick-start port held by
// another server's SO_REUSEPORT socket: asyncd refuses it rather than
// sharing it.
func TestForeignReusePortListener(t *testing.T) {
	t.Parallel()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	code, stderr := runOnce(t, strings.Replace(baseConfig, "127.0.0.1:0", addr, 1))
	if code != 1 || !strings.Contains(stderr, "bind "+addr+": address already in use: another process listens on "+addr) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestStalePidfile: a pidfile naming no live process is replaced.
func TestStalePidfile(t *testing.T) {
	t.Parallel()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(t.TempDir(), "asyncd.pid")
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(dead.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, baseConfig+"pidfile: \""+pidfile+"\"\n", options{})
	if b, _ := os.ReadFile(pidfile); strings.TrimSpace(string(b)) != strconv.Itoa(s.cmd.Process.Pid) {
		t.Errorf("pidfile %q, want the new supervisor's pid %d", b, s.cmd.Process.Pid)
	}
}

// TestStartErrorOnStderr: with errorlog set to a file, a start that fails
// (here a chdir into a missing directory) says why on stderr too, not only
// in the file.
func TestStartErrorOnStderr(t *testing.T) {
	t.Parallel()
	code, stderr := runOnce(t, baseConfig+"errorlog: \"@DIR@/error.log\"\nchdir: /nonexistent/app\n")
	if code != 1 || !strings.Contains(stderr, "chdir: /nonexistent/app") || !strings.Contains(stderr, "no such file or directory") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and the chdir error", code, stderr)
	}
}

// TestUpgradeOldbin: Gunicorn's upgrade script, kill -USR2 $(cat
// app.pid) then kill -QUIT $(cat app.pid.oldbin), works: during the
// upgrade the old supervisor's pidfile is PIDFILE.oldbin, and SIGQUIT to
// it neither cuts its requests short nor stops the new supervisor, which
// writes PIDFILE; the old one removes PIDFILE.oldbin as it leaves.
func TestUpgradeOldbin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.Chmod(dir, 0o755) //nolint:errcheck
	bin := filepath.Join(dir, "asyncd")
	copyBinary(t, bin)
	s := startServer(t, baseConfig+"pidfile: @DIR@/app.pid\n", options{argv: []string{bin, "-c", "asyncd.yaml"}})
	old := s.cmd.Process.Pid
	pidfile := filepath.Join(s.dir, "app.pid")
	addr := s.addr()
	// a request the old generation is still answering while it leaves
	slow := dial(t, "tcp", addr).send("/slow", 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	s.signal(syscall.SIGUSR2)
	newPid := s.upgraded(1)
	b, err := os.ReadFile(pidfile + ".oldbin")
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(old) {
		t.Fatalf("app.pid.oldbin holds %q (%v), want the old supervisor's pid %d", b, err, old)
	}
	oldPid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	syscall.Kill(oldPid, syscall.SIGQUIT) //nolint:errcheck // kill -QUIT $(cat app.pid.oldbin)
	if r, err := slow.wait(); err != nil || r.status != 200 || r.body != "slow" {
		t.Errorf("the old generation's request in flight: %+v %v, want 200 slow (SIGQUIT cut it short)", r, err)
	}
	if code := s.wait(15 * time.Second); code != 0 {
		t.Errorf("old supervisor exit code %d, want 0", code)
	}
	if !alive(newPid) {
		t.Fatalf("the new supervisor %d stopped", newPid)
	}
	if b, err := os.ReadFile(pidfile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(newPid) {
		t.Errorf("app.pid holds %q (%v), want the new supervisor's pid %d", b, err, newPid)
	}
	if _, err := os.Stat(pidfile + ".oldbin"); !os.IsNotExist(err) {
		t.Errorf("app.pid.oldbin left behind: %v", err)
	}
	if r := get(t, "tcp", addr, "/"); r.status != 200 {
		t.Errorf("after the upgrade: status %d", r.status)
	}
}
