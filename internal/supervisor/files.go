package supervisor

import (
	"os"
	"strconv"
	"strings"

	"github.com/asyncd/asyncd/internal/bind"
)

// cleanup releases what the supervisor owns before it exits: the pidfile
// and the unix socket files, only while it is their owner (not before an
// upgraded supervisor's first generation serves, not after it handed over),
// the .oldbin pidfile of an upgrade if it names this process, then its
// copies of the sockets.
func (s *Supervisor) cleanup() {
	s.removePidfile(oldbin(s.cfg.PidFile))
	if s.owner {
		s.removePidfile(s.cfg.PidFile)
		for _, k := range append(append(append([]bind.Socket{}, s.sockets.Sockets...), s.retired...), s.metricsSockets()...) {
			if !s.external[k.File] {
				s.removeSocketFile(k.Addr)
			}
		}
	}
	s.sockets.Close()
	if s.metrics != nil {
		s.metrics.Close()
	}
	for _, k := range s.retired {
		k.File.Close()
	}
	s.retired = nil
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

// removeSocketFile removes the unix socket file of an address this
// supervisor bound, never following what the serving user planted.
func (s *Supervisor) removeSocketFile(a bind.Addr) {
	u, err := ServingUser(s.cfg)
	if err == nil {
		err = bind.RemoveSocketFile(a, u)
	}
	if err != nil {
		s.log.Warn("cannot remove the unix socket file", "bind", a.Spec, "error", err.Error())
	}
}
