package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadyMessage: one line says what serves: backend, loops, addresses.
func TestReadyMessage(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(baseConfig, `bind: ["127.0.0.1:0"]`, `bind: ["127.0.0.1:0", "unix:@DIR@/a.sock"]`, 1)
	s := startServer(t, cfg, options{})
	r := s.ready(1)
	if r.backend != "epoll" || r.loops != 2 || len(r.binds) != 2 || !strings.HasPrefix(r.binds[1], "unix:") {
		t.Errorf("ready message %+v, want epoll, 2 loops, a TCP and a unix address", r)
	}
	if _, _, err := net.SplitHostPort(r.binds[0]); err != nil || strings.HasSuffix(r.binds[0], ":0") {
		t.Errorf("TCP address %q is not the bound host:port", r.binds[0])
	}
}

// TestReopenLogs: SIGUSR1 makes the supervisor and the serving process
// reopen the error log (logrotate moved it away).
func TestReopenLogs(t *testing.T) {
	t.Parallel()
	s := startServer(t, baseConfig+"errorlog: \"@DIR@/error.log\"\n", options{logFile: "@DIR@/error.log"})
	path := filepath.Join(s.dir, "error.log")
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	s.signal(syscall.SIGUSR1)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(rotated)
			t.Logf("rotated log:\n%s", b)
		}
	})
	waitFile(t, path, "log files reopened")
	// the serving process writes to the new file too
	s.signal(syscall.SIGHUP)
	waitFile(t, path, `replaced by a new generation: draining`)
	b, _ := os.ReadFile(rotated)
	if strings.Contains(string(b), "SIGHUP") {
		t.Errorf("the rotated file still gets log lines:\n%s", b)
	}
}

// waitFile waits until the file at path contains want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q after 10s; it holds:\n%s", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLoopsTTINTTOU: SIGTTIN and SIGTTOU add and remove one event loop,
// through a new generation, never below one; a reload returns to the
// configured number, as in Gunicorn.
func TestLoopsTTINTTOU(t *testing.T) {
	t.Parallel()
	s := startServer(t, strings.Replace(baseConfig, "workers: 2", "workers: 1", 1), options{})
	addr := s.addr()
	steps := []struct {
		sig   syscall.Signal
		loops int
	}{{syscall.SIGTTIN, 2}, {syscall.SIGTTIN, 3}, {syscall.SIGTTOU, 2}, {syscall.SIGTTOU, 1}}
	for i, st := range steps {
		s.signal(st.sig)
		if r := s.ready(i + 2); r.loops != st.loops {
			t.Fatalf("after %v: %d loops, want %d", st.sig, r.loops, st.loops)
		}
		// every loop gets connections: a few parallel ones are all served
		for j := 0; j < 4; j++ {
			if r := get(t, "tcp", addr, "/"); r.status != 200 {
				t.Fatalf("after %v: status %d", st.sig, r.status)
			}
		}
	}
	s.signal(syscall.SIGTTOU)
	s.waitLog(`SIGTTOU: already at one event loop`, 1)
	s.signal(syscall.SIGTTIN)
	s.ready(6)
	s.signal(syscall.SIGHUP)
	if r := s.ready(7); r.loops != 1 {
		t.Errorf("after a reload: %d loops, want the configured 1", r.loops)
	}
}

// TestUnixSocketPidfileUmask: a unix socket gets socket_mode, survives
// reloads (never removed under a live generation) and is removed at the
// end with the pidfile; umask applies to the files asyncd creates.
func TestUnixSocketPidfileUmask(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(baseConfig, `bind: ["127.0.0.1:0"]`, `bind: ["unix:@DIR@/asyncd.sock"]`, 1) +
		"socket_mode: \"0660\"\numask: \"0077\"\npidfile: \"@DIR@/asyncd.pid\"\n"
	s := startServer(t, cfg, options{})
	sock := filepath.Join(s.dir, "asyncd.sock")
	pidfile := filepath.Join(s.dir, "asyncd.pid")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want socket 0660", fi.Mode())
	}
	if pfi, err := os.Stat(pidfile); err != nil {
		t.Errorf("pidfile: %v", err)
	} else if pfi.Mode().Perm() != 0o600 {
		t.Errorf("pidfile mode %v, want 0600 (0644 under umask 0077)", pfi.Mode())
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	l := startLoad("unix", sock, "/", 10)
	for i := 0; i < 3; i++ {
		s.signal(syscall.SIGHUP)
		s.waitLog(`msg="serving process ready"`, i+2)
	}
	time.Sleep(300 * time.Millisecond)
	summary := l.stop()
	if l.errs.Load() != 0 || l.ok.Load() == 0 {
		t.Errorf("requests on the unix socket across reloads: %s", summary)
	}
	fi2, err := os.Stat(sock)
	if err != nil || fi2.Sys().(*syscall.Stat_t).Ino != ino {
		t.Errorf("the unix socket file was replaced or removed during reloads: %v", err)
	}
	s.signal(syscall.SIGTERM)
	if code := s.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	for _, p := range []string{sock, pidfile} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}

