// Package bind parses asyncd's bind addresses and opens, inherits or adopts
// the listening sockets behind them: TCP ("127.0.0.1:8000", "[::1]:8000",
// ":8000", "tcp://host:port"), unix sockets ("unix:/run/asyncd.sock") and
// systemd-activated or inherited descriptors ("fd://3").
//
// It owns the socket set a process listens on and how that set travels to a
// child process (file descriptors plus one environment variable). It does not
// accept connections (the loop backends do) and does not decide when a set
// is handed over (the supervisor does).
package bind

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/asyncd/asyncd/internal/safefile"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/socket"
	"golang.org/x/sys/unix"
)

// Kind is the kind of a bind address.
type Kind uint8

const (
	TCP  Kind = iota // host:port
	Unix             // unix:/path
	FD               // fd://N, an inherited descriptor
)

// Addr is one parsed bind address.
type Addr struct {
	Spec    string // as configured
	Kind    Kind
	Network string // "tcp", "tcp4", "tcp6", "unix"
	Address string // host:port, path, or the fd number
	FD      int
}

// Parse parses one bind address.
func Parse(spec string) (Addr, error) {
	s := strings.TrimSpace(spec)
	a := Addr{Spec: spec}
	switch {
	case s == "":
		return a, fmt.Errorf("bind %q: empty address", spec)
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(strings.TrimPrefix(s, "unix:"), "//")
		if p == "" {
			return a, fmt.Errorf("bind %q: unix socket needs a path (unix:/run/asyncd.sock)", spec)
		}
		a.Kind, a.Network, a.Address = Unix, "unix", p
		return a, nil
	case strings.HasPrefix(s, "fd://"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "fd://"))
		if err != nil || n < 0 {
			return a, fmt.Errorf("bind %q: fd://N needs a descriptor number", spec)
		}
		a.Kind, a.Network, a.Address, a.FD = FD, "fd", strconv.Itoa(n), n
		return a, nil
	case strings.HasPrefix(s, "tcp://"):
		s = strings.TrimPrefix(s, "tcp://")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// Gunicorn accepts a bare host (port 8000).
		if !strings.Contains(s, ":") || strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
			host, port = strings.Trim(s, "[]"), "8000"
		} else {
			return a, fmt.Errorf("bind %q: want HOST:PORT, unix:PATH or fd://N: %v", spec, err)
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return a, fmt.Errorf("bind %q: bad port %q", spec, port)
	}
	a.Kind, a.Network, a.Address = TCP, "tcp", net.JoinHostPort(host, port)
	if ip := net.ParseIP(host); ip != nil {
		if ip.To4() != nil {
			a.Network = "tcp4"
		} else {
			a.Network = "tcp6"
		}
	}
	return a, nil
}

// Socket is one open listening socket of a Set.
type Socket struct {
	Addr Addr
	File *os.File
	// Loop pins the socket to one event loop (a SO_REUSEPORT member), or -1.
	Loop int
}

// Set is every listening socket of a process.
type Set struct {
	Sockets []Socket
}

// Options control how Open creates sockets.
type Options struct {
	// Loops is the number of event loops; with ReusePort each TCP address
	// gets one SO_REUSEPORT socket per loop.
	Loops     int
	ReusePort bool
	Backlog   int
	// SocketMode is applied to unix socket files (0 keeps the umask's).
	SocketMode os.FileMode
	// SocketOwner gives unix socket files to a user and group; nil
	// leaves them to the process that binds.
	SocketOwner *Owner
	// Untrusted is the unprivileged serving user when the process binding
	// is root: unix socket paths are resolved and changed without
	// following what it could have planted (package safefile).
	Untrusted *safefile.User
	// Systemd are descriptors from socket activation, in LISTEN_FDS order,
	// used by fd:// binds and matched to TCP/unix binds by address.
	Systemd []*os.File
}

