package bind

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOpenUnixExisting: a stale socket file is replaced; a live socket, a
// regular file and a symbolic link at the path are refused and left alone.
func TestOpenUnixExisting(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	live := filepath.Join(dir, "live.sock")
	ll, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	link := filepath.Join(dir, "link.sock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{stale, ""},
		{live, "is in use by another process"},
		{target, "exists and is not a socket"},
		{link, "exists and is not a socket"},
	} {
		set, err := Open([]string{"unix:" + tc.path}, Options{SocketMode: 0o600})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", filepath.Base(tc.path), err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", filepath.Base(tc.path), err, tc.want)
		}
		if set != nil {
			set.Close()
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Errorf("the link's target changed: %q", b)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was removed or replaced: %v", err)
	}
}

// TestOpenUnixOwner: the socket file gets socket_mode and the owner and
// group asked for, whatever the umask.
func TestOpenUnixOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, tc := range []struct {
		owner    *Owner
		uid, gid uint32
	}{
		{&Owner{UID: 65534, GID: 33}, 65534, 33},
		{&Owner{UID: -1, GID: 33}, 0, 33},
		{nil, 0, 0},
	} {
		path := filepath.Join(t.TempDir(), "a.sock")
		set, err := Open([]string{"unix:" + path}, Options{SocketMode: 0o660, SocketOwner: tc.owner})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != tc.uid || st.Gid != tc.gid || fi.Mode().Perm() != 0o660 {
			t.Errorf("owner %+v: socket %d:%d %v, want %d:%d 0660", tc.owner, st.Uid, st.Gid, fi.Mode().Perm(), tc.uid, tc.gid)
		}
		set.Close()
	}
}

// TestOpenUnixAbstract: unix:@NAME, a Linux abstract socket, has no file
// to chmod (socket_mode used to fail it).
func TestOpenUnixAbstract(t *testing.T) {
	name := fmt.Sprintf("@asyncd-bind-test-%d", os.Getpid())
	set, err := Open([]string{"unix:" + name}, Options{SocketMode: 0o660, SocketOwner: &Owner{UID: -1, GID: os.Getgid()}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	c, err := net.Dial("unix", name)
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	c.Close()
}

// TestExportOddPaths: a unix socket path with the separators of the
// environment entry ("," and "|") reaches the child intact.
func TestExportOddPaths(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a,b|c%d.sock")
	set, err := Open([]string{"unix:" + path, "127.0.0.1:0"}, Options{SocketMode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	_, env := set.Export()
	// the child sees the files as descriptors 3, 4: use duplicates in
	// this process in their place
	_, value, _ := strings.Cut(env, "=")
	for i, k := range set.Sockets {
		fd, err := syscall.Dup(int(k.File.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		value = strings.Replace(value, fmt.Sprintf("%d|", 3+i), fmt.Sprintf("%d|", fd), 1)
	}
	got, err := Inherited(value)
	if err != nil {
		t.Fatalf("Inherited(%q): %v", value, err)
	}
	defer got.Close()
	if len(got.Sockets) != 2 || got.Sockets[0].Addr.Address != path || got.Sockets[1].Addr.Spec != "127.0.0.1:0" {
		t.Errorf("inherited %+v, want %s and 127.0.0.1:0", got.Sockets, path)
	}
}
