package socket

import "net/netip"

// zeroAddrPort is the local address of a unix-domain connection (and of a
// socket whose address cannot be read). Never written.
var zeroAddrPort netip.AddrPort

// ListenerLocal returns the local address shared by every connection
// accepted from listening socket fd: its bound address; nil when that is a
// wildcard (0.0.0.0, ::), where each connection's depends on the address
// the client reached (LocalAddrs.Of). A unix-domain listener's
// connections have the zero AddrPort. Backends point their connections at
// it: no getsockname per connection and no copy of the address in each.
func ListenerLocal(fd int, unix bool) *netip.AddrPort {
	if unix {
		return &zeroAddrPort
	}
	ap, err := Sockname(fd)
	if err != nil || !ap.IsValid() || ap.Addr().IsUnspecified() {
		return nil
	}
	return &ap
}

// maxLocalAddrs bounds LocalAddrs' table; a host with more addresses than
// that reached through one wildcard listener gets a copy per connection
// beyond it.
const maxLocalAddrs = 16

// LocalAddrs shares the local addresses of connections accepted from
// wildcard listeners: a host has few, so a connection keeps a pointer to
// one of a handful of copies rather than its own. The zero value is ready;
// one per loop (not safe for concurrent use).
type LocalAddrs struct {
	seen []*netip.AddrPort
}

// Of returns socket fd's local address (getsockname), as a pointer shared
// with every other connection that has the same one.
func (s *LocalAddrs) Of(fd int) *netip.AddrPort {
	ap, err := Sockname(fd)
	if err != nil {
		return &zeroAddrPort
	}
	for _, p := range s.seen {
		if *p == ap {
			return p
		}
	}
	p := &ap
	if len(s.seen) < maxLocalAddrs {
		s.seen = append(s.seen, p)
	}
	return p
}