// Open creates (or adopts) the sockets for specs.
func Open(specs []string, o Options) (*Set, error) {
	set := &Set{}
	fail := func(err error) (*Set, error) {
		set.Close()
		return nil, err
	}
	for _, spec := range specs {
		a, err := Parse(spec)
		if err != nil {
			return fail(err)
		}
		if f := matchSystemd(a, o.Systemd); f != nil {
			set.Sockets = append(set.Sockets, Socket{Addr: a, File: f, Loop: -1})
			continue
		}
		switch a.Kind {
		case FD:
			f := os.NewFile(uintptr(a.FD), spec)
			if err := checkListening(a.FD); err != nil {
				return fail(fmt.Errorf("bind %s: %w", spec, err))
			}
			set.Sockets = append(set.Sockets, Socket{Addr: a, File: f, Loop: -1})
		case Unix:
			f, err := listenUnix(a, o)
			if err != nil {
				return fail(fmt.Errorf("bind %s: %w", spec, err))
			}
			set.Sockets = append(set.Sockets, Socket{Addr: a, File: f, Loop: -1})
		case TCP:
			n := 1
			if o.ReusePort && o.Loops > 1 {
				n = o.Loops
			}
			addr := a.Address
			if err := checkFree(a); err != nil {
				return fail(fmt.Errorf("bind %s: %w", spec, err))
			}
			for i := 0; i < n; i++ {
				f, err := socket.Listen(a.Network, addr, o.ReusePort, o.Backlog)
				if err != nil {
					return fail(fmt.Errorf("bind %s: %w", spec, inUse(a, err)))
				}
				loopIdx := -1
				if n > 1 {
					loopIdx = i
				}
				if i == 0 && strings.HasSuffix(addr, ":0") {
					// an ephemeral port: the other members must share it
					ap, err := socket.FileAddrPort(f)
					if err == nil {
						addr = ap.String()
					}
				}
				set.Sockets = append(set.Sockets, Socket{Addr: a, File: f, Loop: loopIdx})
			}
		}
	}
	return set, nil
}

// checkFree refuses an address another socket listens on, before asyncd
// creates its SO_REUSEPORT group there: the kernel would otherwise let
// asyncd join a group of another process of the same user and split the
// connections between the two, silently (a second asyncd, or any server
// with SO_REUSEPORT). A socket without SO_REUSEPORT conflicts with every
// listener on the address, so binding one (and closing it at once) is the
// test; Gunicorn and net/http fail the same way. Port 0 picks a free port
// and needs no check.
func checkFree(a Addr) error {
	if _, port, err := net.SplitHostPort(a.Address); err != nil || port == "0" {
		return nil
	}
	f, err := socket.Listen(a.Network, a.Address, false, 1)
	if err != nil {
		return inUse(a, err)
	}
	return f.Close()
}

// inUse words EADDRINUSE as net/http and Gunicorn users know it; other
// errors pass unchanged.
func inUse(a Addr, err error) error {
	if errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("%w: another process listens on %s", unix.EADDRINUSE, a.Address)
	}
	return err
}

func checkListening(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return fmt.Errorf("descriptor %d is not a socket: %w", fd, err)
	}
	if v == 0 {
		return fmt.Errorf("descriptor %d is not a listening socket", fd)
	}
	return nil
}

// matchSystemd finds a socket-activated descriptor listening on a's address.
func matchSystemd(a Addr, fds []*os.File) *os.File {
	for _, f := range fds {
		if f == nil {
			continue
		}
		switch a.Kind {
		case FD:
			if int(f.Fd()) == a.FD {
				return f
			}
		case TCP:
			ap, err := socket.FileAddrPort(f)
			if err == nil && ap.IsValid() {
				want, err := net.ResolveTCPAddr(a.Network, a.Address)
				if err == nil && int(ap.Port()) == want.Port && (want.IP == nil || want.IP.IsUnspecified() || net.IP(ap.Addr().AsSlice()).Equal(want.IP)) {
					return f
				}
			}
		case Unix:
			sa, err := unix.Getsockname(int(f.Fd()))
			if err == nil {
				if u, ok := sa.(*unix.SockaddrUnix); ok && u.Name == a.Address {
					return f
				}
			}
		}
	}
	return nil
}

