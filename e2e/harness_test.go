package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

	"github.com/asyncd/asyncd/internal/testbin"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// Supervisors left behind by a binary upgrade are reparented to this
	// process, so that the tests can wait for them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		return 1
	}
	return testbin.Main(m)
}

// asyncdBinary is the binary the tests run, built once per test process
// (testbin), in -short mode skipping the test instead. It has the race
// detector whether or not the tests do, so that the check of its output
// for race reports (testbin.Start) is never vacuous; cmd/asyncd's suite,
// which moved here, always built it so.
func asyncdBinary(t testing.TB) string {
	t.Helper()
	return testbin.Binary(t, testbin.Build{Race: true})
}

// server is one asyncd supervisor under test.
type server struct {
	t      *testing.T
	dir    string
	config string // path of the config file
	p      *testbin.Process
	cmd    *exec.Cmd // p.Cmd
}

// options for startServer.
type options struct {
	env   []string   // extra environment
	files []*os.File // extra descriptors (3, 4, ...)
	// argv replaces the command (the binary is "$E2E_ASYNCD" to a shell); default
	// [binary, -c, config].
	argv    []string
	logFile string
	noWait  bool // do not wait for the first serving process
	// cred runs asyncd as another user (a service manager's User=).
	cred *syscall.Credential
}

// startServer writes config (a YAML document; "@DIR@" is replaced by the
// test's directory) and starts asyncd on it.
func startServer(t *testing.T, config string, o options) *server {
	t.Helper()
	bin := asyncdBinary(t)
	dir := t.TempDir()
	// for TestUserDrop: an unprivileged serving process reaches the files
	os.Chmod(filepath.Dir(dir), 0o755) //nolint:errcheck
	os.Chmod(dir, 0o755)               //nolint:errcheck
	s := &server{t: t, dir: dir, config: filepath.Join(dir, "asyncd.yaml")}
	s.writeConfig(config)
	argv := o.argv
	if argv == nil {
		argv = []string{bin, "-c", s.config}
	}
	// stdout and stderr in one file, as a terminal or journald shows them.
	s.p = testbin.Start(t, argv[0], testbin.Options{Args: argv[1:], Dir: dir, Env: append([]string{"E2E_ASYNCD=" + bin}, o.env...),
		ExtraFiles: o.files, CombinedOutput: true, LogFile: strings.ReplaceAll(o.logFile, "@DIR@", dir),
		SysProcAttr: credential(o.cred)})
	s.cmd = s.p.Cmd
	if !o.noWait {
		s.waitLog(`msg="serving process ready"`, 1)
	}
	return s
}

// credential runs asyncd as the user of cred, if set.
func credential(cred *syscall.Credential) *syscall.SysProcAttr {
	if cred == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: cred}
}

