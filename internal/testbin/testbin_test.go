package testbin

import (
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEnvIsClean: a started program sees PATH, HOME, TMPDIR and what the
// test passes, and none of the variables that configure asyncd, Gunicorn,
// systemd or the race detector, nor the test knobs.
func TestEnvIsClean(t *testing.T) {
	tmp := t.TempDir()
	for _, kv := range []string{
		"ASYNCD_WORKERS=7", "ASYNCD_TEST_BACKENDS=epoll", "ASYNCDTEST_BACKENDS=epoll",
		"GUNICORN_CMD_ARGS=--workers 3", "WEB_CONCURRENCY=5", "PORT=9999",
		"LISTEN_FDS=2", "LISTEN_PID=1", "NOTIFY_SOCKET=/run/x", "WATCHDOG_USEC=1",
		"GORACE=log_path=/tmp/x", "PATH=/usr/bin:/bin", "HOME=/home/x", "TMPDIR=" + tmp,
	} {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	r := Run(t, "/usr/bin/env", Options{Env: []string{"TZ=Asia/Kolkata"}}, 10*time.Second)
	got := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	sort.Strings(got)
	want := []string{"HOME=/home/x", "PATH=/usr/bin:/bin", "TMPDIR=" + tmp, "TZ=Asia/Kolkata"}
	if r.Code != 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("env: exit %d, environment\n%s\nwant\n%s", r.Code, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRun: stdout and stderr apart or interleaved, and the exit status.
func TestRun(t *testing.T) {
	script := []string{"-c", "echo out; echo err >&2; echo out2; exit 7"}
	r := Run(t, "/bin/sh", Options{Args: script}, 10*time.Second)
	if r.Stdout != "out\nout2\n" || r.Stderr != "err\n" || r.Code != 7 {
		t.Errorf("apart: %+v", r)
	}
	r = Run(t, "/bin/sh", Options{Args: script, CombinedOutput: true}, 10*time.Second)
	if r.Stdout != "out\nerr\nout2\n" || r.Stderr != r.Stdout || r.Code != 7 {
		t.Errorf("combined: %+v", r)
	}
}

// TestStartWaitLogSignal: a started process's log lines are waited for,
// including those of its LogFile; a signal reaches it; its exit status is
// reported.
func TestStartWaitLogSignal(t *testing.T) {
	logFile := t.TempDir() + "/error.log"
	p := Start(t, "/bin/sh", Options{LogFile: logFile, Args: []string{"-c", `
trap 'echo "got TERM" >&2; exit 3' TERM
echo "ready pid=$$" >&2
echo "to the file" > "$0"
while :; do sleep 0.05; done`, logFile}})
	m := p.WaitLog(regexp.MustCompile(`ready pid=(\d+)`), 1, 10*time.Second)
	if m[1] == "" {
		t.Fatalf("no pid in %q", m)
	}
	p.WaitLog(regexp.MustCompile(`to the file`), 1, 10*time.Second)
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(10 * time.Second); code != 3 {
		t.Errorf("exit status %d, want 3", code)
	}
	if !strings.Contains(p.Stderr.String(), "got TERM") || p.Stdout.String() != "" {
		t.Errorf("stderr %q, stdout %q", p.Stderr.String(), p.Stdout.String())
	}
}

// TestStopKillsWhatIgnoresSIGQUIT: a process that ignores SIGQUIT is
// killed, so a test's end never waits for it forever.
func TestStopKillsWhatIgnoresSIGQUIT(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out the 10 s before SIGKILL")
	}
	p := Start(t, "/bin/sh", Options{Args: []string{"-c", `trap '' QUIT; echo up >&2; while :; do sleep 0.05; done`}})
	p.WaitLog(regexp.MustCompile(`up`), 1, 10*time.Second)
	p.Stop()
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned with the process running")
	}
	if p.Cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("ended by %v, want SIGKILL", p.Err())
	}
}

// TestWantBackend: the new knob, its old name, and neither.
func TestWantBackend(t *testing.T) {
	for _, tt := range []struct {
		knob, old      string
		epoll, ioUring bool
	}{
		{"", "", true, true},
		{"epoll", "", true, false},
		{"io_uring", "", false, true},
		{"epoll,io_uring", "", true, true},
		{"", "epoll", true, false},
		{"io_uring", "epoll", false, true}, // the new name wins
	} {
		t.Setenv(BackendsVar, tt.knob)
		t.Setenv(oldBackendsVar, tt.old)
		if WantBackend("epoll") != tt.epoll || WantBackend("io_uring") != tt.ioUring {
			t.Errorf("%s=%q %s=%q: epoll %v io_uring %v, want %v %v", BackendsVar, tt.knob, oldBackendsVar, tt.old,
				WantBackend("epoll"), WantBackend("io_uring"), tt.epoll, tt.ioUring)
		}
	}
}

// TestBinaryNeedsMain: without Main, which removes them, no binary is
// built.
func TestBinaryNeedsMain(t *testing.T) {
	if _, err := binary(Build{}); err == nil || !strings.Contains(err.Error(), "testbin.Main") {
		t.Errorf("binary without Main: %v", err)
	}
}
