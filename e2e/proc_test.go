package e2e

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
	"syscall"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/testbin"
)

// The helpers below run the real binary for the observability tests
// (they came from cmd/asyncd): its stdout (the access log with accesslog:
// "-") and stderr (the error log) are apart, and every wait has a generous
// deadline rather than a timing assumption.

// waitFor is how long any one condition may take to become true: long,
// because a -race binary on a loaded 2-core machine can be slow, and no
// test depends on it being short.
const waitFor = 30 * time.Second

// proc is one asyncd supervisor under test.
type proc struct {
	t   *testing.T
	dir string
	p   *testbin.Process
}

// run writes config ("@DIR@" is the test's directory) and starts asyncd
// with env as its environment (testbin.Env), then waits for the serving
// process.
func run(t *testing.T, config string, env ...string) *proc {
	t.Helper()
	bin := asyncdBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "asyncd.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(config, "@DIR@", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, dir: dir, p: testbin.Start(t, bin, testbin.Options{Args: []string{"-c", cfg}, Dir: dir, Env: env})}
	p.waitLog("asyncd ready", 1)
	return p
}

// log is what asyncd wrote to stderr so far.
func (p *proc) log() string { return p.p.Log() }

// out is what asyncd wrote to stdout so far.
func (p *proc) out() string { return p.p.Stdout.String() }

// waitLog waits until the error log holds substr n times.
func (p *proc) waitLog(substr string, n int) {
	p.t.Helper()
	p.p.WaitLog(regexp.MustCompile(regexp.QuoteMeta(substr)), n, waitFor)
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
	p.p.Signal(sig)
}

// exited waits for the supervisor to exit and fails unless it exited 0.
func (p *proc) exited() {
	p.t.Helper()
	if code := p.p.Wait(waitFor); code != 0 {
		p.t.Fatalf("asyncd exited with %v", p.p.Err())
	}
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !poll(waitFor, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// poll polls cond every 20ms until it holds (true) or timeout passes
// (false).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// httpResponse is one HTTP exchange's answer, as net/http reads it.
type httpResponse struct {
	status int
	header http.Header
	body   string
}

// exchange sends raw on a new connection to addr (from the local IP
// local, if set) and reads one response.
func exchange(t *testing.T, local, addr, raw string) httpResponse {
	t.Helper()
	c := dialSend(t, local, addr, raw)
	defer c.Close()
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("response to %q: %v", raw, err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	return httpResponse{status: r.StatusCode, header: r.Header, body: string(body)}
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

// httpGet is a GET without keep-alive, so that no connection outlives it.
func httpGet(t *testing.T, url string, header ...string) httpResponse {
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
	return httpResponse{status: r.StatusCode, header: r.Header, body: string(body)}
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
	r := httpGet(t, url, header...)
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
// --check-config) with the clean environment and returns what it printed.
func execOutput(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = testbin.Env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}
