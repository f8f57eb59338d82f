package reliability_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// TestDescriptorExhaustion runs the HTTP server in a child process whose
// RLIMIT_NOFILE leaves 20 descriptors for connections, and opens 60
// keep-alive connections to it. Accept then fails with EMFILE while the
// kernel queues the rest. The server must keep serving the connections it
// has, must not spin on the failing accept (its CPU time over a second at
// the limit stays far below a busy core's), must accept the queued
// connections once descriptors are free, and must not crash.
func TestDescriptorExhaustion(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a child server at its descriptor limit, seconds on each backend; make test runs it")
	}
	const (
		room  = 20
		conns = 60
	)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), serverChildEnv+"="+b.Name(), childRoomEnv+"="+strconv.Itoa(room))
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
		addrc := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
					addrc <- a
				}
			}
			exited <- cmd.Wait()
		}()
		finished := false
		defer func() {
			if !finished {
				cmd.Process.Kill() //nolint:errcheck
				<-exited
				t.Logf("child stderr:\n%s", stderr.String())
			}
		}()
		var addr string
		select {
		case addr = <-addrc:
		case err := <-exited:
			finished = true
			t.Fatalf("child server exited early: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Second):
			t.Fatal("child server did not report its address")
		}

		cs := make([]net.Conn, conns)
		for i := range cs {
			// The kernel completes the handshake from the listen backlog
			// whether or not the server can accept.
			if cs[i], err = dial(addr); err != nil {
				t.Fatal(err)
			}
			defer cs[i].Close()
		}
		var served atomic.Int64
		isServed := make([]atomic.Bool, conns)
		readers := make([]*bufio.Reader, conns)
		for i, c := range cs {
			readers[i] = bufio.NewReader(c)
			go func() {
				c.SetDeadline(time.Now().Add(60 * time.Second)) //nolint:errcheck
				if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
					return
				}
				if ok, _ := readOK(readers[i]); ok {
					isServed[i].Store(true)
					served.Add(1)
				}
			}()
		}
		if !enginetest.Eventually(10*time.Second, func() bool { return served.Load() > 0 }) {
			t.Fatal("no connection served")
		}
		// Let the server run into the limit and settle.
		stable := served.Load()
		for {
			time.Sleep(300 * time.Millisecond)
			if n := served.Load(); n == stable {
				break
			} else {
				stable = n
			}
		}
		full := served.Load()
		if full >= conns {
			t.Fatalf("all %d connections served: the server never hit EMFILE", conns)
		}

		// No busy loop while accept keeps failing.
		cpu0, err := procCPU(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		cpu1, err := procCPU(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		cpu := cpu1 - cpu0
		// A loop spinning on accept burns a whole core (1s per second);
		// the bound is half of that, far above an idle server's few ms.
		if cpu > 500*time.Millisecond {
			t.Errorf("server used %v of CPU in 1s at the descriptor limit: accept is spinning", cpu)
		}

		// The connections it has are still served.
		var open []int
		for i, c := range cs {
			if !isServed[i].Load() {
				continue
			}
			open = append(open, i)
			c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
				t.Fatalf("connection %d at the limit: %v", i, err)
			}
			if ok, err := readOK(readers[i]); !ok {
				t.Fatalf("connection %d not served at the limit: %v", i, err)
			}
		}
		// Free descriptors: the queued connections get accepted and served.
		const freed = 10
		for _, i := range open[:min(freed, len(open))] {
			cs[i].Close()
		}
		if !enginetest.Eventually(20*time.Second, func() bool { return served.Load() >= full+freed/2 }) {
			t.Fatalf("queued connections not served after %d descriptors were freed: %d served, %d before", freed, served.Load(), full)
		}
		t.Logf("%d of %d connections served at the limit, %d after freeing %d; server CPU over 1s at the limit: %v",
			full, conns, served.Load(), freed, cpu)
		for _, c := range cs {
			c.Close()
		}
		stdin.Close()
		select {
		case err := <-exited:
			finished = true
			if err != nil {
				t.Fatalf("child server failed: %v\n%s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("child server did not stop after its stdin closed")
		}
		log := stderr.String()
		if strings.Contains(log, "panic") || strings.Contains(log, "fatal error") {
			t.Fatalf("child server crashed:\n%s", log)
		}
		// Accept errors are logged at a bounded rate, not once per attempt.
		lines := strings.Count(log, "\n")
		if limit := int(time.Since(began).Seconds())*2 + 5; lines > limit {
			t.Errorf("server logged %d lines in %v: accept errors are not rate-limited\n%s", lines, time.Since(began), log)
		}
	})
}

// readOK reads one response and reports whether it was a 200 "ok".
func readOK(br *bufio.Reader) (bool, error) {
	rs, err := readOne(br)
	if err != nil {
		return false, err
	}
	return rs.Status == 200 && string(rs.Body) == "ok", nil
}
