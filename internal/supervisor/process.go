package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/asyncd/asyncd/internal/bind"
	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/safefile"
	"github.com/asyncd/asyncd/loop"
)

// executable is the path of the asyncd binary on disk (not /proc/self/exe:
// after an upgrade replaced the file, the path names the new binary).
func executable() (string, error) {
	p := os.Args[0]
	if !strings.Contains(p, "/") {
		lp, err := exec.LookPath(p)
		if err != nil {
			return os.Executable()
		}
		p = lp
	}
	return filepath.Abs(p)
}

// spawn starts a serving process: the same binary with
// ASYNCD_INTERNAL_SERVE=1, the sockets as descriptors 3.., its config on a
// pipe (read as /dev/fd/N) and a status pipe back.
func (s *Supervisor) spawn(cfg *config.Config, reason string) (*generation, error) {
	y, err := cfg.YAML()
	if err != nil {
		return nil, fmt.Errorf("serialize config: %w", err)
	}
	cred, err := credential(cfg.User, cfg.Group)
	if err != nil {
		return nil, err
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("config pipe: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		cfgW.Close()
		return nil, fmt.Errorf("status pipe: %w", err)
	}
	closeAll := func() {
		cfgR.Close()
		cfgW.Close()
		statusR.Close()
		statusW.Close()
	}
	if cred != nil {
		// The child opens /dev/fd/N, which checks the pipe's owner (the
		// supervisor, mode 0600): give it to the user the child runs as.
		if err := cfgR.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
			closeAll()
			return nil, fmt.Errorf("config pipe for user %s: %w", cfg.User, err)
		}
		s.chownLogs(cfg)
	}
	files, lenv := s.sockets.Export()
	mfiles, menv := s.metrics.ExportAt(bind.EnvMetrics, 3+len(files))
	files = append(append([]*os.File{}, files...), mfiles...)
	cfgFD := 3 + len(files)
	statusFD := cfgFD + 1
	s.gen++
	cmd := exec.Command(s.exe, "-c", fmt.Sprintf("/dev/fd/%d", cfgFD))
	cmd.ExtraFiles = append(files, cfgR, statusW)
	cmd.Stdout, cmd.Stderr = s.o.Stdout, s.o.Stderr
	cmd.Env = childEnv(os.Environ(), cfg.RawEnv,
		lenv, menv,
		EnvServe+"=1",
		EnvStatusFD+"="+strconv.Itoa(statusFD),
		EnvGeneration+"="+strconv.Itoa(s.gen),
		EnvReloads+"="+strconv.Itoa(s.reloads),
		EnvRestarts+"="+strconv.Itoa(s.restarts),
	)
	// Pdeathsig: a serving process drains and exits if the supervisor dies
	// (see the LockOSThread in Run). Setpgid: a terminal's Ctrl-C reaches
	// the supervisor alone, which then stops its children in order; the
	// child ignores SIGTTOU so that logging to the terminal from a
	// background process group never stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		closeAll()
		s.gen--
		return nil, fmt.Errorf("start serving process %s: %w", s.exe, err)
	}
	cfgR.Close()
	statusW.Close()
	go func() {
		cfgW.Write(y) //nolint:errcheck // a child that cannot read its config reports it itself
		cfgW.Close()
	}()
	now := time.Now()
	g := &generation{n: s.gen, cmd: cmd, cfg: cfg, started: now, lastBeat: now, reason: reason}
	evs := make(chan childEvent, 8)
	go readStatus(statusR, evs)
	go func() {
		for e := range evs {
			s.events <- genEvent{g, e}
		}
		statusR.Close()
	}()
	go func() { s.exits <- genExit{g, cmd.Wait()} }()
	s.log.Info("serving process started", "generation", g.n, "pid", cmd.Process.Pid, "reason", reason,
		"loops", cfg.Workers)
	return g, nil
}

// childEnv is the serving process's environment: the supervisor's, minus
// asyncd settings (already merged into the config the child reads), stale
// internal variables and systemd's (only the supervisor talks to systemd),
// plus raw_env and the internal variables. What a registered backend reads
// (loop.ReadsEnv: uring.ProbeFailEnv) stays: the serving process is where
// the backend is probed and chosen.
func childEnv(environ, raw []string, extra ...string) []string {
	var out []string
	for _, kv := range environ {
		if loop.ReadsEnv(kv) {
			out = append(out, kv)
			continue
		}
		if strings.HasPrefix(kv, "ASYNCD_") || strings.HasPrefix(kv, "LISTEN_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") ||
			strings.HasPrefix(kv, "WATCHDOG_") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, raw...)
	return append(out, extra...)
}

