package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/safefile"
)

// The pidfile names the supervisor, as Gunicorn's does. It is written
// once this supervisor serves, atomically (a reader never sees it empty),
// and removed at exit if it still names this process. Every access goes
// through package safefile: the pidfile's directory may be one the
// serving user can write.

// oldbin is where a supervisor's pidfile goes during a binary upgrade, as
// Gunicorn names it (app.pid.oldbin), so that upgrade scripts find the
// old supervisor with kill -QUIT $(cat app.pid.oldbin).
func oldbin(p string) string {
	if p == "" {
		return ""
	}
	return p + ".oldbin"
}

// pidfileDir opens the directory of pidfile p for cfg's serving user.
func pidfileDir(p string, cfg *config.Config) (*safefile.Dir, error) {
	u, err := ServingUser(cfg)
	if err != nil {
		return nil, err
	}
	return safefile.OpenDir(p, u)
}

// readPidfile returns the pid pidfile p names (0 when it is missing or
// holds no pid).
func readPidfile(p string, cfg *config.Config) (int, error) {
	d, err := pidfileDir(p, cfg)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	b, err := d.ReadFile()
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, nil
	}
	return pid, nil
}

// checkPidfile refuses to start when cfg's pidfile names another live
// process: a second asyncd must not overwrite the first one's pidfile (and
// then remove it at its exit). Gunicorn refuses the same way.
func checkPidfile(cfg *config.Config) error {
	p := cfg.PidFile
	if p == "" {
		return nil
	}
	pid, err := readPidfile(p, cfg)
	if err != nil {
		return fmt.Errorf("%s: pidfile %s: %w", cfg.Source.Of("pidfile"), p, err)
	}
	if pid == 0 || pid == os.Getpid() || !processAlive(pid) {
		return nil
	}
	return fmt.Errorf("%s: pidfile %s: already running on PID %d (or the pidfile is stale: remove it if that is not asyncd)",
		cfg.Source.Of("pidfile"), p, pid)
}

// processAlive reports whether pid exists (EPERM: it does, as another
// user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// writePidfile writes the supervisor's pid once this supervisor serves.
// The mode is 0644 less the umask, as a file created by echo would get.
func (s *Supervisor) writePidfile() {
	p := s.cfg.PidFile
	if p == "" || !s.owner {
		return
	}
	d, err := pidfileDir(p, s.cfg)
	if err == nil {
		err = d.WriteFile([]byte(strconv.Itoa(os.Getpid())+"\n"), 0o644&^os.FileMode(currentUmask()))
		d.Close()
	}
	if err != nil {
		s.log.Error("cannot write the pidfile", "path", p, "error", err.Error())
	}
}

// removePidfile removes pidfile p if it still names this process (after a
// binary upgrade it names the new supervisor).
func (s *Supervisor) removePidfile(p string) {
	if p == "" {
		return
	}
	d, err := pidfileDir(p, s.cfg)
	if err != nil {
		return
	}
	defer d.Close()
	if b, err := d.ReadFile(); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		d.Remove() //nolint:errcheck // gone already is fine
	}
}

// renamePidfile moves this supervisor's pidfile from one name to another
// in its directory (to .oldbin when a binary upgrade starts, back when it
// fails), if the source names this process.
func (s *Supervisor) renamePidfile(from, to string) {
	if from == "" || !s.owner {
		return
	}
	d, err := pidfileDir(from, s.cfg)
	if err != nil {
		return
	}
	defer d.Close()
	b, err := d.ReadFile()
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		return
	}
	if err := d.Rename(filepath.Base(to)); err != nil {
		s.log.Warn("cannot rename the pidfile", "from", from, "to", to, "error", err.Error())
	}
}

// currentUmask reads the process umask (umask(2) can only be read by
// setting it; only Run's goroutine creates files in the supervisor).
func currentUmask() int {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return m
}