func (s *server) writeConfig(config string) {
	s.t.Helper()
	config = strings.ReplaceAll(config, "@DIR@", s.dir)
	if err := os.WriteFile(s.config, []byte(config), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// output is what asyncd wrote to stdout and stderr so far.
func (s *server) output() string { return s.p.Stdout.String() }

// log is everything asyncd logged so far.
func (s *server) log() string { return s.p.Log() }

// waitLog waits until pattern (a regexp) matched n times in the log and
// returns the submatches of the n-th match.
func (s *server) waitLog(pattern string, n int) []string {
	s.t.Helper()
	return s.p.WaitLog(regexp.MustCompile(pattern), n, 20*time.Second)
}

// count is how many times pattern matches the log now.
func (s *server) count(pattern string) int {
	return len(regexp.MustCompile(pattern).FindAllStringIndex(s.log(), -1))
}

var readyRE = regexp.MustCompile(`msg="asyncd ready" backend=(\S+) loops=(\d+) worker_class=\S+ bind=(\S+) pid=(\d+)`)

// readyLine is one serving process's ready message.
type readyLine struct {
	backend string
	loops   int
	binds   []string
	pid     int
}

// ready returns the n-th (1-based) serving process's ready message,
// waiting for it.
func (s *server) ready(n int) readyLine {
	s.t.Helper()
	m := s.waitLog(readyRE.String(), n)
	loops, _ := strconv.Atoi(m[2])
	pid, _ := strconv.Atoi(m[4])
	return readyLine{backend: m[1], loops: loops, binds: strings.Split(m[3], ","), pid: pid}
}

// addr is the first TCP address the first serving process listens on.
func (s *server) addr() string {
	s.t.Helper()
	for _, b := range s.ready(1).binds {
		if !strings.HasPrefix(b, "unix:") && !strings.HasPrefix(b, "fd://") {
			return b
		}
	}
	s.t.Fatal("no TCP bind address in the ready message")
	return ""
}

// generations is how many serving processes reported ready so far.
func (s *server) generations() int { return s.count(`msg="serving process ready"`) }

func (s *server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.p.Signal(sig)
}

// wait waits for the supervisor to exit and returns its exit code.
func (s *server) wait(timeout time.Duration) int {
	s.t.Helper()
	return s.p.Wait(timeout)
}

// response is one HTTP response as a raw client sees it.
type response struct {
	status int
	header map[string]string // lower-case names
	body   string
}

// readResponse reads one response with a Content-Length body.
func readResponse(br *bufio.Reader) (*response, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("status line: %w", err)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return nil, fmt.Errorf("bad status line %q", line)
	}
	r := &response{header: map[string]string{}}
	if r.status, err = strconv.Atoi(f[1]); err != nil {
		return nil, fmt.Errorf("bad status line %q", line)
	}
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("header: %w", err)
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		k, v, _ := strings.Cut(h, ":")
		r.header[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	n, _ := strconv.Atoi(r.header["content-length"])
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	r.body = string(body)
	return r, nil
}

// conn is a raw keep-alive client connection.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, network, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{c: c, br: bufio.NewReader(c)}
}

// do sends one GET and reads the response.
func (c *conn) do(path string, timeout time.Duration) (*response, error) {
	c.c.SetDeadline(time.Now().Add(timeout)) //nolint:errcheck
	if _, err := fmt.Fprintf(c.c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	return readResponse(c.br)
}

// inFlight is a request sent on a goroutine of its own (a slow request
// the test signals asyncd during).
type inFlight struct {
	done chan struct{}
	r    *response
	err  error
}

// send sends one GET on c without waiting for the response.
func (c *conn) send(path string, timeout time.Duration) *inFlight {
	f := &inFlight{done: make(chan struct{})}
	go func() {
		f.r, f.err = c.do(path, timeout)
		close(f.done)
	}()
	return f
}

// wait returns the response.
func (f *inFlight) wait() (*response, error) {
	<-f.done
	return f.r, f.err
}

// answered reports whether the response (or an error) came already.
func (f *inFlight) answered() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// closed reports whether the server closed the connection (EOF or reset)
// within timeout.
func (c *conn) closed(timeout time.Duration) bool {
	c.c.SetReadDeadline(time.Now().Add(timeout)) //nolint:errcheck
	_, err := c.br.ReadByte()
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// get does one request on a new connection.
func get(t *testing.T, network, addr, path string) *response {
	t.Helper()
	c := dial(t, network, addr)
	defer c.c.Close()
	r, err := c.do(path, 10*time.Second)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, addr, err)
	}
	return r
}

// load is a keep-alive load generator that behaves like wrk: each
// connection sends a request, reads the whole response, and sends the next
// one; "Connection: close" makes it reconnect. Any failure of a request
// (dial, write, read, a malformed response) is an error: it does not
// retry, so a request the server drops shows up.
type load struct {
	ok, non2xx, errs, closes atomic.Int64
	mu                       sync.Mutex
	kinds                    map[string]int
	wg                       sync.WaitGroup
	cancel                   context.CancelFunc
}

func startLoad(network, addr, path string, conns int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{kinds: map[string]int{}, cancel: cancel}
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: load\r\n\r\n")
	for i := 0; i < conns; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var c net.Conn
			var br *bufio.Reader
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for ctx.Err() == nil {
				if c == nil {
					var err error
					if c, err = net.DialTimeout(network, addr, 5*time.Second); err != nil {
						l.fail("dial", err)
						c = nil
						time.Sleep(10 * time.Millisecond)
						continue
					}
					br = bufio.NewReader(c)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
				if _, err := c.Write(req); err != nil {
					l.fail("write", err)
					c.Close()
					c = nil
					continue
				}
				r, err := readResponse(br)
				if err != nil {
					l.fail("read", err)
					c.Close()
					c = nil
					continue
				}
				if r.status < 200 || r.status > 299 {
					l.non2xx.Add(1)
					l.fail("status", fmt.Errorf("%d", r.status))
				} else {
					l.ok.Add(1)
				}
				if strings.EqualFold(r.header["connection"], "close") {
					l.closes.Add(1)
					c.Close()
					c = nil
				}
			}
		}()
	}
	return l
}

func (l *load) fail(what string, err error) {
	if what != "status" {
		l.errs.Add(1)
	}
	l.mu.Lock()
	l.kinds[what+": "+err.Error()]++
	l.mu.Unlock()
}

