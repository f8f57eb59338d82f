// Package allowlist parses and checks the peer lists of forwarded_allow_ips
// and proxy_allow_ips: IP addresses, CIDRs, or "*" for every peer.
//
// It is the one parser of those lists: config validates with it, the engine
// decides per request or per connection with it. It must not know what a
// list is used for.
package allowlist

import (
	"fmt"
	"net/netip"
	"strings"
)

// List is a parsed allow list.
type List struct {
	// Any is true when the list holds "*": every peer is allowed.
	Any bool
	// Prefixes are the allowed networks; an address entry is a full-length
	// prefix, an IPv4-mapped IPv6 entry is stored as its IPv4 form.
	Prefixes []netip.Prefix
}

// Parse parses entries, trimming spaces and skipping empty ones. The error
// names the entry's position and says what was expected.
func Parse(entries []string) (List, error) {
	var l List
	for i, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case e == "*":
			l.Any = true
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return List{}, fmt.Errorf("item %d: %q is not a CIDR such as 10.0.0.0/8", i, e)
			}
			l.Prefixes = append(l.Prefixes, p.Masked())
		default:
			ip, err := netip.ParseAddr(e)
			if err != nil {
				return List{}, fmt.Errorf("item %d: %q is not an IP address, a CIDR or *", i, e)
			}
			ip = ip.Unmap()
			l.Prefixes = append(l.Prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	return l, nil
}

// Contains reports whether the peer ip is allowed. An IPv4-mapped IPv6
// peer matches IPv4 entries; a zone is ignored. It does not allocate.
func (l List) Contains(ip netip.Addr) bool {
	if l.Any {
		return true
	}
	ip = ip.WithZone("")
	un := ip.Unmap()
	for _, p := range l.Prefixes {
		if p.Contains(ip) || p.Contains(un) {
			return true
		}
	}
	return false
}
