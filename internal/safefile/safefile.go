// Package safefile is how asyncd's root supervisor creates, opens, renames
// and removes files in directories an unprivileged user (the serving
// process's `user`) can write: the error and access logs, the pidfile and
// unix socket paths. That user could plant a symbolic or hard link there
// and have root append to, chown or remove a file of its choosing (the
// CVE-2016-1247 pattern).
//
// The rule, applied when a User is given:
//   - the directory part of a path is resolved one component at a time; a
//     symbolic link is followed only when it sits in a directory the user
//     cannot write (links root made, such as /var/run -> /run, keep
//     working), and the directory is then opened with openat2's
//     RESOLVE_NO_SYMLINKS, so that nothing the user swaps in meanwhile is
//     followed;
//   - in a directory the user can write, the file itself is opened with
//     O_NOFOLLOW and O_NONBLOCK (no FIFO can hang root) and must be a
//     regular file with one link; entries are renamed and removed with
//     *at calls on the opened directory;
//   - ownership and mode are changed through an open descriptor (fchown),
//     never by name.
//
// It owns path resolution and the *at calls; it decides nothing about
// which files exist (the supervisor, cli and bind do).
package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// User is the unprivileged identity whose writes must not steer root's
// file operations. A nil *User (no privilege boundary: asyncd does not run
// as root, or serves as root) trusts every directory.
type User struct {
	Name     string // for messages
	UID, GID int
	Groups   []int
}

// canWrite reports whether u may create or replace entries in a directory
// with st's owner and mode (ACLs are not consulted).
func (u *User) canWrite(st *unix.Stat_t) bool {
	if u == nil || u.UID == 0 {
		return false
	}
	switch {
	case int(st.Uid) == u.UID:
		return st.Mode&0o200 != 0
	case int(st.Gid) == u.GID || slices.Contains(u.Groups, int(st.Gid)):
		return st.Mode&0o020 != 0
	}
	return st.Mode&0o002 != 0
}

func (u *User) String() string {
	if u.Name != "" {
		return "user " + u.Name
	}
	return "uid " + strconv.Itoa(u.UID)
}

// maxLinks bounds the symbolic links followed while resolving one path,
// as the kernel's MAXSYMLINKS does.
const maxLinks = 40

// resolveDir returns the real path of dir (absolute, without links),
// following only links that sit in directories u cannot write.
func resolveDir(dir string, u *User) (string, error) {
	if !filepath.IsAbs(dir) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(wd, dir)
	}
	cur := "/"
	todo := strings.Split(dir, "/")
	for links := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		var st unix.Stat_t
		if err := unix.Lstat(next, &st); err != nil {
			return "", &os.PathError{Op: "lstat", Path: next, Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			cur = next
		case unix.S_IFLNK:
			if links++; links > maxLinks {
				return "", &os.PathError{Op: "resolve", Path: dir, Err: unix.ELOOP}
			}
			if err := checkLinkDir(cur, next, u); err != nil {
				return "", err
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", err
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			todo = append(strings.Split(target, "/"), todo...)
		default:
			return "", &os.PathError{Op: "resolve", Path: next, Err: unix.ENOTDIR}
		}
	}
	return cur, nil
}

// checkLinkDir refuses to follow the link at path when u can write its
// directory dir: u may have planted it.
func checkLinkDir(dir, path string, u *User) error {
	if u == nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if u.canWrite(&st) {
		return fmt.Errorf("%s is a symbolic link in %s, a directory %s can write: not following it as root", path, dir, u)
	}
	return nil
}

// Dir is an open directory and the name of one entry in it: every
// operation on the entry is relative to the directory's descriptor.
type Dir struct {
	fd   int
	Path string // the directory's real path
	Name string // the entry
	// Untrusted: the User can write the directory, so the entry may be a
	// link or a file it planted.
	Untrusted bool
	user      *User
}

// OpenDir resolves the directory holding p (see the package comment) and
// opens it. p's last element is the entry.
func OpenDir(p string, u *User) (*Dir, error) {
	name := filepath.Base(p)
	if name == "/" || name == "." || name == ".." || strings.HasSuffix(p, "/") {
		return nil, fmt.Errorf("%s: not a file name", p)
	}
	real, err := resolveDir(filepath.Dir(p), u)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, real, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS,
	})
	if errors.Is(err, unix.ENOSYS) {
		// Before Linux 5.6: the last component at least is not a link.
		fd, err = unix.Open(real, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: real, Err: err}
	}
	d := &Dir{fd: fd, Path: real, Name: name, user: u}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		d.Close()
		return nil, &os.PathError{Op: "fstat", Path: real, Err: err}
	}
	d.Untrusted = u.canWrite(&st)
	return d, nil
}

// Close closes the directory.
func (d *Dir) Close() error { return unix.Close(d.fd) }

func (d *Dir) path() string { return filepath.Join(d.Path, d.Name) }

// Lstat stats the entry without following it.
func (d *Dir) Lstat() (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, d.Name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return st, &os.PathError{Op: "lstat", Path: d.path(), Err: err}
	}
	return st, nil
}

// Remove removes the entry (a link itself, never its target).
func (d *Dir) Remove() error {
	if err := unix.Unlinkat(d.fd, d.Name, 0); err != nil {
		return &os.PathError{Op: "remove", Path: d.path(), Err: err}
	}
	return nil
}

