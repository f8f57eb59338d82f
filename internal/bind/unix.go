package bind

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/asyncd/asyncd/internal/safefile"
	"github.com/asyncd/asyncd/loop/socket"
	"golang.org/x/sys/unix"
)

// Owner is who a unix socket file is given to; -1 leaves that id alone.
type Owner struct {
	UID, GID int
}

// listenUnix creates a unix socket: a stale socket file (nobody listening)
// is removed, a live one or another file is an error; the new file gets
// o.SocketMode and o.SocketOwner through a descriptor of that file, in a
// directory opened as package safefile says, so that nothing the serving
// user plants there is followed. An abstract socket (unix:@NAME) has no
// file.
func listenUnix(a Addr, o Options) (*os.File, error) {
	if strings.HasPrefix(a.Address, "@") {
		return socket.Listen("unix", a.Address, false, o.Backlog)
	}
	d, err := safefile.OpenDir(a.Address, o.Untrusted)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if err := removeStale(d, a.Address); err != nil {
		return nil, err
	}
	f, err := socket.Listen("unix", a.Address, false, o.Backlog)
	if err != nil {
		return nil, err
	}
	uid, gid := -1, -1
	if o.SocketOwner != nil {
		uid, gid = o.SocketOwner.UID, o.SocketOwner.GID
	}
	if err := d.ChownSocket(uid, gid, o.SocketMode); err != nil {
		f.Close()
		d.Remove() //nolint:errcheck // ours, just created; the error below says why
		if errors.Is(err, unix.EPERM) {
			err = fmt.Errorf("%w (a process may give its files only to itself and to groups it is a member of, unless it is root)", err)
		}
		return nil, err
	}
	return f, nil
}

// removeStale removes a unix socket file nobody listens on any more, so a
// restart after a crash can bind; a live socket is never removed, and
// neither is anything that is not a socket (a link included).
func removeStale(d *safefile.Dir, path string) error {
	st, err := d.Lstat()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	return d.Remove()
}

// RemoveSocketFile removes the unix socket file of a when it still is a
// socket (at exit, or when a reload dropped the address), in a directory
// opened as package safefile says.
func RemoveSocketFile(a Addr, u *safefile.User) error {
	if a.Kind != Unix || strings.HasPrefix(a.Address, "@") {
		return nil
	}
	d, err := safefile.OpenDir(a.Address, u)
	if err != nil {
		return err
	}
	defer d.Close()
	if st, err := d.Lstat(); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return err
	}
	return d.Remove()
}
