package e2e

import (
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// How a reload used to drop a request (each once an end-to-end flake under
// CPU load), reproduced at low traffic: one connection, timed against the
// old generation's drain. The old generation answers with Connection:
// close, which shows the connection was its own and not one the new
// generation took from the shared socket.

// TestDrainFreshConnection: a connection the old generation accepted just
// before its drain, whose first request comes after the drain began (here
// 1.5 s after, past the 1 s a keep-alive connection gets), is answered. It
// used to be closed as idle: its client reads EOF on a new connection,
// which no client retries.
func TestDrainFreshConnection(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, onBackend(baseConfig, backend), options{})
		s.checkBackend(1, backend)
		old := s.ready(1).pid
		c := dial(t, "tcp", s.addr())
		waitAccepted(t, old, c.c)
		s.signal(syscall.SIGHUP)
		s.waitLog(`msg="replaced by a new generation: draining"`, 1)
		time.Sleep(1500 * time.Millisecond)
		r, err := c.do("/", 10*time.Second)
		answeredByOld(t, "the first request on a connection accepted before the drain, sent 1.5s into it", r, err)
	})
}

// answeredByOld fails the test unless r is the old generation's answer
// to GET /: 200 v1 with Connection: close, as it answers while draining.
func answeredByOld(t *testing.T, what string, r *response, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if r.status != 200 || r.body != "v1" || !strings.EqualFold(r.header["connection"], "close") {
		t.Errorf("%s: %d %q connection=%q, want 200 v1 with Connection: close from the old generation",
			what, r.status, r.body, r.header["connection"])
	}
}

// holdConfig: one loop, and a route that holds it (an inline handler,
// sync class) for 2 s.
const holdConfig = `
bind: ["127.0.0.1:0"]
workers: 1
backend: epoll
graceful_timeout: 10s
loglevel: info
routes:
  - path: /hold
    handler: static
    options: {body: "held", delay: 2s}
  - path: /
    handler: static
    options: {body: "v1"}
`

// TestDrainRequestArrivedWhileLoopHeld: a keep-alive connection idle in
// the draining generation whose next request arrives while the loop is
// held (an inline handler here; a loop starved of CPU is the same) is not
// closed when the loop runs again. The epoll loop, whose wait ended on its
// deadline meanwhile, ticks before it reads what came, and the drain's
// idle close threw the request away, although it had reached the server.
// (The io_uring loop enters the ring, which takes the request, before it
// ticks, unless the stall came between the two.)
func TestDrainRequestArrivedWhileLoopHeld(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, onBackend(holdConfig, backend), options{})
		s.checkBackend(1, backend)
		addr := s.addr()
		idle, holder := dial(t, "tcp", addr), dial(t, "tcp", addr)
		for _, c := range []*conn{idle, holder} {
			if r, err := c.do("/", 5*time.Second); err != nil || r.status != 200 {
				t.Fatalf("request before the reload: %+v %v", r, err)
			}
		}
		s.signal(syscall.SIGHUP)
		s.waitLog(`msg="replaced by a new generation: draining"`, 1)
		// The drain's scans see both idle; within DrainIdle (1 s) the loop
		// is held for 2 s, and the idle connection's request comes then.
		time.Sleep(300 * time.Millisecond)
		held := holder.send("/hold", 10*time.Second)
		time.Sleep(300 * time.Millisecond)
		r, err := idle.do("/", 10*time.Second)
		answeredByOld(t, "the request sent while the draining loop was held", r, err)
		if r, err := held.wait(); err != nil || r.status != 200 || r.body != "held" {
			t.Errorf("the request that held the loop: %+v %v", r, err)
		}
	})
}

// waitAccepted waits until process pid has accepted c (its end of the
// connection is one of pid's descriptors), so that the test knows which
// generation holds it.
func waitAccepted(t *testing.T, pid int, c net.Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ino := serverInode(t, c); ino != "" && holdsSocket(pid, ino) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not accept the connection from %s within 10s", pid, c.LocalAddr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serverInode is the inode of the server's end of c, a TCP/IPv4
// connection on this host, from /proc/net/tcp; "" while it waits in the
// accept queue (no process holds it yet: inode 0).
func serverInode(t *testing.T, c net.Conn) string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	local, remote := procAddr(t, c.RemoteAddr()), procAddr(t, c.LocalAddr())
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local && f[2] == remote && f[9] != "0" {
			return f[9]
		}
	}
	return ""
}

// procAddr writes a TCP/IPv4 address as /proc/net/tcp does: the address
// in host byte order (little endian here) and the port, in hex.
func procAddr(t *testing.T, a net.Addr) string {
	t.Helper()
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.To4() == nil {
		t.Fatalf("%v is not a TCP/IPv4 address", a)
	}
	ip := ta.IP.To4()
	rev := []byte{ip[3], ip[2], ip[1], ip[0]}
	return strings.ToUpper(hex.EncodeToString(rev)) + ":" + fmt.Sprintf("%04X", ta.Port)
}

// holdsSocket reports whether one of pid's descriptors is socket inode ino.
func holdsSocket(pid int, ino string) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == "socket:["+ino+"]" {
			return true
		}
	}
	return false
}
