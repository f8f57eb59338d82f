package supervisor

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/bind"
	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/loop/uring"
)

func TestChildEnv(t *testing.T) {
	for _, tc := range []struct {
		name         string
		environ, raw []string
		extra, want  []string
	}{
		{"keeps the rest", []string{"PATH=/bin", "HOME=/root"}, nil, nil, []string{"PATH=/bin", "HOME=/root"}},
		{"drops asyncd settings and stale internals",
			[]string{"ASYNCD_WORKERS=4", "ASYNCD_INTERNAL_SERVE=1", "PATH=/bin"}, nil, []string{"ASYNCD_INTERNAL_SERVE=1"},
			[]string{"PATH=/bin", "ASYNCD_INTERNAL_SERVE=1"}},
		{"drops systemd's variables",
			[]string{"LISTEN_FDS=2", "LISTEN_PID=1", "NOTIFY_SOCKET=/run/n", "WATCHDOG_USEC=1", "WATCHDOG_PID=1", "X=1"},
			nil, nil, []string{"X=1"}},
		{"keeps the io_uring probe override: serving processes choose the backend",
			[]string{uring.ProbeFailEnv + "=seccomp", "ASYNCD_INTERNAL_RELOADS=3", "PATH=/bin"}, nil, nil,
			[]string{uring.ProbeFailEnv + "=seccomp", "PATH=/bin"}},
		{"raw_env after the environment, internals last",
			[]string{"A=1"}, []string{"A=2", "B=3"}, []string{"ASYNCD_INTERNAL_GENERATION=4"},
			[]string{"A=1", "A=2", "B=3", "ASYNCD_INTERNAL_GENERATION=4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := childEnv(tc.environ, tc.raw, tc.extra...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("childEnv = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUpgradeEnv(t *testing.T) {
	got := upgradeEnv([]string{"PATH=/bin", "NOTIFY_SOCKET=/run/n", "WATCHDOG_USEC=1000", "WATCHDOG_PID=12",
		"ASYNCD_INTERNAL_LISTENERS=3|0|:80", "ASYNCD_WORKERS=2", uring.ProbeFailEnv + "=seccomp"},
		"ASYNCD_INTERNAL_UPGRADE_FD=5")
	want := []string{"PATH=/bin", "NOTIFY_SOCKET=/run/n", "WATCHDOG_USEC=1000", "ASYNCD_WORKERS=2",
		uring.ProbeFailEnv + "=seccomp", "ASYNCD_INTERNAL_UPGRADE_FD=5"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("upgradeEnv = %q, want %q", got, want)
	}
}

func TestCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("resolving another user's credential needs root")
	}
	for _, tc := range []struct {
		user, group string
		uid, gid    uint32
		err         string
	}{
		{"nobody", "", 65534, 65534, ""},
		{"65534", "", 65534, 65534, ""},
		{"nobody", "root", 65534, 0, ""},
		{"", "nogroup", 0, 65534, ""},
		{"no-such-user-x", "", 0, 0, `user "no-such-user-x"`},
		{"nobody", "no-such-group-x", 0, 0, `group "no-such-group-x"`},
	} {
		t.Run(tc.user+"/"+tc.group, func(t *testing.T) {
			c, err := credential(tc.user, tc.group)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Uid != tc.uid || c.Gid != tc.gid || c.NoSetGroups {
				t.Errorf("credential = %+v, want uid %d gid %d and supplementary groups set", c, tc.uid, tc.gid)
			}
			for _, g := range c.Groups {
				if g == 0 && tc.user == "nobody" {
					t.Errorf("nobody would keep group 0: %v", c.Groups)
				}
			}
		})
	}
	if c, err := credential("", ""); c != nil || err != nil {
		t.Errorf("no user, no group: %+v %v, want nil", c, err)
	}
}

func TestReadStatus(t *testing.T) {
	r, w := io.Pipe()
	evs := make(chan childEvent, 8)
	go readStatus(r, evs)
	s := &Status{w: w}
	go func() {
		s.Ready()
		s.Recycle("max_requests 10 reached\nsecond line")
		s.Stuck(1, 1500*time.Millisecond)
		s.send(msgHeartbeat)
		w.Close()
	}()
	var got []childEvent
	for e := range evs {
		got = append(got, e)
	}
	want := []childEvent{{msgReady, ""}, {msgRecycle, "max_requests 10 reached second line"},
		{msgStuck, "loop 1 for 1.5s"}, {msgHeartbeat, ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	var nilStatus *Status
	nilStatus.Ready() // outside a supervisor: a no-op, not a panic
}

func TestNotifier(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	abstract := "@asyncd-test-" + filepath.Base(dir)
	ca, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + abstract[1:], Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	for _, tc := range []struct {
		addr string
		c    *net.UnixConn
	}{{path, c}, {abstract, ca}} {
		n := &notifier{addr: tc.addr}
		if err := n.send("READY=1"); err != nil {
			t.Fatal(err)
		}
		if err := n.reloading(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		tc.c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		k, _ := tc.c.Read(buf)
		if string(buf[:k]) != "READY=1" {
			t.Errorf("%s: got %q", tc.addr, buf[:k])
		}
		k, _ = tc.c.Read(buf)
		if !strings.HasPrefix(string(buf[:k]), "RELOADING=1\nMONOTONIC_USEC=") {
			t.Errorf("%s: got %q", tc.addr, buf[:k])
		}
	}
	if err := (&notifier{}).send("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "2000000")
	for _, tc := range []struct {
		pid  string
		want time.Duration
	}{{"", 2 * time.Second}, {"1", 0}} {
		t.Setenv("WATCHDOG_PID", tc.pid)
		if n := newNotifier(); n.watchdog != tc.want {
			t.Errorf("WATCHDOG_PID=%q: watchdog %s, want %s", tc.pid, n.watchdog, tc.want)
		}
	}
}

func TestSigName(t *testing.T) {
	for sig, want := range map[os.Signal]string{syscall.SIGTTIN: "SIGTTIN", syscall.SIGTTOU: "SIGTTOU",
		syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGHUP: "hangup"} {
		if got := sigName(sig); got != want {
			t.Errorf("sigName(%v) = %q, want %q", sig, got, want)
		}
	}
}

// testSupervisor is a Supervisor with sockets bound for specs, as Run
// would have it, without processes.
func testSupervisor(t *testing.T, specs ...string) *Supervisor {
	t.Helper()
	cfg := config.Default()
	cfg.Bind = specs
	set, err := bind.Open(specs, bind.Options{Loops: 1, Backlog: 16})
	if err != nil {
		t.Fatal(err)
	}
	s := &Supervisor{cfg: cfg, sockets: set, owner: true, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		external: map[*os.File]bool{}}
	t.Cleanup(s.sockets.Close)
	return s
}

// TestCleanupOwnership: unix socket files and the pidfile are removed only
// by their owner: not by a supervisor an upgrade started before it serves
// (the old one still serves on them), not after handing over, never for
// sockets systemd owns.
func TestCleanupOwnership(t *testing.T) {
	for _, tc := range []struct {
		name     string
		owner    bool
		external bool
		removed  bool
	}{
		{"owner", true, false, true},
		{"upgrade not serving yet, or handed over", false, false, false},
		{"systemd's socket", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sock := filepath.Join(dir, "a.sock")
			s := testSupervisor(t, "unix:"+sock)
			s.owner = tc.owner
			if tc.external {
				s.external[s.sockets.Sockets[0].File] = true
			}
			s.cfg.PidFile = filepath.Join(dir, "asyncd.pid")
			s.owner = true
			s.writePidfile()
			s.owner = tc.owner
			s.cleanup()
			_, err := os.Stat(sock)
			if removed := os.IsNotExist(err); removed != tc.removed {
				t.Errorf("socket file removed = %v, want %v", removed, tc.removed)
			}
			_, err = os.Stat(s.cfg.PidFile)
			if removed := os.IsNotExist(err); removed != tc.owner {
				t.Errorf("pidfile removed = %v, want %v", removed, tc.owner)
			}
		})
	}
}

// TestPidfile: written atomically with this pid, removed only while it
// still names this process.
func TestPidfile(t *testing.T) {
	s := testSupervisor(t)
	s.cfg.PidFile = filepath.Join(t.TempDir(), "asyncd.pid")
	s.writePidfile()
	b, err := os.ReadFile(s.cfg.PidFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pidfile %q %v", b, err)
	}
	os.WriteFile(s.cfg.PidFile, []byte("1\n"), 0o644) //nolint:errcheck
	s.removePidfile(s.cfg.PidFile)
	if _, err := os.Stat(s.cfg.PidFile); err != nil {
		t.Errorf("removed a pidfile naming another process: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(s.cfg.PidFile))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// TestRebind: a reload keeps the sockets of addresses still configured
// (same descriptors: their accept queues survive), binds new ones, and
// retires dropped ones until a newer generation serves; re-adding a
// retired address takes its socket back.
func TestRebind(t *testing.T) {
	dir := t.TempDir()
	a, b := "unix:"+filepath.Join(dir, "a.sock"), "unix:"+filepath.Join(dir, "b.sock")
	s := testSupervisor(t, a)
	fa := s.sockets.Sockets[0].File
	cfg := *s.cfg
	cfg.Bind = []string{a, b}
	if err := s.rebind(&cfg); err != nil {
		t.Fatal(err)
	}
	s.cfg = &cfg
	if len(s.sockets.Sockets) != 2 || s.sockets.Sockets[0].File != fa {
		t.Fatalf("after adding b: %v", s.sockets.Sockets)
	}
	fb := s.sockets.Sockets[1].File
	cfg2 := cfg
	cfg2.Bind = []string{b}
	if err := s.rebind(&cfg2); err != nil {
		t.Fatal(err)
	}
	s.cfg = &cfg2
	if len(s.sockets.Sockets) != 1 || s.sockets.Sockets[0].File != fb || len(s.retired) != 1 {
		t.Fatalf("after dropping a: sockets %v retired %v", s.sockets.Sockets, s.retired)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.sock")); err != nil {
		t.Errorf("a's file removed while the running generation may still serve it: %v", err)
	}
	cfg3 := cfg2
	cfg3.Bind = []string{b, a}
	if err := s.rebind(&cfg3); err != nil {
		t.Fatal(err)
	}
	s.cfg = &cfg3
	if len(s.retired) != 0 || len(s.sockets.Sockets) != 2 || s.sockets.Sockets[1].File != fa {
		t.Fatalf("re-adding a: sockets %v retired %v", s.sockets.Sockets, s.retired)
	}
	cfg4 := cfg3
	cfg4.Bind = []string{b}
	if err := s.rebind(&cfg4); err != nil {
		t.Fatal(err)
	}
	s.closeRetired()
	if _, err := os.Stat(filepath.Join(dir, "a.sock")); !os.IsNotExist(err) {
		t.Errorf("a's file still there once retired: %v", err)
	}
	// a bind that cannot be opened fails the reload and changes nothing
	cfg5 := cfg4
	cfg5.Bind = []string{b, "unix:" + filepath.Join(dir, "no-such-dir", "c.sock")}
	before := s.sockets.Sockets
	if err := s.rebind(&cfg5); err == nil {
		t.Error("rebind to an impossible address succeeded")
	}
	if !reflect.DeepEqual(s.sockets.Sockets, before) {
		t.Error("a failed rebind changed the socket set")
	}
}

// TestExternalEnv: which inherited descriptors belong to systemd travels
// across a binary upgrade.
func TestExternalEnv(t *testing.T) {
	dir := t.TempDir()
	s := testSupervisor(t, "unix:"+filepath.Join(dir, "a.sock"), "unix:"+filepath.Join(dir, "b.sock"))
	s.markExternal([]*os.File{s.sockets.Sockets[1].File}, "")
	if got, want := s.externalEnv(), EnvExternalFDs+"=4"; got != want {
		t.Errorf("externalEnv = %q, want %q", got, want)
	}
	fd := strconv.Itoa(int(s.sockets.Sockets[0].File.Fd()))
	s.markExternal(nil, fd)
	if !s.external[s.sockets.Sockets[0].File] || s.external[s.sockets.Sockets[1].File] {
		t.Errorf("markExternal from %q: %v", fd, s.external)
	}
}

// TestListenersMoreLoops: a set made for fewer loops than now run (SIGTTIN)
// is shared by every loop rather than leaving loops without connections.
func TestListenersMoreLoops(t *testing.T) {
	set, err := bind.Open([]string{"127.0.0.1:0"}, bind.Options{Loops: 2, ReusePort: true, Backlog: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for _, tc := range []struct {
		loops int
		want  []int
	}{{1, []int{0, 0}}, {2, []int{0, 1}}, {3, []int{-1, -1}}} {
		var got []int
		for _, l := range set.Listeners(tc.loops) {
			got = append(got, l.Loop)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%d loops: listener loops %v, want %v", tc.loops, got, tc.want)
		}
	}
}