// credential resolves user and group (names or ids) to what the serving
// process runs as, or nil to keep the supervisor's. As root, the
// supplementary groups become the user's own (root's are never kept); as
// another user, switching is refused with a clear error.
func credential(userName, groupName string) (*syscall.Credential, error) {
	if userName == "" && groupName == "" {
		return nil, nil
	}
	uid, gid := os.Getuid(), os.Getgid()
	var u *user.User
	if userName != "" {
		var err error
		if u, err = lookupUser(userName); err != nil {
			return nil, err
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	groups := []uint32{}
	if groupName != "" {
		var err error
		if gid, err = lookupGroup(groupName); err != nil {
			return nil, err
		}
	} else if u != nil {
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if n, err := strconv.Atoi(id); err == nil {
					groups = append(groups, uint32(n))
				}
			}
		}
	}
	if uid == os.Getuid() && gid == os.Getgid() && os.Getuid() != 0 {
		return nil, nil // already that user
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("user %q / group %q: switching needs root (running as uid %d)", userName, groupName, os.Geteuid())
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}

// lookupUser finds a user by name, then by id.
func lookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
	}
	return u, nil
}

// lookupGroup finds a group's id by name, then by id.
func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if g, err = user.LookupGroupId(name); err != nil {
			return 0, fmt.Errorf("group %q: %w", name, err)
		}
	}
	return strconv.Atoi(g.Gid)
}

// socketOwner is who the unix socket files asyncd creates belong to:
// socket_owner and socket_group, each defaulting to the serving user and
// group when user or group is set (as Gunicorn gives its socket to the
// worker user), or nil to leave them to the supervisor.
func socketOwner(cfg *config.Config) (*bind.Owner, error) {
	o := bind.Owner{UID: -1, GID: -1}
	cred, err := credential(cfg.User, cfg.Group)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		o = bind.Owner{UID: int(cred.Uid), GID: int(cred.Gid)}
	}
	if cfg.SocketOwner != "" {
		u, err := lookupUser(cfg.SocketOwner)
		if err != nil {
			return nil, fmt.Errorf("%s: socket_owner: %w", cfg.Source.Of("socket_owner"), err)
		}
		o.UID, _ = strconv.Atoi(u.Uid)
	}
	if cfg.SocketGroup != "" {
		if o.GID, err = lookupGroup(cfg.SocketGroup); err != nil {
			return nil, fmt.Errorf("%s: socket_group: %w", cfg.Source.Of("socket_group"), err)
		}
	}
	if o.UID < 0 && o.GID < 0 {
		return nil, nil
	}
	return &o, nil
}

// ServingUser is the unprivileged user serving processes run as, whose
// writes must not steer what the root supervisor opens (package safefile),
// or nil when there is no such boundary: asyncd does not run as root, or
// serves as root.
func ServingUser(cfg *config.Config) (*safefile.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	cred, err := credential(cfg.User, cfg.Group)
	if err != nil || cred == nil || cred.Uid == 0 {
		return nil, err
	}
	u := &safefile.User{Name: cfg.User, UID: int(cred.Uid), GID: int(cred.Gid)}
	for _, g := range cred.Groups {
		u.Groups = append(u.Groups, int(g))
	}
	return u, nil
}

// chownLogs gives the log files to the user serving processes run as, so
// that they can append to them and reopen them (SIGUSR1) after dropping
// privileges: created if missing, opened and changed through one
// descriptor, never through a link that user could have planted (package
// safefile). The error log first, then the access log.
func (s *Supervisor) chownLogs(cfg *config.Config) {
	u, err := ServingUser(cfg)
	if err != nil || u == nil {
		return
	}
	for _, l := range []struct{ key, path string }{{"errorlog", cfg.ErrorLog}, {"accesslog", cfg.AccessLog}} {
		if l.path == "" || l.path == "-" {
			continue
		}
		if err := chownLog(l.path, u); err != nil {
			s.log.Warn("cannot give the log file to the serving user", "setting", l.key, "path", l.path,
				"user", u.String(), "error", err.Error())
		}
	}
}

func chownLog(path string, u *safefile.User) error {
	f, err := safefile.OpenAppend(path, 0o644, u)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return err // /dev/stdout and the like stay as they are
	}
	return f.Chown(u.UID, u.GID)
}
