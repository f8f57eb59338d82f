package socket

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// DefaultBacklog is the listen(2) backlog used when Listen is given 0; the
// kernel caps it at net.core.somaxconn.
const DefaultBacklog = 4096

// Listen creates a listening SOCK_STREAM socket and returns it as a file.
//
// network is "tcp4", "tcp6", "tcp" or "unix". For TCP, addr is host:port
// (host may be empty, a literal IP or a name that resolves); "tcp" with an
// empty or unspecified host listens dual-stack on [::] when IPv6 is available
// and on 0.0.0.0 otherwise. TCP sockets get SO_REUSEADDR (restart without
// waiting for TIME_WAIT) and, if reusePort, SO_REUSEPORT so that several
// sockets, one per loop, can share the port. For "unix", addr is the path; an
// existing file at the path is an error (the caller decides whether a stale
// socket may be removed). backlog <= 0 means DefaultBacklog.
//
// The socket is left in blocking mode so that os.NewFile does not register it
// with the Go runtime's poller (the event-loop backends set their own copies
// non-blocking); the caller owns the returned file.
func Listen(network, addr string, reusePort bool, backlog int) (*os.File, error) {
	if backlog <= 0 {
		backlog = DefaultBacklog
	}
	var (
		fd  int
		err error
	)
	switch network {
	case "tcp", "tcp4", "tcp6":
		fd, err = listenTCP(network, addr, reusePort, backlog)
	case "unix":
		fd, err = listenUnix(addr, backlog)
	default:
		return nil, fmt.Errorf("listen %s %s: unsupported network", network, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", network, addr, err)
	}
	return os.NewFile(uintptr(fd), network+":"+addr), nil
}

func listenTCP(network, addr string, reusePort bool, backlog int) (int, error) {
	ta, err := net.ResolveTCPAddr(network, addr)
	if err != nil {
		return -1, err
	}
	ip, _ := netip.AddrFromSlice(ta.IP)
	ip = ip.Unmap()
	var family int
	switch {
	case network == "tcp4" || ip.Is4():
		family = unix.AF_INET
	case network == "tcp6" || ip.Is6():
		family = unix.AF_INET6
	default: // "tcp" on the wildcard: dual-stack if the host has IPv6
		fd, err := listenTCPFamily(unix.AF_INET6, netip.IPv6Unspecified(), ta.Port, false, reusePort, backlog)
		if err == nil || !errors.Is(err, unix.EAFNOSUPPORT) {
			return fd, err
		}
		return listenTCPFamily(unix.AF_INET, netip.IPv4Unspecified(), ta.Port, false, reusePort, backlog)
	}
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
		if family == unix.AF_INET6 {
			ip = netip.IPv6Unspecified()
		}
	}
	return listenTCPFamily(family, ip, ta.Port, network == "tcp6", reusePort, backlog)
}

func listenTCPFamily(family int, ip netip.Addr, port int, v6only, reusePort bool, backlog int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("SO_REUSEADDR", err)
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("SO_REUSEPORT", err)
		}
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
	} else {
		only := 0
		if v6only {
			only = 1
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, only); err != nil {
			return fail("IPV6_V6ONLY", err)
		}
		sa = &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail("listen", err)
	}
	return fd, nil
}

func listenUnix(path string, backlog int) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen: %w", err)
	}
	return fd, nil
}

// FileAddrPort returns the bound address of a socket file (the zero AddrPort
// for a unix-domain socket). Tests use it to learn the port of ":0".
func FileAddrPort(f *os.File) (netip.AddrPort, error) {
	var (
		ap   netip.AddrPort
		serr error
	)
	if err := control(f, func(fd int) { ap, serr = Sockname(fd) }); err != nil {
		return ap, fmt.Errorf("getsockname %s: %w", f.Name(), err)
	}
	if serr != nil {
		return ap, fmt.Errorf("getsockname %s: %w", f.Name(), serr)
	}
	return ap, nil
}

// DupListener checks that f is a listening SOCK_STREAM socket and returns a
// close-on-exec duplicate of its descriptor, set non-blocking. The backend
// owns (and at shutdown closes) only the duplicate; the caller's file stays
// open. O_NONBLOCK belongs to the open file description, which the duplicate
// shares, so f (and any copy the supervisor holds) becomes non-blocking too:
// whoever else accepts on it must expect EAGAIN.
func DupListener(f *os.File) (int, error) {
	if f == nil {
		return -1, errors.New("adopt listener: nil file")
	}
	dfd := -1
	var cerr error
	err := control(f, func(fd int) {
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			cerr = fmt.Errorf("SO_TYPE: %w", err)
			return
		}
		if typ != unix.SOCK_STREAM {
			cerr = fmt.Errorf("not a stream socket (type %d)", typ)
			return
		}
		acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		if err != nil {
			cerr = fmt.Errorf("SO_ACCEPTCONN: %w", err)
			return
		}
		if acc == 0 {
			cerr = errors.New("socket is not listening")
			return
		}
		dfd, cerr = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if cerr != nil {
			cerr = fmt.Errorf("dup: %w", cerr)
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return -1, fmt.Errorf("adopt listener %s: %w", f.Name(), err)
	}
	if err := unix.SetNonblock(dfd, true); err != nil {
		unix.Close(dfd)
		return -1, fmt.Errorf("adopt listener %s: set non-blocking: %w", f.Name(), err)
	}
	return dfd, nil
}

// control runs fn with f's descriptor without switching f to blocking mode
// (which f.Fd() would do).
func control(f *os.File, fn func(fd int)) error {
	if f == nil {
		return errors.New("nil file")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}