// freePrivilegedPort finds a TCP port below 1024 free on 127.0.0.1.
func freePrivilegedPort(t *testing.T) int {
	t.Helper()
	for p := 1023; p > 600; p-- {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port below 1024")
	return 0
}

// TestUserDrop: as root, asyncd binds a port below 1024 and serves as an
// unprivileged user and group (nobody, www-data: a group that is not
// nobody's own, so that `group` has to be applied): the serving process
// runs with those ids and none of root's groups, the unix socket and the
// error log are given to them, and the process can still write and reopen
// the log.
func TestUserDrop(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: binds a port below 1024 and switches user")
	}
	const uid, gid = "65534", "33" // nobody, www-data (Debian's fixed ids)
	port := freePrivilegedPort(t)
	cfg := strings.Replace(baseConfig, `bind: ["127.0.0.1:0"]`,
		fmt.Sprintf(`bind: ["127.0.0.1:%d", "unix:@DIR@/asyncd.sock"]`, port), 1) +
		"user: nobody\ngroup: www-data\nerrorlog: \"@DIR@/error.log\"\n"
	s := startServer(t, cfg, options{logFile: "@DIR@/error.log"})
	child := s.ready(1).pid
	if f := strings.Fields(procStatus(t, child, "Uid")); len(f) != 4 || f[0] != uid || f[1] != uid || f[2] != uid || f[3] != uid {
		t.Errorf("serving process Uid %v, want nobody (%s) real, effective, saved and fs", f, uid)
	}
	if f := strings.Fields(procStatus(t, child, "Gid")); len(f) != 4 || f[0] != gid || f[1] != gid || f[2] != gid || f[3] != gid {
		t.Errorf("serving process Gid %v, want www-data (%s) real, effective, saved and fs", f, gid)
	}
	for _, g := range strings.Fields(procStatus(t, child, "Groups")) {
		if g == "0" {
			t.Errorf("serving process kept root's group 0")
		}
	}
	if f := strings.Fields(procStatus(t, s.cmd.Process.Pid, "Uid")); f[0] != "0" {
		t.Errorf("supervisor Uid %v, want root (it keeps the sockets and starts the next generations)", f)
	}
	if f := strings.Fields(procStatus(t, s.cmd.Process.Pid, "Gid")); f[0] != "0" {
		t.Errorf("supervisor Gid %v, want root's", f)
	}
	if r := get(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port), "/"); r.status != 200 {
		t.Errorf("status %d", r.status)
	}
	sock := filepath.Join(s.dir, "asyncd.sock")
	if r := get(t, "unix", sock, "/"); r.status != 200 {
		t.Errorf("on the unix socket: status %d", r.status)
	}
	path := filepath.Join(s.dir, "error.log")
	for _, f := range []string{sock, path} {
		if u, g := owner(t, f); u != uid || g != gid {
			t.Errorf("%s owned by %s:%s, want the serving user and group %s:%s", filepath.Base(f), u, g, uid, gid)
		}
	}
	// the unprivileged process reopens the log after rotation
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	s.signal(syscall.SIGUSR1)
	waitFile(t, path, "log files reopened")
	s.signal(syscall.SIGHUP)
	waitFile(t, path, "replaced by a new generation: draining")
	// the next generation drops to the same ids
	m := s.waitLog(`msg="serving process ready" generation=2 pid=(\d+)`, 1)
	second, _ := strconv.Atoi(m[1])
	if f := strings.Fields(procStatus(t, second, "Gid")); f[0] != gid {
		t.Errorf("second serving process Gid %v, want %s", f, gid)
	}
	if n := strings.Count(s.log(), "permission denied"); n != 0 {
		t.Errorf("%d permission errors in the log", n)
	}
}

// owner returns the uid and gid owning path, as decimal strings.
func owner(t *testing.T, path string) (uid, gid string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
}

