package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/asyncd/asyncd/internal/config"
	"golang.org/x/sys/unix"
)

// checkHost checks, for --check-config, what the configuration names on
// this machine, without starting anything: chdir is a directory; user and
// group exist; the directories of errorlog, accesslog and pidfile exist,
// and each can be written by the process that writes it. (Unix socket
// directories are left to start-up: systemd's RuntimeDirectory= creates
// them only then.) Relative paths are resolved as at start-up: errorlog and chdir
// against the working directory, the others against chdir. A process
// started as root that switches to user and group is checked with their
// ids against the permission bits (ACLs are not read).
func checkHost(cfg *config.Config) (errs []*config.Error, warns []string) {
	problem := func(key, detail string) {
		errs = append(errs, &config.Error{Source: cfg.Source.Of(key), Key: key, Msg: key + ": " + detail, Kind: config.KindHost})
	}
	self := identity{uid: os.Geteuid(), gids: groupsOfSelf()}
	server, switches := self, false
	if cfg.User != "" || cfg.Group != "" {
		id, err := lookupIdentity(cfg.User, cfg.Group)
		var le *lookupError
		switch {
		case errors.As(err, &le):
			problem(le.key, le.detail)
		case err != nil:
			problem("user", err.Error())
		default:
			switches = id.uid != self.uid || !slices.Contains(self.gids, id.gid)
			if switches && self.uid != 0 {
				warns = append(warns, fmt.Sprintf("%s: user/group: the serving process switches to uid %d, gid %d, "+
					"which needs asyncd to start as root; checked as uid %d, it would fail to start",
					cfg.Source.Of(orKey(cfg.User, "user", "group")), id.uid, id.gid, self.uid))
			} else {
				server = id
			}
		}
	}

	base, baseOK := "", true // where relative paths after chdir resolve
	if cfg.Chdir != "" {
		st, err := os.Stat(cfg.Chdir)
		switch {
		case err != nil:
			problem("chdir", fmt.Sprintf("%s: %s", cfg.Chdir, pathError(err)))
			baseOK = false
		case !st.IsDir():
			problem("chdir", fmt.Sprintf("%s: not a directory", cfg.Chdir))
			baseOK = false
		case unix.Access(cfg.Chdir, unix.X_OK) != nil:
			problem("chdir", fmt.Sprintf("%s: permission denied (uid %d cannot enter it)", cfg.Chdir, self.uid))
		}
		base = cfg.Chdir
	}
	resolve := func(p string) (string, bool) {
		if p == "" || p == "-" || filepath.IsAbs(p) || base == "" {
			return p, true
		}
		return filepath.Join(base, p), baseOK
	}
	checkFile := func(key, path string, who identity, asSelf bool) {
		if path == "" || path == "-" {
			return
		}
		if detail := writable(path, who, asSelf); detail != "" {
			problem(key, fmt.Sprintf("%s: %s", path, detail))
		}
	}
	// errorlog is opened by the supervisor before it changes directory.
	checkFile("errorlog", cfg.ErrorLog, self, true)
	if p, ok := resolve(cfg.PidFile); ok {
		checkFile("pidfile", p, self, true)
	}
	if p, ok := resolve(cfg.AccessLog); ok {
		checkFile("accesslog", p, server, server.uid == self.uid)
	}
	return errs, warns
}

func orKey(user, a, b string) string {
	if user != "" {
		return a
	}
	return b
}

// identity is who a process runs as, for permission checks.
type identity struct {
	uid  int
	gid  int   // primary group
	gids []int // every group, the primary one included
}

type lookupError struct{ key, detail string }

func (e *lookupError) Error() string { return e.key + ": " + e.detail }

// lookupIdentity resolves user and group (names or ids) as the supervisor
// does when it starts the serving process: the user's primary group and
// supplementary groups, or the group alone when one is given.
func lookupIdentity(userName, groupName string) (identity, error) {
	id := identity{uid: os.Geteuid(), gid: os.Getegid()}
	id.gids = []int{id.gid}
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			if u, err = user.LookupId(userName); err != nil {
				return id, &lookupError{"user", fmt.Sprintf("%q: no such user on this machine", userName)}
			}
		}
		id.uid, _ = strconv.Atoi(u.Uid)
		id.gid, _ = strconv.Atoi(u.Gid)
		id.gids = []int{id.gid}
		if groupName == "" {
			if ids, err := u.GroupIds(); err == nil {
				for _, s := range ids {
					if n, err := strconv.Atoi(s); err == nil && n != id.gid {
						id.gids = append(id.gids, n)
					}
				}
			}
		}
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			if g, err = user.LookupGroupId(groupName); err != nil {
				return id, &lookupError{"group", fmt.Sprintf("%q: no such group on this machine", groupName)}
			}
		}
		id.gid, _ = strconv.Atoi(g.Gid)
		id.gids = []int{id.gid}
	}
	return id, nil
}

func groupsOfSelf() []int {
	gids := []int{os.Getegid()}
	if more, err := os.Getgroups(); err == nil {
		gids = append(gids, more...)
	}
	return gids
}

// writable says why who cannot append to the file at path (or create it
// when it does not exist), or "" if it can. asSelf: who is this process,
// so the kernel is asked (access(2), which also knows ACLs and read-only
// file systems).
func writable(path string, who identity, asSelf bool) string {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return dirWritable(filepath.Dir(path), who, asSelf)
	case err != nil:
		return pathError(err)
	case st.IsDir():
		return "is a directory"
	}
	if asSelf {
		if err := unix.Access(path, unix.W_OK); err != nil {
			return fmt.Sprintf("uid %d cannot write it: %s", who.uid, pathError(err))
		}
		return ""
	}
	if !permits(st, who, 2) {
		return fmt.Sprintf("uid %d cannot write it (%s)", who.uid, describeMode(st))
	}
	return ""
}

// dirWritable says why who cannot create files in dir, or "".
func dirWritable(dir string, who identity, asSelf bool) string {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("the directory %s does not exist", dir)
	case err != nil:
		return pathError(err)
	case !st.IsDir():
		return fmt.Sprintf("%s is not a directory", dir)
	}
	if asSelf {
		if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Sprintf("uid %d cannot create files in %s: %s", who.uid, dir, pathError(err))
		}
		return ""
	}
	if !permits(st, who, 3) {
		return fmt.Sprintf("uid %d cannot create files in %s (%s)", who.uid, dir, describeMode(st))
	}
	return ""
}

// permits checks the permission bits (want: 2 write, 1 search) for who,
// as the kernel does without ACLs: owner bits, else group bits, else other.
func permits(st os.FileInfo, who identity, want uint32) bool {
	if who.uid == 0 {
		return true
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true // not determinable: do not guess
	}
	perm := uint32(st.Mode().Perm())
	var bits uint32
	switch {
	case int(sys.Uid) == who.uid:
		bits = perm >> 6
	case slices.Contains(who.gids, int(sys.Gid)):
		bits = perm >> 3
	default:
		bits = perm
	}
	return bits&want == want
}

func describeMode(st os.FileInfo) string {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%s, owner uid %d, group gid %d", st.Mode().Perm(), sys.Uid, sys.Gid)
	}
	return st.Mode().Perm().String()
}

// pathError is an error about a path without the path (which the message
// names already): "no such file or directory".
func pathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
