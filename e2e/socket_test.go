package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Unix socket ownership (issue 20, Must fix 4): nginx, running as
// www-data, must be able to connect to asyncd's unix socket however
// asyncd was started.

const (
	wwwData = 33    // Debian's www-data user and group
	daemon  = 1     // a user in neither the socket's owner nor its group
	nobody  = 65534 // nobody, nogroup
)

// connectAs connects to the unix socket at path as uid/gid (fsuid and
// fsgid, on a thread of its own: what connect(2) checks) and makes one
// request on it.
func connectAs(path string, uid, gid int) (*response, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unix.Setfsgid(gid)
	unix.Setfsuid(uid)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	}
	unix.Setfsuid(os.Geteuid())
	unix.Setfsgid(os.Getegid())
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: nginx\r\n\r\n"); err != nil {
		return nil, err
	}
	return readResponse(bufio.NewReader(c))
}

// checkSocket asserts the socket file's owner, group and mode, that
// www-data (nginx) gets answers on it and that another user is refused.
func checkSocket(t *testing.T, path string, uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket %d:%d %v, want %d:%d socket 0660", st.Uid, st.Gid, fi.Mode(), uid, gid)
	}
	if r, err := connectAs(path, wwwData, wwwData); err != nil || r.status != 200 {
		t.Errorf("www-data (nginx) on the socket: %+v %v, want 200", r, err)
	}
	if _, err := connectAs(path, daemon, daemon); !errors.Is(err, unix.EACCES) {
		t.Errorf("another user on the socket: %v, want permission denied", err)
	}
}

// ownedDir is a directory owned by uid, as a log directory or socket
// directory given to the serving user is (RuntimeDirectory=, or
// `install -d -o asyncd`).
func ownedDir(t *testing.T, uid int) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSocketGroup: socket_group www-data, as deploy/nginx/asyncd.yaml has
// it, makes the socket usable by nginx when asyncd is started by hand as
// root (serving as root, or as another user), and as an unprivileged user
// that is a member of www-data (systemd's User= with
// SupplementaryGroups=www-data, without the socket unit; a container's
// user given the group with --group-add, named by its number).
func TestSocketGroup(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts asyncd as root and as other users, connects as www-data")
	}
	for _, tc := range []struct {
		name     string
		group    string
		extra    string
		cred     *syscall.Credential
		dirOwner int
		uid, gid int
	}{
		{"root", "www-data", "", nil, 0, 0, wwwData},
		{"root with user nobody", "www-data", "user: nobody\n", nil, nobody, nobody, wwwData},
		{"unprivileged, member of www-data", "www-data", "",
			&syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{wwwData}}, nobody, nobody, wwwData},
		// a container: a numeric gid added with docker run --group-add
		{"unprivileged, numeric group", `"33"`, "",
			&syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{wwwData}}, nobody, nobody, wwwData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sock := filepath.Join(ownedDir(t, tc.dirOwner), "asyncd.sock")
			cfg := strings.Replace(baseConfig, `bind: ["127.0.0.1:0"]`, `bind: ["unix:`+sock+`"]`, 1) +
				"socket_mode: \"0660\"\nsocket_group: " + tc.group + "\n" + tc.extra
			s := startServer(t, cfg, options{cred: tc.cred})
			checkSocket(t, sock, tc.uid, tc.gid)
			s.signal(syscall.SIGHUP) // the socket stays as it is across reloads
			s.waitLog(`msg="serving process ready" generation=2`, 1)
			checkSocket(t, sock, tc.uid, tc.gid)
		})
	}
}

// TestSocketOwner: socket_owner gives the socket to another user (root
// only); asked of an unprivileged asyncd, or with a group it is not a
// member of, the start fails and says why.
func TestSocketOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	sock := filepath.Join(ownedDir(t, 0), "asyncd.sock")
	cfg := strings.Replace(baseConfig, `bind: ["127.0.0.1:0"]`, `bind: ["unix:`+sock+`"]`, 1) +
		"socket_owner: www-data\nsocket_group: www-data\n"
	startServer(t, cfg, options{})
	checkSocket(t, sock, wwwData, wwwData)

	for _, extra := range []string{"socket_owner: root\n", "socket_group: root\n"} {
		dir := ownedDir(t, nobody)
		sock := filepath.Join(dir, "asyncd.sock")
		cfg := strings.Replace(baseConfig, `bind: ["127.0.0.1:0"]`, `bind: ["unix:`+sock+`"]`, 1) + extra
		s := startServer(t, cfg, options{noWait: true, cred: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}})
		if code := s.wait(20 * time.Second); code != 1 {
			t.Errorf("%s as nobody: exit %d, want 1", strings.TrimSpace(extra), code)
		}
		if out := s.output(); !strings.Contains(out, "operation not permitted (a process may give its files only to itself") {
			t.Errorf("%s as nobody: the output does not say why:\n%s", strings.TrimSpace(extra), out)
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("the socket file is left behind: %v", err)
		}
	}
}

// TestSocketGroupActivated: with socket activation the socket unit owns
// the file (SocketUser=, SocketGroup=): asyncd leaves it as it is.
func TestSocketGroupActivated(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	sock := filepath.Join(ownedDir(t, 0), "activated.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	uf, _ := ul.(*net.UnixListener).File()
	defer uf.Close()
	cfg := strings.Replace(baseConfig, `bind: ["127.0.0.1:0"]`, `bind: ["unix:`+sock+`"]`, 1) + "socket_group: www-data\n"
	s := startServer(t, cfg, options{
		argv:  []string{"/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$E2E_ASYNCD" -c asyncd.yaml`},
		files: []*os.File{uf},
	})
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("asyncd changed systemd's socket file: %d:%d %v", st.Uid, st.Gid, fi.Mode().Perm())
	}
	s.signal(syscall.SIGTERM)
	s.wait(10 * time.Second)
}