// Rename renames the entry to another name in the same directory.
func (d *Dir) Rename(to string) error {
	if err := unix.Renameat(d.fd, d.Name, d.fd, to); err != nil {
		return &os.LinkError{Op: "rename", Old: d.path(), New: filepath.Join(d.Path, to), Err: err}
	}
	return nil
}

// open opens the entry; in an untrusted directory never through a link,
// never blocking on a FIFO, and only a regular file with one link.
func (d *Dir) open(flags int, perm os.FileMode) (*os.File, error) {
	flags |= unix.O_CLOEXEC | unix.O_NOCTTY
	if d.Untrusted {
		flags |= unix.O_NOFOLLOW | unix.O_NONBLOCK
	}
	fd, err := unix.Openat(d.fd, d.Name, flags, uint32(perm))
	if err != nil {
		switch {
		case d.Untrusted && errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("%s is a symbolic link in a directory %s can write: not following it as root", d.path(), d.user)
		case d.Untrusted && errors.Is(err, unix.ENXIO): // a FIFO nobody reads (O_NONBLOCK)
			return nil, fmt.Errorf("%s is not a regular file, in a directory %s can write: not opening it as root", d.path(), d.user)
		}
		return nil, &os.PathError{Op: "open", Path: d.path(), Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path())
	if !d.Untrusted {
		return f, nil
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	switch {
	case err != nil:
		err = &os.PathError{Op: "fstat", Path: d.path(), Err: err}
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = fmt.Errorf("%s is not a regular file, in a directory %s can write: not opening it as root", d.path(), d.user)
	case st.Nlink != 1:
		err = fmt.Errorf("%s has %d hard links, in a directory %s can write: not opening it as root", d.path(), st.Nlink, d.user)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// OpenAppend opens the entry for appending, creating it with perm.
func (d *Dir) OpenAppend(perm os.FileMode) (*os.File, error) {
	return d.open(unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT, perm)
}

// ReadFile reads the entry (a small file: a pidfile).
func (d *Dir) ReadFile() ([]byte, error) {
	f, err := d.open(unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<16))
}

// WriteFile replaces the entry atomically with data: a new file (O_EXCL,
// so never through a link) renamed over it. perm is applied with fchmod,
// so the umask cannot widen or narrow it.
func (d *Dir) WriteFile(data []byte, perm os.FileMode) error {
	tmp := ""
	var fd int
	var err error
	for i := 0; i < 100; i++ {
		tmp = "." + d.Name + "." + strconv.Itoa(os.Getpid()) + "." + strconv.Itoa(i)
		fd, err = unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
		if !errors.Is(err, unix.EEXIST) {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: filepath.Join(d.Path, tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.Path, tmp))
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(d.fd, tmp, d.fd, d.Name)
	}
	if err != nil {
		unix.Unlinkat(d.fd, tmp, 0) //nolint:errcheck // best effort: the error below is what matters
		return fmt.Errorf("write %s: %w", d.path(), err)
	}
	return nil
}

// ChownSocket sets the owner, group and mode of the unix socket file at
// the entry, through a descriptor of that very file (O_PATH, O_NOFOLLOW):
// a link or other file swapped in for it is refused, not changed. uid or
// gid -1 leaves that id alone; mode 0 leaves the mode alone.
func (d *Dir) ChownSocket(uid, gid int, mode os.FileMode) error {
	fd, err := unix.Openat(d.fd, d.Name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: d.path(), Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: d.path(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s is no longer a socket: not changing it", d.path())
	}
	if mode != 0 {
		// chmod(2) has no "this descriptor, never a link" form before
		// fchmodat2; /proc/self/fd/N names exactly the opened file.
		proc := "/proc/self/fd/" + strconv.Itoa(fd)
		if err := unix.Chmod(proc, uint32(mode.Perm())); err != nil {
			return &os.PathError{Op: "chmod", Path: d.path(), Err: err}
		}
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return &os.PathError{Op: "chown", Path: d.path(), Err: err}
		}
	}
	return nil
}

// OpenAppend opens the file at p for appending as a log: created with perm
// if missing, resolved as the package comment says. A final symbolic link
// in a directory u cannot write is followed (errorlog: /dev/stdout).
func OpenAppend(p string, perm os.FileMode, u *User) (*os.File, error) {
	for links := 0; ; links++ {
		d, err := OpenDir(p, u)
		if err != nil {
			return nil, err
		}
		st, err := d.Lstat()
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK || d.Untrusted {
			// missing (created), a file, or a link refused by open
			f, err := d.OpenAppend(perm)
			d.Close()
			return f, err
		}
		target, err := os.Readlink(d.path())
		if err == nil && links >= maxLinks {
			err = &os.PathError{Op: "open", Path: p, Err: unix.ELOOP}
		}
		var fs unix.Statfs_t
		if err == nil && unix.Fstatfs(d.fd, &fs) == nil && fs.Type == unix.PROC_SUPER_MAGIC {
			// /proc/self/fd/1 and the like (via /dev/stdout): magic links
			// the kernel resolves to an open file, not a path to walk;
			// procfs is the kernel's, so following it is safe.
			d.Close()
			return os.OpenFile(filepath.Join(d.Path, d.Name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, perm)
		}
		dir := d.Path
		d.Close()
		if err != nil {
			return nil, err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		p = target
	}
}
