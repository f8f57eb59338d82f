package allowlist

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAllowList(t *testing.T) {
	a, err := Parse([]string{"127.0.0.1", "::1", "10.0.0.0/8", " 192.168.1.7/24 "})
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.200.3.4": true, "11.0.0.1": false, "192.168.1.200": true,
		"::ffff:10.1.1.1": true, "::ffff:127.0.0.2": false, "fe80::1%eth0": false, "2001:db8::1": false,
	} {
		if got := a.Contains(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", ip, got, want)
		}
	}
	any, _ := Parse([]string{"*"})
	if !any.Contains(netip.MustParseAddr("8.8.8.8")) {
		t.Error("* does not allow everyone")
	}
	none, _ := Parse(nil)
	if none.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Error("an empty list allows someone")
	}
	if _, err := Parse([]string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), "item 0") {
		t.Errorf("bad CIDR: %v", err)
	}
	if _, err := Parse([]string{"", "localhost"}); err == nil || !strings.Contains(err.Error(), "item 1") {
		t.Errorf("bad address: %v", err)
	}
	m, _ := Parse([]string{"::ffff:10.0.0.1"})
	if !m.Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("a mapped entry does not match its IPv4 peer")
	}
}

// BenchmarkAllowListContains: the check runs per request (forwarded
// headers) or per connection (PROXY protocol) and must not allocate.
func BenchmarkAllowListContains(b *testing.B) {
	a, _ := Parse([]string{"127.0.0.1", "::1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"})
	ips := []netip.Addr{netip.MustParseAddr("192.168.3.4"), netip.MustParseAddr("::ffff:8.8.8.8"), netip.MustParseAddr("2001:db8::1")}
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		if a.Contains(ips[i%len(ips)]) {
			n++
		}
	}
	if n == 0 {
		b.Fatal("nothing matched")
	}
}

func TestAllowListContainsDoesNotAllocate(t *testing.T) {
	a, _ := Parse([]string{"127.0.0.1", "10.0.0.0/8"})
	ip := netip.MustParseAddr("::ffff:10.1.2.3")
	if n := testing.AllocsPerRun(100, func() { a.Contains(ip) }); n != 0 {
		t.Fatalf("Contains allocates %v times", n)
	}
}
