package socket

import (
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AddrPortFrom converts a raw socket address filled in by the kernel to a
// netip.AddrPort without allocating. IPv4-mapped IPv6 addresses are unmapped
// (a dual-stack listener reports 192.0.2.1, not ::ffff:192.0.2.1). A non-zero
// IPv6 scope becomes a numeric zone, which allocates (link-local peers only).
// Unix-domain and unknown families give the zero AddrPort.
func AddrPortFrom(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), ntohs(p.Port))
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		a := netip.AddrFrom16(p.Addr).Unmap()
		if p.Scope_id != 0 && a.Is6() {
			a = a.WithZone(strconv.FormatUint(uint64(p.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, ntohs(p.Port))
	}
	return netip.AddrPort{}
}

// ntohs reads a port stored in network byte order.
func ntohs(port uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&port))
	return uint16(b[0])<<8 | uint16(b[1])
}

// Accept accepts one connection from the listening socket lfd with
// accept4(SOCK_NONBLOCK|SOCK_CLOEXEC), storing the peer address in sa. Unlike
// unix.Accept4 it allocates nothing: sa is the caller's (per loop) storage and
// an error is a bare unix.Errno. Pass the error to ClassifyAcceptError.
func Accept(lfd int, sa *unix.RawSockaddrAny) (int, error) {
	n := uint32(unix.SizeofSockaddrAny)
	fd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd),
		uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// AcceptNext accepts the next connection from lfd like Accept, passing over
// the errors that concern one connection only (AcceptRetry: an aborted
// connection is gone from the queue). drained reports an empty queue
// (EAGAIN); any other error is one to back off on (AcceptBackoff).
func AcceptNext(lfd int, sa *unix.RawSockaddrAny) (fd int, drained bool, err error) {
	for {
		fd, err := Accept(lfd, sa)
		if err == nil {
			return fd, false, nil
		}
		switch ClassifyAcceptError(err) {
		case AcceptDrained:
			return -1, true, nil
		case AcceptBackoff:
			return -1, false, err
		}
	}
}

// Sockname returns the local address of socket fd without allocating (zero
// for a unix-domain socket).
func Sockname(fd int) (netip.AddrPort, error) {
	var sa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd),
		uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return netip.AddrPort{}, e
	}
	return AddrPortFrom(&sa), nil
}
