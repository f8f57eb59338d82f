package safefile

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// nobody is the unprivileged user of these tests (Debian's fixed ids).
var nobody = &User{Name: "nobody", UID: 65534, GID: 65534}

// fixture is a directory tree as an operator and an attacker left it:
// root/ (root's, 0755) holds secret (a root-only file) and user/ (the
// unprivileged user's own directory, 0755).
type fixture struct {
	root, secret, user string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attacks are on files root opens")
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	f := fixture{root: root, secret: filepath.Join(root, "secret"), user: filepath.Join(root, "user")}
	if err := os.WriteFile(f.secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(f.user, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f.user, nobody.UID, nobody.GID); err != nil {
		t.Fatal(err)
	}
	return f
}

// unchanged fails the test if the secret's content, owner or mode changed.
func (f fixture) unchanged(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(f.secret)
	if err != nil || string(b) != "root only\n" {
		t.Errorf("secret content %q, %v: root wrote to it", b, err)
	}
	fi, err := os.Stat(f.secret)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 0 || st.Gid != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret now %d:%d %v, want 0:0 0600", st.Uid, st.Gid, fi.Mode().Perm())
	}
}

// TestOpenAppendRefusesPlantedFiles: in a directory the user can write,
// what it planted in place of a log (a symbolic link, a hard link, a FIFO)
// is refused, and the file it points to is untouched; without a User (no
// privilege boundary) a link is followed as before.
func TestOpenAppendRefusesPlantedFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(f fixture, log string) error
		want  string
	}{
		{"symlink", func(f fixture, log string) error { return os.Symlink(f.secret, log) }, "is a symbolic link in a directory user nobody can write"},
		{"hard link", func(f fixture, log string) error { return os.Link(f.secret, log) }, "has 2 hard links"},
		{"fifo", func(_ fixture, log string) error { return unix.Mkfifo(log, 0o666) }, "is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			log := filepath.Join(f.user, "error.log")
			if err := tc.plant(f, log); err != nil {
				t.Fatal(err)
			}
			file, err := OpenAppend(log, 0o644, nobody)
			if err == nil {
				file.Write([]byte("appended by root\n")) //nolint:errcheck
				file.Chown(nobody.UID, nobody.GID)       //nolint:errcheck
				file.Close()
				t.Errorf("OpenAppend opened the planted %s", tc.name)
			} else if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			f.unchanged(t)
		})
	}
}

// TestOpenAppendRegular: a missing log is created, an existing one is
// appended to, in a directory the user can write.
func TestOpenAppendRegular(t *testing.T) {
	f := newFixture(t)
	log := filepath.Join(f.user, "error.log")
	for _, line := range []string{"one\n", "two\n"} {
		file, err := OpenAppend(log, 0o644, nobody)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := file.WriteString(line); err != nil {
			t.Fatal(err)
		}
		file.Close()
	}
	if b, _ := os.ReadFile(log); string(b) != "one\ntwo\n" {
		t.Errorf("log holds %q", b)
	}
}

// TestOpenAppendDirectoryLinks: a symbolic link among the directories is
// refused when it sits in a directory the user can write (it could have
// swapped its own subdirectory for a link to /etc), and followed when it
// sits in root's (/var/run -> /run).
func TestOpenAppendDirectoryLinks(t *testing.T) {
	f := newFixture(t)
	rootLogs := filepath.Join(f.root, "logs")
	if err := os.Mkdir(rootLogs, 0o755); err != nil {
		t.Fatal(err)
	}
	// the user's "logs" directory, replaced by a link to root's
	planted := filepath.Join(f.user, "logs")
	if err := os.Symlink(rootLogs, planted); err != nil {
		t.Fatal(err)
	}
	if file, err := OpenAppend(filepath.Join(planted, "error.log"), 0o644, nobody); err == nil {
		file.Close()
		t.Error("followed a link planted in the user's directory")
	} else if !strings.Contains(err.Error(), "a directory user nobody can write: not following it as root") {
		t.Errorf("error %q", err)
	}
	if _, err := os.Stat(filepath.Join(rootLogs, "error.log")); !os.IsNotExist(err) {
		t.Errorf("a log was created through the planted link: %v", err)
	}
	// root's own link: followed
	run := filepath.Join(f.root, "run")
	if err := os.Symlink("logs", run); err != nil {
		t.Fatal(err)
	}
	file, err := OpenAppend(filepath.Join(run, "error.log"), 0o644, nobody)
	if err != nil {
		t.Fatalf("root's link not followed: %v", err)
	}
	file.Close()
	if _, err := os.Stat(filepath.Join(rootLogs, "error.log")); err != nil {
		t.Errorf("log not created through root's link: %v", err)
	}
}

// TestOpenAppendTrustedLinks: a log that is a link root made in its own
// directory is followed, /dev/stdout (a magic link in /proc) included; with
// no User, so is a link in any directory.
func TestOpenAppendTrustedLinks(t *testing.T) {
	f := newFixture(t)
	target := filepath.Join(f.root, "real.log")
	link := filepath.Join(f.root, "error.log")
	if err := os.Symlink("real.log", link); err != nil {
		t.Fatal(err)
	}
	file, err := OpenAppend(link, 0o644, nobody)
	if err != nil {
		t.Fatal(err)
	}
	file.Close()
	if _, err := os.Stat(target); err != nil {
		t.Errorf("root's link not followed: %v", err)
	}
	stdout, err := OpenAppend("/dev/stdout", 0o644, nobody)
	if err != nil {
		t.Fatalf("/dev/stdout: %v", err)
	}
	stdout.Close()
	userLink := filepath.Join(f.user, "error.log")
	if err := os.Symlink(target, userLink); err != nil {
		t.Fatal(err)
	}
	if file, err := OpenAppend(userLink, 0o644, nil); err != nil {
		t.Errorf("without a user: %v", err)
	} else {
		file.Close()
	}
}

// TestWriteFile: a pidfile written where the user planted a link replaces
// the link, not its target, and gets exactly perm whatever the umask.
func TestWriteFile(t *testing.T) {
	f := newFixture(t)
	pidfile := filepath.Join(f.user, "asyncd.pid")
	if err := os.Symlink(f.secret, pidfile); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(pidfile, nobody)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.Untrusted {
		t.Error("the user's directory is not marked untrusted")
	}
	if _, err := d.ReadFile(); err == nil {
		t.Error("read the pidfile through a planted link")
	}
	old := unix.Umask(0o077)
	err = d.WriteFile([]byte("42\n"), 0o644)
	unix.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(pidfile)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Errorf("pidfile %v %v, want a regular file 0644", fi.Mode(), err)
	}
	if b, err := d.ReadFile(); err != nil || string(b) != "42\n" {
		t.Errorf("pidfile %q %v", b, err)
	}
	f.unchanged(t)
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(f.user)
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestChownSocket: the socket file gets owner, group and mode; a link
// swapped in for it is refused and its target left alone.
func TestChownSocket(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(f.user, "asyncd.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := OpenDir(path, nobody)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.ChownSocket(nobody.UID, 33, 0o660); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || st.Gid != 33 || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket %d:%d %v, want 65534:33 socket 0660", st.Uid, st.Gid, fi.Mode())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.secret, path); err != nil {
		t.Fatal(err)
	}
	if err := d.ChownSocket(nobody.UID, 33, 0o666); err == nil {
		t.Error("ChownSocket changed through a link")
	}
	f.unchanged(t)
}
