package supervisor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/asyncd/asyncd/bind"
)

// writePidfile writes the supervisor's pid, atomically (a reader never
// sees an empty file), once this supervisor serves.
func (s *Supervisor) writePidfile() {
	p := s.cfg.PidFile
	if p == "" || !s.owner {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err == nil {
		_, err = tmp.WriteString(strconv.Itoa(os.Getpid()) + "\n")
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(tmp.Name(), 0o644&^os.FileMode(currentUmask()))
		}
		if err == nil {
			err = os.Rename(tmp.Name(), p)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		s.log.Error("cannot write the pidfile", "path", p, "error", err.Error())
	}
}

// removePidfile removes the pidfile if it still names this process (after
// a binary upgrade it names the new supervisor).
func (s *Supervisor) removePidfile(p string) {
	if p == "" {
		return
	}
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(p)
	}
}

// cleanup releases what the supervisor owns before it exits: the pidfile
// and the unix socket files, only while it is their owner (not before an
// upgraded supervisor's first generation serves, not after it handed over),
// then its copies of the sockets.
func (s *Supervisor) cleanup() {
	if s.owner {
		s.removePidfile(s.cfg.PidFile)
		for _, k := range append(append([]bind.Socket{}, s.sockets.Sockets...), s.retired...) {
			if k.Addr.Kind == bind.Unix && !s.external[k.File] {
				os.Remove(k.Addr.Address)
			}
		}
	}
	s.sockets.Close()
	for _, k := range s.retired {
		k.File.Close()
	}
	s.retired = nil
}

// currentUmask reads the process umask (umask(2) can only be read by
// setting it; only Run's goroutine creates files in the supervisor).
func currentUmask() int {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return m
}

// markExternal records the sockets whose files belong to someone else
// (systemd socket activation): their paths are never removed. files are
// the descriptors systemd passed; env is EnvExternalFDs from an old
// supervisor (descriptor numbers in this process).
func (s *Supervisor) markExternal(files []*os.File, env string) {
	s.external = map[*os.File]bool{}
	for _, k := range s.sockets.Sockets {
		for _, f := range files {
			if k.File == f {
				s.external[k.File] = true
			}
		}
		for _, fd := range strings.Split(env, ",") {
			if fd != "" && fd == strconv.Itoa(int(k.File.Fd())) {
				s.external[k.File] = true
			}
		}
	}
}

// externalEnv lists, for a child inheriting the sockets as descriptors
// 3.., the ones that belong to someone else.
func (s *Supervisor) externalEnv() string {
	var fds []string
	for i, k := range s.sockets.Sockets {
		if s.external[k.File] {
			fds = append(fds, strconv.Itoa(3+i))
		}
	}
	return EnvExternalFDs + "=" + strings.Join(fds, ",")
}
