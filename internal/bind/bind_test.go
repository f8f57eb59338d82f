package bind

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// listenReusePort listens on addr with SO_REUSEPORT, as another server
// (or a second asyncd) would.
func listenReusePort(t *testing.T, addr string) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(t.Context(), "tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestOpenRefusesAddressInUse: an address another process listens on is
// refused with "address already in use: another process listens on ADDR",
// whether that listener shares with SO_REUSEPORT (which asyncd's
// reuse_port sockets could otherwise join) or not, and whether asyncd uses
// reuse_port or not.
func TestOpenRefusesAddressInUse(t *testing.T) {
	plain, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	shared := listenReusePort(t, "127.0.0.1:0")
	for _, tc := range []struct {
		name  string
		other net.Listener
		o     Options
	}{
		{"reuseport listener, reuse_port", shared, Options{Loops: 2, ReusePort: true}},
		{"reuseport listener, one loop", shared, Options{Loops: 1, ReusePort: true}},
		{"reuseport listener, no reuse_port", shared, Options{Loops: 2}},
		{"plain listener, reuse_port", plain, Options{Loops: 2, ReusePort: true}},
		{"plain listener, no reuse_port", plain, Options{Loops: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.other.Addr().String()
			set, err := Open([]string{addr}, tc.o)
			if err == nil {
				set.Close()
				t.Fatalf("Open(%s) joined another process's listener", addr)
			}
			want := fmt.Sprintf("bind %s: address already in use: another process listens on %s", addr, addr)
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if !errors.Is(err, unix.EADDRINUSE) {
				t.Errorf("error %v does not wrap EADDRINUSE", err)
			}
		})
	}
}

// TestOpenWildcardOverlap: a listener on 0.0.0.0:P holds 127.0.0.1:P too,
// as for Gunicorn and net/http.
func TestOpenWildcardOverlap(t *testing.T) {
	l := listenReusePort(t, "0.0.0.0:0")
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	set, err := Open([]string{"127.0.0.1:" + port}, Options{Loops: 2, ReusePort: true})
	if err == nil {
		set.Close()
		t.Fatal("Open joined a wildcard listener on the same port")
	}
	if !strings.Contains(err.Error(), "another process listens on 127.0.0.1:"+port) {
		t.Errorf("error %q", err)
	}
}

// TestOpenReusePortGroup: a free address gets one SO_REUSEPORT socket per
// loop (the probe leaves nothing behind), and port 0 picks one port for all.
func TestOpenReusePortGroup(t *testing.T) {
	for _, spec := range []string{"127.0.0.1:0", freePort(t)} {
		set, err := Open([]string{spec}, Options{Loops: 3, ReusePort: true})
		if err != nil {
			t.Fatalf("Open(%s): %v", spec, err)
		}
		addrs := set.Addrs()
		if len(set.Sockets) != 3 || len(addrs) != 1 {
			t.Errorf("Open(%s): %d sockets on %v, want 3 on one address", spec, len(set.Sockets), addrs)
		}
		c, err := net.Dial("tcp4", addrs[0])
		if err != nil {
			t.Errorf("dial %s: %v", addrs[0], err)
		} else {
			c.Close()
		}
		set.Close()
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestOpenOtherUserReusePort: a SO_REUSEPORT listener of another user
// cannot be joined by the kernel anyway; the message is the same.
func TestOpenOtherUserReusePort(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a socket as another user")
	}
	// The kernel records a socket's owner (its creator's fsuid) and lets
	// only the same owner join its reuseport group: create it as nobody.
	// Setfsuid is a raw per-thread call; the thread is locked meanwhile.
	runtime.LockOSThread()
	unix.Setfsuid(65534)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	unix.Setfsuid(0)
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	set, err := Open([]string{addr}, Options{Loops: 2, ReusePort: true})
	if err == nil {
		set.Close()
		t.Fatal("Open joined another user's listener")
	}
	if !strings.Contains(err.Error(), "address already in use: another process listens on "+addr) {
		t.Errorf("error %q", err)
	}
}
