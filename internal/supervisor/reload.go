package supervisor

// Reload: replacing the serving process, re-reading the config, and
// re-binding the sockets a new config names; a bad config or bind leaves
// the running generation serving.

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/asyncd/asyncd/internal/bind"
	"github.com/asyncd/asyncd/internal/config"
)

// replace starts a new generation with the current config (the old one
// drains once the new one is ready). While a new one is still starting,
// the request is queued: that one is replaced as soon as it is ready, so
// the latest config wins, at most one process starts at a time, and no
// process that may already hold connections is killed.
func (s *Supervisor) replace(reason string) {
	if s.stopping {
		return
	}
	if s.pending != nil {
		s.log.Info("a new serving process is still starting; it will be replaced once ready",
			"starting", s.pending.n, "reason", reason)
		s.queued = reason
		return
	}
	if err := s.start(reason); err != nil {
		s.log.Error("cannot start a new serving process; the current one keeps serving", "error", err.Error())
		s.endReload()
	}
}

// reload re-reads the config and replaces the serving process; a broken
// config leaves the running generation serving.
func (s *Supervisor) reload() {
	if s.stopping {
		return
	}
	s.notify.reloading() //nolint:errcheck // nothing to do without systemd
	s.reloadOwed = true
	cfg, warnings, err := s.load()
	if err == nil {
		for _, w := range warnings {
			s.log.Warn("config: " + w)
		}
		err = checkBackend(cfg)
	}
	if err == nil && cfg.PidFile != s.cfg.PidFile {
		err = checkPidfile(cfg)
	}
	if err == nil {
		err = s.rebind(cfg)
	}
	if err == nil {
		err = s.rebindMetrics(s.cfg.MetricsBind, cfg)
	}
	if err == nil {
		err = s.applyProcessSettings(s.cfg, cfg)
	}
	if err != nil {
		s.log.Error("SIGHUP: reload failed; the running generation keeps serving", "error", err.Error())
		s.endReload()
		return
	}
	if s.cfg.PidFile != cfg.PidFile {
		s.removePidfile(s.cfg.PidFile)
	}
	s.cfg = cfg
	s.reloads++
	s.delta = 0 // as Gunicorn: a reload returns to the configured workers
	s.log.Info("SIGHUP: reloading", "config", orDefault(cfg.ConfigFile))
	s.replace("reload")
}

// load runs Options.Load from the directory asyncd was started in, so
// that a relative config path still names the same file after chdir.
func (s *Supervisor) load() (*config.Config, []string, error) {
	if s.o.Load == nil {
		return nil, nil, fmt.Errorf("reload: no config loader")
	}
	if wd, err := os.Getwd(); err == nil && wd != s.origDir {
		if err := os.Chdir(s.origDir); err == nil {
			defer os.Chdir(wd) //nolint:errcheck // it was our directory a moment ago
		}
	}
	return s.o.Load()
}

// applyProcessSettings applies umask and chdir (at start, and on reload
// when they changed). A umask set anywhere (file, environment, flag) is
// applied, 0000 included; left unset, asyncd keeps the umask it was
// started with (a reload that drops the setting returns to it).
func (s *Supervisor) applyProcessSettings(old, cfg *config.Config) error {
	if old == nil {
		s.startUmask = currentUmask()
	}
	umask := s.startUmask
	if _, set := cfg.Source["umask"]; set {
		umask = cfg.Umask
	}
	if umask != currentUmask() {
		syscall.Umask(umask)
	}
	if cfg.Chdir != "" && (old == nil || old.Chdir != cfg.Chdir) {
		dir := cfg.Chdir
		if old != nil && !isAbs(dir) {
			dir = s.origDir + "/" + dir
		}
		if err := os.Chdir(dir); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // it names the path again: chdir /x: chdir /x: ...
			}
			return fmt.Errorf("%s: chdir: %s: %w", cfg.Source.Of("chdir"), cfg.Chdir, err)
		}
	}
	return nil
}

func isAbs(p string) bool { return len(p) > 0 && p[0] == '/' }

// rebind adapts the socket set to a reloaded config: sockets of addresses
// still configured are kept (their accept queues survive), new addresses
// are bound, and removed ones are retired: closed (and unix socket files
// removed) once a generation without them serves.
func (s *Supervisor) rebind(cfg *config.Config) error {
	same := len(cfg.Bind) == len(s.cfg.Bind)
	for i := range cfg.Bind {
		if same && cfg.Bind[i] != s.cfg.Bind[i] {
			same = false
		}
	}
	if same {
		return nil
	}
	keep := &bind.Set{}
	var fresh []string
	old := append(append([]bind.Socket{}, s.sockets.Sockets...), s.retired...)
	for _, spec := range cfg.Bind {
		found := false
		for _, k := range old {
			if k.Addr.Spec == spec {
				keep.Sockets = append(keep.Sockets, k)
				found = true
			}
		}
		if !found {
			fresh = append(fresh, spec)
		}
	}
	if len(fresh) > 0 {
		o, err := bindOptions(cfg, nil)
		if err != nil {
			return err
		}
		more, err := bind.Open(fresh, o)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.Source.Of("bind"), err)
		}
		keep.Sockets = append(keep.Sockets, more.Sockets...)
	}
	var retired []bind.Socket
	for _, k := range old {
		used := false
		for _, n := range keep.Sockets {
			if n.File == k.File {
				used = true
			}
		}
		if !used {
			retired = append(retired, k)
		}
	}
	s.sockets, s.retired = keep, retired
	return nil
}

// closeRetired closes the sockets a reload dropped, now that a generation
// without them serves (the draining one keeps its own copies until it
// exits).
func (s *Supervisor) closeRetired() {
	for _, k := range s.retired {
		k.File.Close()
		if s.owner && !s.external[k.File] {
			s.removeSocketFile(k.Addr)
		}
		s.log.Info("stopped listening", "bind", k.Addr.Spec)
	}
	s.retired = nil
}
