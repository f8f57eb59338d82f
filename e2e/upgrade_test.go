package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// copyBinary copies the asyncd binary to path (via a rename, as a package
// manager replaces a binary: the running process keeps the old file).
func copyBinary(t *testing.T, path string) {
	t.Helper()
	src, err := os.Open(asyncdBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tmp := path + ".new"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// upgraded waits for the n-th SIGUSR2's new supervisor to start and
// returns its pid; it is stopped when the test ends if it still runs.
func (s *server) upgraded(n int) int {
	s.t.Helper()
	m := s.waitLog(`SIGUSR2: binary upgrade: new supervisor started" binary=\S+ new_pid=(\d+)`, n)
	pid, _ := strconv.Atoi(m[1])
	s.t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGQUIT) //nolint:errcheck
			waitPid(s.t, pid, 10*time.Second)
		}
	})
	return pid
}

// TestBinaryUpgrade: SIGUSR2 starts the binary now on disk as a new
// supervisor on the same sockets; the old one leaves once the new one
// serves, without a failed request. Under systemd the old one names the
// new one as MAINPID (it is the process systemd listens to), and the
// pidfile names the new one. On each backend.
func TestBinaryUpgrade(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testBinaryUpgrade)
}

func testBinaryUpgrade(t *testing.T, backend string) {
	n := newNotifySocket(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755) //nolint:errcheck
	bin := filepath.Join(dir, "asyncd")
	copyBinary(t, bin)
	cfg := onBackend(baseConfig, backend) + "pidfile: @DIR@/asyncd.pid\n"
	s := startServer(t, cfg, options{argv: []string{bin, "-c", "asyncd.yaml"}, // relative: resolved in the start directory
		env: []string{"NOTIFY_SOCKET=" + n.path}})
	s.checkBackend(1, backend)
	old := s.cmd.Process.Pid
	if m, _ := n.next(t, "READY=1"); m.pid != old {
		t.Errorf("READY=1 sent by pid %d, want the supervisor %d", m.pid, old)
	}
	addr := s.addr()
	pidfile := filepath.Join(s.dir, "asyncd.pid")
	l := startLoad("tcp", addr, "/", 20)

	copyBinary(t, bin) // a new version is installed
	// the new supervisor reads the config again: a new body, one address more
	s.writeConfig(strings.Replace(strings.Replace(cfg, `body: "v1"`, `body: "v2"`, 1),
		`bind: ["127.0.0.1:0"]`, `bind: ["127.0.0.1:0", "unix:@DIR@/new.sock"]`, 1))
	time.Sleep(300 * time.Millisecond)
	s.signal(syscall.SIGUSR2)
	m := s.waitLog(`SIGUSR2: binary upgrade: new supervisor started" binary=\S+ new_pid=(\d+)`, 1)
	newPid, _ := strconv.Atoi(m[1])
	if code := s.wait(20 * time.Second); code != 0 {
		t.Errorf("old supervisor exit code %d, want 0", code)
	}
	time.Sleep(300 * time.Millisecond)
	summary := l.stop()
	t.Logf("during the upgrade: %s", summary)
	if l.errs.Load() != 0 || l.non2xx.Load() != 0 || l.ok.Load() == 0 {
		t.Errorf("requests failed during the binary upgrade: %s", summary)
	}
	t.Cleanup(func() {
		if alive(newPid) {
			syscall.Kill(newPid, syscall.SIGQUIT) //nolint:errcheck
			waitPid(t, newPid, 10*time.Second)
		}
	})
	if !alive(newPid) {
		t.Fatalf("new supervisor %d is not running", newPid)
	}
	// systemd: the old (main) process hands MAINPID over.
	n.nextFrom(t, fmt.Sprintf("MAINPID=%d", newPid), old)
	if b, err := os.ReadFile(pidfile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(newPid) {
		t.Errorf("pidfile %q (%v), want the new supervisor's pid %d", b, err, newPid)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", newPid))
	if err != nil || exe != bin {
		t.Errorf("new supervisor runs %q (%v), want the binary now on disk %s", exe, err, bin)
	}
	if r := get(t, "tcp", addr, "/"); r.body != "v2" {
		t.Errorf("after the upgrade: body %q, want v2 (the config as the new supervisor read it)", r.body)
	}
	// The new supervisor's serving process (it logs to the same output).
	s.checkBackend(2, backend)
	if r := get(t, "unix", filepath.Join(s.dir, "new.sock"), "/"); r.body != "v2" {
		t.Errorf("on the address added before the upgrade: body %q, want v2", r.body)
	}
	// The new supervisor is a supervisor in its own right.
	syscall.Kill(newPid, syscall.SIGTERM) //nolint:errcheck
	if m, _ := n.next(t, "STOPPING=1"); m.pid != newPid {
		t.Errorf("STOPPING=1 sent by pid %d, want %d", m.pid, newPid)
	}
	waitPid(t, newPid, 15*time.Second)
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile left behind after the new supervisor stopped: %v", err)
	}
}

// TestBinaryUpgradeFails: a new binary that dies before it serves leaves
// the old supervisor serving, owning the pidfile and the unix socket.
func TestBinaryUpgradeFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.Chmod(dir, 0o755) //nolint:errcheck
	bin := filepath.Join(dir, "asyncd")
	copyBinary(t, bin)
	cfg := strings.Replace(baseConfig, `bind: ["127.0.0.1:0"]`, `bind: ["127.0.0.1:0", "unix:@DIR@/asyncd.sock"]`, 1) +
		"pidfile: @DIR@/asyncd.pid\n"
	s := startServer(t, cfg, options{argv: []string{bin, "-c", "asyncd.yaml"}})
	addr := s.addr()
	sock := filepath.Join(s.dir, "asyncd.sock")
	// a broken build: exits at once
	if err := os.WriteFile(bin+".new", []byte("#!/bin/sh\necho broken build >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // see ETXTBSY in startServer
	s.signal(syscall.SIGUSR2)
	s.waitLog(`SIGUSR2: the new supervisor exited before it was ready; still serving`, 1)
	if r := get(t, "tcp", addr, "/"); r.status != 200 {
		t.Errorf("after a failed upgrade: status %d", r.status)
	}
	if r := get(t, "unix", sock, "/"); r.status != 200 {
		t.Errorf("after a failed upgrade, on the unix socket: status %d", r.status)
	}
	if b, _ := os.ReadFile(filepath.Join(s.dir, "asyncd.pid")); strings.TrimSpace(string(b)) != strconv.Itoa(s.cmd.Process.Pid) {
		t.Errorf("pidfile %q, want %d", b, s.cmd.Process.Pid)
	}
	// A second upgrade with a good binary goes through.
	copyBinary(t, bin)
	time.Sleep(200 * time.Millisecond)
	s.signal(syscall.SIGUSR2)
	newPid := s.upgraded(2)
	if code := s.wait(20 * time.Second); code != 0 {
		t.Errorf("old supervisor exit code %d, want 0", code)
	}
	// The old supervisor left the unix socket to the new one.
	if r := get(t, "unix", sock, "/"); r.status != 200 {
		t.Errorf("on the unix socket after the upgrade: status %d", r.status)
	}
	syscall.Kill(newPid, syscall.SIGTERM) //nolint:errcheck
	waitPid(t, newPid, 15*time.Second)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("unix socket file left behind after the last supervisor stopped: %v", err)
	}
}
