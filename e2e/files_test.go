package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Files the root supervisor opens for an unprivileged serving user
// (issue 16, HIGH 2): what that user plants in its own directories must
// not make root write, chown or remove another file.

// secretFile creates a root-only file the attacker wants; check reports
// whether its content, owner or mode changed.
func secretFile(t *testing.T) (path string, check func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, func() {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil || string(b) != "root only\n" {
			t.Errorf("the root-only file now holds %q (%v): root wrote to it", b, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("the root-only file is now %d:%d %v, want 0:0 0600", st.Uid, st.Gid, fi.Mode().Perm())
		}
	}
}

// TestLogSymlinkPlanted: with user nobody and the logs in a directory
// nobody owns, nobody replaces error.log and access.log with links to a
// root-only file. SIGUSR1 (the supervisor reopens and hands the logs over)
// and a new generation (SIGHUP: the supervisor hands the logs over before
// it starts it) leave that file as it was, and the supervisor says why.
func TestLogSymlinkPlanted(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attack is on files the root supervisor opens")
	}
	secret, unchanged := secretFile(t)
	logs := ownedDir(t, nobody)
	cfg := baseConfig + "user: nobody\nerrorlog: \"" + logs + "/error.log\"\naccesslog: \"" + logs + "/access.log\"\n"
	s := startServer(t, cfg, options{logFile: logs + "/error.log"})
	for _, name := range []string{"error.log", "access.log"} {
		p := filepath.Join(logs, name)
		if u, _ := owner(t, p); u != "65534" {
			t.Fatalf("%s owned by uid %s, want nobody: the set-up did not hand it over", name, u)
		}
		// What nobody can do in its own directory: move the file away (as
		// logrotate would, so the processes' lines stay readable in the
		// moved file) and plant a link in its place.
		if err := os.Rename(p, p+".1"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(secret, p); err != nil {
			t.Fatal(err)
		}
	}
	s.p.SetLogFile(filepath.Join(logs, "error.log.1"))
	s.signal(syscall.SIGUSR1)
	waitRefusedOrChanged(t, s, secret, `cannot give the log file to the serving user" setting=accesslog`, 1)
	unchanged()
	s.signal(syscall.SIGHUP)
	waitRefusedOrChanged(t, s, secret, `new serving process exited before it was ready; the current one keeps serving`, 1)
	unchanged()
	for _, want := range []string{"reopen error log", "is a symbolic link in a directory user nobody can write: not following it as root"} {
		if !strings.Contains(s.log(), want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	// the supervisor still serves, on its previous generation
	if r := get(t, "tcp", s.addr(), "/"); r.status != 200 {
		t.Errorf("status %d after the refused files", r.status)
	}
	s.signal(syscall.SIGTERM)
	s.wait(10 * time.Second)
	unchanged()
}

// waitRefusedOrChanged waits until the log matches pattern n times (asyncd
// refused) or the secret file changed (it did not), whichever comes first.
func waitRefusedOrChanged(t *testing.T, s *server, secret, pattern string, n int) {
	t.Helper()
	fi, err := os.Stat(secret)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s.count(pattern) >= n {
			return
		}
		now, err := os.Stat(secret)
		if err != nil || now.Size() != fi.Size() || now.Sys().(*syscall.Stat_t).Uid != 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("neither %q in the log nor a change to %s after 20s", pattern, secret)
}

// TestUmaskZero: umask "0000" is applied (it used to be skipped as "not
// set"), to the supervisor and the serving processes it starts; a reload
// that drops the setting returns to the umask asyncd was started with.
func TestUmaskZero(t *testing.T) {
	t.Parallel()
	s := startServer(t, baseConfig+"umask: \"0000\"\n", options{
		argv: []string{"/bin/sh", "-c", `umask 0027 && exec "$E2E_ASYNCD" -c asyncd.yaml`}})
	for what, pid := range map[string]int{"supervisor": s.cmd.Process.Pid, "serving process": s.ready(1).pid} {
		if got := procStatus(t, pid, "Umask"); got != "0000" {
			t.Errorf("%s umask %s, want 0000", what, got)
		}
	}
	s.writeConfig(baseConfig)
	s.signal(syscall.SIGHUP)
	if got := procStatus(t, s.ready(2).pid, "Umask"); got != "0027" {
		t.Errorf("after a reload without umask: serving process umask %s, want 0027 (as asyncd was started)", got)
	}
}