// TestSocketActivation: systemd passes listening sockets (LISTEN_FDS,
// LISTEN_PID = the supervisor); asyncd serves on them, by fd:// or by
// matching address, and never removes a unix socket file systemd owns.
func TestSocketActivation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	sock := filepath.Join(dir, "activated.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ul.(*net.UnixListener).SetUnlinkOnClose(false)
	defer ul.Close()
	tf, _ := tcp.(*net.TCPListener).File()
	uf, _ := ul.(*net.UnixListener).File()
	defer tf.Close()
	defer uf.Close()
	for _, tc := range []struct{ name, bind string }{
		{"fd", `["fd://3", "fd://4"]`},
		{"address", fmt.Sprintf(`["%s", "unix:%s"]`, tcp.Addr(), sock)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(baseConfig, `bind: ["127.0.0.1:0"]`, "bind: "+tc.bind, 1)
			s := startServer(t, cfg, options{
				// LISTEN_PID must be the supervisor's pid: a shell knows its
				// own ($$) and exec keeps it.
				argv:  []string{"/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=web:local exec "$E2E_ASYNCD" -c asyncd.yaml`},
				files: []*os.File{tf, uf},
			})
			if r := get(t, "tcp", tcp.Addr().String(), "/"); r.status != 200 {
				t.Errorf("on the activated TCP socket: status %d", r.status)
			}
			if r := get(t, "unix", sock, "/"); r.status != 200 {
				t.Errorf("on the activated unix socket: status %d", r.status)
			}
			s.signal(syscall.SIGHUP)
			s.waitLog(`msg="serving process ready" generation=2`, 1)
			if r := get(t, "tcp", tcp.Addr().String(), "/"); r.status != 200 {
				t.Errorf("after a reload: status %d", r.status)
			}
			if strings.Contains(s.log(), "LISTEN_") {
				t.Errorf("systemd's variables reached the log (a serving process took them?)")
			}
			s.signal(syscall.SIGTERM)
			if code := s.wait(10 * time.Second); code != 0 {
				t.Errorf("exit code %d", code)
			}
			if _, err := os.Stat(sock); err != nil {
				t.Errorf("asyncd removed the unix socket file systemd owns: %v", err)
			}
		})
	}
	// systemd's sockets still listen after asyncd is gone (a restart
	// finds them): a connection is queued, not refused.
	c, err := net.DialTimeout("tcp", tcp.Addr().String(), time.Second)
	if err != nil {
		t.Errorf("activated socket closed after asyncd stopped: %v", err)
	} else {
		c.Close()
	}
}

// TestSdNotify: with NOTIFY_SOCKET, READY=1 comes once a serving process
// answers, RELOADING=1 (with MONOTONIC_USEC) then READY=1 on SIGHUP,
// WATCHDOG=1 every WATCHDOG_USEC/2, STOPPING=1 on SIGTERM; all from the
// supervisor's pid. The serving process does not see NOTIFY_SOCKET.
func TestSdNotify(t *testing.T) {
	t.Parallel()
	n := newNotifySocket(t)
	s := startServer(t, baseConfig, options{noWait: true,
		env: []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=300000"}})
	pid := s.cmd.Process.Pid
	m, _ := n.next(t, "READY=1")
	// answered at once: READY means serving, not starting
	addr := s.addr()
	c := dial(t, "tcp", addr)
	if r, err := c.do("/", 2*time.Second); err != nil || r.status != 200 {
		t.Fatalf("request right after READY=1: %v %v", r, err)
	}
	if m.pid != pid {
		t.Errorf("READY=1 from pid %d, want %d", m.pid, pid)
	}
	s.signal(syscall.SIGHUP)
	m, _ = n.next(t, "RELOADING=1")
	if !regexp.MustCompile(`MONOTONIC_USEC=\d+`).MatchString(m.state) {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m.state)
	}
	n.next(t, "READY=1")
	if g := s.generations(); g != 2 {
		t.Errorf("READY=1 after RELOADING=1 with %d generations ready, want 2", g)
	}
	// a failed reload ends with READY=1 too (the old generation serves)
	os.WriteFile(s.config, []byte("workers: -1\n"), 0o644) //nolint:errcheck
	s.signal(syscall.SIGHUP)
	n.next(t, "RELOADING=1")
	n.next(t, "READY=1")
	n.next(t, "WATCHDOG=1")
	s.signal(syscall.SIGTERM)
	m, _ = n.next(t, "STOPPING=1")
	if m.pid != pid {
		t.Errorf("STOPPING=1 from pid %d, want %d", m.pid, pid)
	}
	s.wait(10 * time.Second)
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", s.ready(1).pid))
	if err == nil && strings.Contains(string(env), "NOTIFY_SOCKET") {
		t.Errorf("the serving process got NOTIFY_SOCKET")
	}
}
