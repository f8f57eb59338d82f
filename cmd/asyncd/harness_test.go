package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The helpers below run the real binary for the observability tests: it
// is built once per test run (sharedBinary), its stdout (the access log
// with accesslog: "-") and stderr (the error log) go to files that the
// tests poll, and every wait has a generous deadline rather than a timing
// assumption.

var (
	buildOnce sync.Once
	sharedBin string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// sharedBinary builds the asyncd binary (with -race) once for the tests
// that need many starts.
func sharedBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "asyncd-cmd-test-"); buildErr != nil {
			return
		}
		sharedBin = filepath.Join(buildDir, "asyncd")
		out, err := exec.Command("go", "build", "-race", "-o", sharedBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return sharedBin
}

// waitFor is how long any one condition may take to become true: long,
// because a -race binary on a loaded 2-core machine can be slow, and no
// test depends on it being short.
const waitFor = 30 * time.Second

// proc is one asyncd supervisor under test.
type proc struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	stdout string
	stderr string
	done   chan struct{}
	err    error
}

// run writes config ("@DIR@" is the test's directory) and starts asyncd
// with env added to the environment, then waits for the serving process.
func run(t *testing.T, config string, env ...string) *proc {
	t.Helper()
	bin := sharedBinary(t)
	dir := t.TempDir()
	p := &proc{t: t, dir: dir, stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr"),
		done: make(chan struct{})}
	cfg := filepath.Join(dir, "asyncd.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(config, "@DIR@", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	outF, err := os.Create(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errF.Close()
	p.cmd = exec.Command(bin, "-c", cfg)
	p.cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ASYNCD_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	// Files, not pipes: Wait must not wait for the serving processes that
	// inherited them.
	p.cmd.Stdout, p.cmd.Stderr = outF, errF
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.cleanup)
	p.waitLog("asyncd ready", 1)
	return p
}

func (p *proc) cleanup() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGQUIT) //nolint:errcheck
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill() //nolint:errcheck
			<-p.done
		}
	}
	if strings.Contains(p.log(), "WARNING: DATA RACE") {
		p.t.Errorf("the race detector found a data race in asyncd")
	}
	if p.t.Failed() {
		p.t.Logf("asyncd stderr:\n%s", p.log())
	}
}

// log is what asyncd wrote to stderr so far.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.stderr)
	return string(b)
}

// out is what asyncd wrote to stdout so far.
func (p *proc) out() string {
	b, _ := os.ReadFile(p.stdout)
	return string(b)
}

// waitLog waits until the error log holds substr n times.
func (p *proc) waitLog(substr string, n int) {
	p.t.Helper()
	eventually(p.t, fmt.Sprintf("%d× %q in the error log", n, substr), func() bool {
		select {
		case <-p.done:
			p.t.Fatalf("asyncd exited (%v) before %d× %q", p.err, n, substr)
		default:
		}
		return strings.Count(p.log(), substr) >= n
	})
}

var readyPID = regexp.MustCompile(`asyncd ready.* pid=(\d+)`)

// servingPID is the pid of the n-th serving process that became ready.
func (p *proc) servingPID(n int) int {
	p.t.Helper()
	p.waitLog("asyncd ready", n)
	m := readyPID.FindAllStringSubmatch(p.log(), -1)
	if len(m) < n {
		p.t.Fatalf("no pid in the ready lines:\n%s", p.log())
	}
	pid, _ := strconv.Atoi(m[n-1][1])
	return pid
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// exited waits for the supervisor to exit and fails unless it exited 0.
func (p *proc) exited() {
	p.t.Helper()
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Fatalf("asyncd exited with %v", p.err)
		}
	case <-time.After(waitFor):
		p.t.Fatal("asyncd did not exit")
	}
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// response is one HTTP exchange's answer.
type response struct {
	status int
	header http.Header
	body   string
}

// exchange sends raw on a new connection to addr (from the local IP
// local, if set) and reads one response.
func exchange(t *testing.T, local, addr, raw string) response {
	t.Helper()
	c := dialSend(t, local, addr, raw)
	defer c.Close()
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("response to %q: %v", raw, err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	return response{status: r.StatusCode, header: r.Header, body: string(body)}
}

// dialSend connects to addr (from the local IP local, if set), sends raw
// and sets a read deadline for the answer.
func dialSend(t *testing.T, local, addr, raw string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, raw); err != nil {
		c.Close()
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitFor)) //nolint:errcheck
	return c
}

// rawExchange sends raw on a new connection to addr and reads until the
// server closes it: every byte the server sent (to compare with what it
// reports sending), and the response parsed from them.
func rawExchange(t *testing.T, addr, raw string) (wire []byte, resp *http.Response, body string) {
	t.Helper()
	c := dialSend(t, "", addr, raw)
	defer c.Close()
	wire, err := io.ReadAll(c)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("%q: %v after %q", raw, err, wire)
	}
	if resp, err = http.ReadResponse(bufio.NewReader(bytes.NewReader(wire)), nil); err != nil {
		t.Fatalf("%q: response %q: %v", raw, wire, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%q: body of %q: %v", raw, wire, err)
	}
	return wire, resp, string(b)
}

// get is a GET without keep-alive, so that no connection outlives it.
func get(t *testing.T, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: waitFor, Transport: &http.Transport{DisableKeepAlives: true}}
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	return response{status: r.StatusCode, header: r.Header, body: string(body)}
}

// lines waits until the file at path has at least n lines and returns them.
func lines(t *testing.T, path string, n int) []string {
	t.Helper()
	var got []string
	eventually(t, fmt.Sprintf("%d lines in %s", n, path), func() bool {
		b, _ := os.ReadFile(path)
		got = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		return len(b) > 0 && len(got) >= n
	})
	return got
}

// scrape reads the Prometheus exposition at url into sample -> value.
func scrape(t *testing.T, url string, header ...string) map[string]float64 {
	t.Helper()
	r := get(t, url, header...)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("scrape %s: %d %q\n%s", url, r.status, r.header.Get("Content-Type"), r.body)
	}
	return parseSamples(t, r.body)
}

// parseSamples reads a Prometheus text exposition into sample -> value.
func parseSamples(t *testing.T, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// execOutput runs the binary to completion (an action such as
// --check-config) and returns what it printed.
func execOutput(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}
