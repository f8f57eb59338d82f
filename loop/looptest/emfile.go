package looptest

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/socket"
)

// childEnv marks the re-executed test binary that plays the EMFILE server.
const childEnv = "ASYNCDTEST_LOOPTEST_EMFILE_CHILD"

const (
	emfileRoom  = 24 // descriptors left to the child server for connections
	emfileConns = 60 // connections the parent opens: more than the room
)

func socketListen() (*os.File, error) { return socket.Listen("tcp4", "127.0.0.1:0", false, 1024) }

func fileAddr(t testing.TB, f *os.File) string {
	ap, err := socket.FileAddrPort(f)
	if err != nil {
		t.Fatal(err)
	}
	return ap.String()
}

// testEMFILE runs the server in a child process with a low RLIMIT_NOFILE
// (so that the test process itself keeps its descriptors), opens more
// connections than it can accept, and checks that the server keeps serving
// the ones it has, does not spin on the queued ones, logs at a bounded rate,
// and accepts again once descriptors are free.
func testEMFILE(t *testing.T, b loop.Backend) {
	if os.Getenv(childEnv) != "" {
		emfileChild(t, b)
		return
	}
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(parts, "/"), "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var output lockedBuffer
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrc <- a
				continue
			}
			fmt.Fprintln(&output, sc.Text())
		}
		exited <- cmd.Wait()
	}()
	finished := false
	defer func() {
		if !finished {
			cmd.Process.Kill()
			<-exited
			t.Logf("child stdout:\n%s\nchild stderr:\n%s", output.String(), stderr.String())
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		finished = true
		t.Fatalf("child exited early: %v\n%s\n%s", err, output.String(), stderr.String())
	case <-time.After(long):
		t.Fatal("child did not report its address")
	}

	conns := make([]net.Conn, emfileConns)
	for i := range conns {
		// The kernel completes the handshake from the listen backlog
		// whether or not the server can accept.
		conns[i] = dialTo(t, "tcp4", addr, 0)
	}
	var served atomic.Int64
	isServed := make([]atomic.Bool, emfileConns)
	for i, c := range conns {
		go func() {
			msg := fmt.Sprintf("ping %d\n", i)
			c.SetDeadline(time.Now().Add(3 * long))
			if _, err := io.WriteString(c, msg); err != nil {
				return
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err == nil && string(got) == msg {
				isServed[i].Store(true)
				served.Add(1)
			}
		}()
	}
	waitFor(t, "first connections served", func() bool { return served.Load() > 0 })
	// Let the server run into the limit and settle.
	stable := served.Load()
	for {
		time.Sleep(200 * time.Millisecond)
		if n := served.Load(); n == stable {
			break
		} else {
			stable = n
		}
	}
	full := served.Load()
	t.Logf("%d of %d connections served at the descriptor limit", full, emfileConns)
	if full >= emfileConns {
		t.Fatalf("all %d connections served: the child never hit EMFILE", emfileConns)
	}

	// No busy loop: with connections queued and accept failing, the child
	// must be nearly idle.
	cpu0 := childCPU(t, cmd.Process.Pid)
	time.Sleep(time.Second)
	cpu := childCPU(t, cmd.Process.Pid) - cpu0
	t.Logf("child CPU time over 1s at the limit: %v", cpu)
	if cpu > 500*time.Millisecond {
		t.Errorf("child used %v of CPU in 1s while at the descriptor limit: accept is spinning", cpu)
	}

	// Existing connections are still served.
	var open []int
	for i := range conns {
		if isServed[i].Load() {
			open = append(open, i)
			write(t, conns[i], "again\n")
			expect(t, conns[i], "again\n")
		}
	}
	// Free descriptors: queued connections get accepted again.
	const freed = 10
	for _, i := range open[:freed] {
		conns[i].Close()
	}
	waitFor(t, "queued connections accepted after descriptors were freed", func() bool {
		return served.Load() >= full+freed/2
	})
	t.Logf("%d served after closing %d", served.Load(), freed)
	for _, c := range conns {
		c.Close()
	}

	stdin.Close()
	select {
	case err := <-exited:
		finished = true
		if err != nil {
			t.Fatalf("child server failed: %v\n%s\n%s", err, output.String(), stderr.String())
		}
	case <-time.After(long):
		t.Fatal("child did not exit after its stdin closed")
	}
	// The server logs accept errors at a bounded rate: at most about one
	// line per second, not one per attempt.
	logLines := strings.Count(stderr.String(), "\n")
	elapsed := time.Since(began)
	t.Logf("child logged %d lines in %v", logLines, elapsed.Round(time.Millisecond))
	if limit := int(elapsed.Seconds()) + 3; logLines > limit {
		t.Errorf("child logged %d lines in %v (want <= %d): accept errors are not rate-limited\n%s",
			logLines, elapsed, limit, stderr.String())
	}
}

// emfileChild is the server side, in the re-executed test binary.
func emfileChild(t *testing.T, b loop.Backend) {
	h := newHandler(t)
	h.loops, h.inCb = 2, make([]atomic.Int32, 2)
	f, err := socketListen()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	addr := fileAddr(t, f)
	srv, err := b.New(loop.Config{Loops: 2, Handler: h,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Listeners: []loop.Listener{{File: f, Addr: addr, Loop: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	// Lowered before Serve, as for a server started with the limit: an
	// io_uring multishot accept armed first would keep the old one.
	if err := LowerFDLimit(emfileRoom); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	fmt.Printf("ADDR %s\n", addr)
	io.Copy(io.Discard, os.Stdin) // until the parent is done
	srv.Stop()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// childCPU returns the user+system CPU time of process pid.
func childCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		t.Fatalf("unexpected /proc/%d/stat: %q", pid, s)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	stm, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("unexpected /proc/%d/stat: %q", pid, s)
	}
	const clkTck = 100 // USER_HZ, fixed on Linux
	return time.Duration(ut+stm) * time.Second / clkTck
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// LowerFDLimit sets this process's RLIMIT_NOFILE so that exactly room
// descriptor numbers stay free above those in use: the limit caps numbers,
// not counts, and inherited descriptors may sit high.
func LowerFDLimit(room int) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	used := map[int]bool{}
	for _, e := range ents {
		if n, err := strconv.Atoi(filepath.Base(e.Name())); err == nil {
			used[n] = true
		}
	}
	limit, free := 0, 0
	for ; free < room; limit++ {
		if !used[limit] {
			free++
		}
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = uint64(limit)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit NOFILE %d: %w", limit, err)
	}
	return nil
}