// Listeners turns the set into what a loop backend with loops event loops
// takes. A socket pinned to a loop that does not exist (the set was made for
// more loops) goes to loop index modulo loops, so no socket is left without
// an acceptor. When an address has fewer pinned sockets than there are
// loops (the set was made for fewer loops: SIGTTIN, or a reload that raised
// workers), its sockets are shared by every loop instead, so no loop is
// left without connections; adding SO_REUSEPORT members is not an option,
// since the kernel would route connections to a new member before any
// process accepts from it.
func (s *Set) Listeners(loops int) []loop.Listener {
	pinned := map[string]int{}
	for _, k := range s.Sockets {
		if k.Loop >= 0 {
			pinned[k.Addr.Spec]++
		}
	}
	out := make([]loop.Listener, 0, len(s.Sockets))
	for _, k := range s.Sockets {
		l := k.Loop
		switch {
		case l >= 0 && pinned[k.Addr.Spec] < loops:
			l = -1
		case l >= 0 && loops > 0:
			l %= loops
		}
		out = append(out, loop.Listener{File: k.File, Addr: k.Addr.Spec, Unix: k.Addr.Kind == Unix, Loop: l})
	}
	return out
}

// Addrs lists the addresses actually bound (resolving port 0), for logs.
func (s *Set) Addrs() []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range s.Sockets {
		a := k.Addr.Spec
		if k.Addr.Kind == TCP {
			if ap, err := socket.FileAddrPort(k.File); err == nil {
				a = ap.String()
			}
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// Close closes every socket of the set (this process's copies). Unix socket
// files are left in place: the next generation may still use them.
func (s *Set) Close() {
	for _, k := range s.Sockets {
		if k.File != nil {
			k.File.Close()
		}
	}
}

// EnvVar describes an inherited set to a child process.
const EnvVar = "ASYNCD_INTERNAL_LISTENERS"

// EnvMetrics describes the inherited metrics_bind socket, a set of its own
// (ExportAt, Inherited): the supervisor owns it as it owns bind's, so that
// no generation ever closes a socket that may hold queued connections.
const EnvMetrics = "ASYNCD_INTERNAL_METRICS_LISTENER"

// Export prepares the set for a child: the files to pass as ExtraFiles
// (descriptors 3, 4, ...) and the environment entry that describes them.
func (s *Set) Export() (files []*os.File, env string) {
	return s.ExportAt(EnvVar, 3)
}

// ExportAt is Export for a set passed after others: its files become
// descriptors first, first+1, ..., described by the environment variable
// name. A nil set exports nothing and an empty entry.
func (s *Set) ExportAt(name string, first int) (files []*os.File, env string) {
	if s == nil {
		return nil, name + "="
	}
	var parts []string
	for i, k := range s.Sockets {
		files = append(files, k.File)
		// The spec is escaped: a unix socket path may hold "," or "|".
		parts = append(parts, fmt.Sprintf("%d|%d|%s", first+i, k.Loop, url.QueryEscape(k.Addr.Spec)))
	}
	return files, name + "=" + strings.Join(parts, ",")
}

// Inherited rebuilds the set a parent passed with Export, or returns nil
// when the environment names none.
func Inherited(env string) (*Set, error) {
	if env == "" {
		return nil, nil
	}
	set := &Set{}
	for _, part := range strings.Split(env, ",") {
		f := strings.SplitN(part, "|", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s: malformed entry %q", EnvVar, part)
		}
		fd, err1 := strconv.Atoi(f[0])
		lp, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: malformed entry %q", EnvVar, part)
		}
		spec, err := url.QueryUnescape(f[2])
		if err != nil {
			return nil, fmt.Errorf("%s: malformed entry %q", EnvVar, part)
		}
		a, err := Parse(spec)
		if err != nil {
			return nil, err
		}
		if err := checkListening(fd); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvVar, err)
		}
		unix.CloseOnExec(fd)
		set.Sockets = append(set.Sockets, Socket{Addr: a, File: os.NewFile(uintptr(fd), spec), Loop: lp})
	}
	return set, nil
}