// stop ends the load and returns a summary.
func (l *load) stop() string {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("ok=%d non2xx=%d errors=%d closes=%d kinds=%v", l.ok.Load(), l.non2xx.Load(), l.errs.Load(),
		l.closes.Load(), l.kinds)
}

// notifySocket is a unixgram socket playing systemd's NOTIFY_SOCKET; each
// datagram is recorded with its sender's pid (SO_PASSCRED).
type notifySocket struct {
	path string
	c    *net.UnixConn
	msgs chan notifyMsg
}

type notifyMsg struct {
	pid   int
	state string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) { //nolint:errcheck
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
			t.Fatal(err)
		}
	})
	n := &notifySocket{path: path, c: c, msgs: make(chan notifyMsg, 256)}
	go func() {
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
		for {
			nb, noob, _, _, err := c.ReadMsgUnix(buf, oob)
			if err != nil {
				close(n.msgs)
				return
			}
			m := notifyMsg{state: string(buf[:nb])}
			if cms, err := unix.ParseSocketControlMessage(oob[:noob]); err == nil {
				for _, cm := range cms {
					if cred, err := unix.ParseUnixCredentials(&cm); err == nil {
						m.pid = int(cred.Pid)
					}
				}
			}
			n.msgs <- m
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

// next waits for the next datagram containing want (earlier ones are
// returned in skipped).
func (n *notifySocket) next(t *testing.T, want string) (m notifyMsg, skipped []notifyMsg) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notify socket closed waiting for %q", want)
			}
			if strings.Contains(m.state, want) {
				return m, skipped
			}
			skipped = append(skipped, m)
		case <-timeout:
			t.Fatalf("no %q notification in 20s (got %v)", want, skipped)
		}
	}
}

// nextFrom waits for a datagram containing want sent by pid.
func (n *notifySocket) nextFrom(t *testing.T, want string, pid int) notifyMsg {
	t.Helper()
	var seen []notifyMsg
	for {
		m, skipped := n.next(t, want)
		seen = append(append(seen, skipped...), m)
		if m.pid == pid {
			return m
		}
		if len(seen) > 100 {
			t.Fatalf("no %q from pid %d among %v", want, pid, seen)
		}
	}
}

// waitPid waits for a process that is not our exec.Cmd (a supervisor
// reparented to us after an upgrade, or a serving process) to exit.
func waitPid(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if wpid == pid || errors.Is(err, unix.ECHILD) && !alive(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d still running after %s", pid, timeout)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// the state follows the parenthesized command name
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// procStatus returns the named field of /proc/pid/status.
func procStatus(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

// backends are the loop backends the key paths run on (forEachBackend).
// testbin.BackendsVar (ASYNCDTEST_BACKENDS=epoll) narrows them on a
// machine without io_uring, as for the engine's suites; by default a
// backend that cannot run fails its tests rather than being skipped.
func backends() []string {
	var out []string
	for _, b := range []string{"epoll", "io_uring"} {
		if testbin.WantBackend(b) {
			out = append(out, b)
		}
	}
	return out
}

// forEachBackend runs test as a parallel subtest per backend, named after
// it, with baseConfig set to that backend (see onBackend).
func forEachBackend(t *testing.T, test func(t *testing.T, backend string)) {
	for _, b := range backends() {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

// onBackend is config (baseConfig or one derived from it) on backend.
func onBackend(config, backend string) string {
	if !strings.Contains(config, "\nbackend: epoll\n") {
		panic("onBackend: the config does not set backend: epoll")
	}
	return strings.Replace(config, "\nbackend: epoll\n", "\nbackend: "+backend+"\n", 1)
}

// checkBackend fails the test unless the n-th serving process serves on
// backend: a backend that fell back or was mislabelled would otherwise
// pass for the other.
func (s *server) checkBackend(n int, backend string) {
	s.t.Helper()
	if r := s.ready(n); r.backend != backend {
		s.t.Fatalf("serving process %d runs on %s, want %s", n, r.backend, backend)
	}
}

// baseConfig is a config on an ephemeral port with a fast route, a slow
// route that runs off the event loop and a route that blocks its loop.
const baseConfig = `
bind: ["127.0.0.1:0"]
workers: 2
backend: epoll
graceful_timeout: 5s
loglevel: info
routes:
  - path: /slow
    handler: static
    blocking: true
    options: {body: "slow", delay: 1s}
  - path: /
    handler: static
    options: {body: "v1"}
`
