package socket

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestClassifyAcceptError(t *testing.T) {
	tests := []struct {
		err  error
		want AcceptAction
	}{
		{unix.EAGAIN, AcceptDrained},
		{unix.EINTR, AcceptRetry},
		{unix.ECONNABORTED, AcceptRetry},
		{unix.EPROTO, AcceptRetry},
		{unix.ENETUNREACH, AcceptRetry},
		{unix.EMFILE, AcceptBackoff},
		{unix.ENFILE, AcceptBackoff},
		{unix.ENOBUFS, AcceptBackoff},
		{unix.ENOMEM, AcceptBackoff},
		{unix.EBADF, AcceptBackoff},
		{fmt.Errorf("accept: %w", unix.EAGAIN), AcceptDrained},
		{fmt.Errorf("accept: %w", unix.EMFILE), AcceptBackoff},
		{errors.New("something else"), AcceptBackoff},
	}
	for _, tc := range tests {
		if got := ClassifyAcceptError(tc.err); got != tc.want {
			t.Errorf("ClassifyAcceptError(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { ClassifyAcceptError(unix.EAGAIN) }); a != 0 {
		t.Errorf("ClassifyAcceptError(EAGAIN) allocates %v", a)
	}
}

func TestBufferPool(t *testing.T) {
	tests := []struct {
		n, wantCap int
	}{
		{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {4000, 4096},
		{MaxPooled, MaxPooled}, {MaxPooled + 1, MaxPooled + 1},
	}
	for _, tc := range tests {
		b := GetBuffer(tc.n)
		if len(*b) != 0 || cap(*b) != tc.wantCap {
			t.Errorf("GetBuffer(%d): len %d cap %d, want 0, %d", tc.n, len(*b), cap(*b), tc.wantCap)
		}
		PutBuffer(b)
	}
	PutBuffer(nil)
	odd := make([]byte, 0, 1000) // not a class size: dropped, not pooled
	PutBuffer(&odd)

	var b *[]byte
	var want []byte
	for i := 0; i < 3000; i++ { // grows through several classes
		p := []byte(fmt.Sprintf("chunk %d;", i))
		b = AppendBuffer(b, p)
		want = append(want, p...)
	}
	if string(*b) != string(want) {
		t.Fatal("AppendBuffer lost or reordered data")
	}
	*b = (*b)[:10]
	s := ShrinkBuffer(b)
	if cap(*s) != 512 || string(*s) != string(want[:10]) {
		t.Errorf("ShrinkBuffer: cap %d, data %q", cap(*s), *s)
	}
	PutBuffer(s)

	warm := GetBuffer(100)
	PutBuffer(warm)
	if a := testing.AllocsPerRun(100, func() { PutBuffer(GetBuffer(100)) }); a != 0 {
		t.Errorf("Get/Put allocates %v", a)
	}
}

func TestAddrPortFrom(t *testing.T) {
	put4 := func(ip [4]byte, port uint16) *unix.RawSockaddrAny {
		var sa unix.RawSockaddrAny
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		p.Family = unix.AF_INET
		p.Addr = ip
		pb := (*[2]byte)(unsafe.Pointer(&p.Port))
		pb[0], pb[1] = byte(port>>8), byte(port)
		return &sa
	}
	put6 := func(ip string, port uint16, scope uint32) *unix.RawSockaddrAny {
		var sa unix.RawSockaddrAny
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa))
		p.Family = unix.AF_INET6
		p.Addr = netip.MustParseAddr(ip).As16()
		p.Scope_id = scope
		pb := (*[2]byte)(unsafe.Pointer(&p.Port))
		pb[0], pb[1] = byte(port>>8), byte(port)
		return &sa
	}
	unixSA := &unix.RawSockaddrAny{}
	unixSA.Addr.Family = unix.AF_UNIX
	tests := []struct {
		name string
		sa   *unix.RawSockaddrAny
		want string
	}{
		{"v4", put4([4]byte{192, 0, 2, 1}, 8080), "192.0.2.1:8080"},
		{"v6", put6("2001:db8::1", 443, 0), "[2001:db8::1]:443"},
		{"v4-mapped", put6("::ffff:192.0.2.7", 1, 0), "192.0.2.7:1"},
		{"link-local zone", put6("fe80::1", 80, 3), "[fe80::1%3]:80"},
		{"unix", unixSA, "invalid AddrPort"},
	}
	for _, tc := range tests {
		if got := AddrPortFrom(tc.sa).String(); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
	sa := put4([4]byte{127, 0, 0, 1}, 1)
	if a := testing.AllocsPerRun(100, func() { AddrPortFrom(sa) }); a != 0 {
		t.Errorf("AddrPortFrom allocates %v", a)
	}
}

func TestListenAcceptDup(t *testing.T) {
	dir, err := os.MkdirTemp("", "socktest")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tests := []struct {
		network, addr string
		reusePort     bool
		dial          string // network for net.Dial
		wildcard      bool   // ListenerLocal is nil: each connection's is read
	}{
		{"tcp4", "127.0.0.1:0", false, "tcp4", false},
		{"tcp4", "127.0.0.1:0", true, "tcp4", false},
		{"tcp4", "0.0.0.0:0", false, "tcp4", true},
		{"tcp", ":0", false, "tcp", true},
		{"tcp6", "[::1]:0", false, "tcp6", false},
		{"unix", filepath.Join(dir, "s.sock"), false, "unix", false},
	}
	for _, tc := range tests {
		t.Run(tc.network+" "+tc.addr, func(t *testing.T) {
			f, err := Listen(tc.network, tc.addr, tc.reusePort, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ap, err := FileAddrPort(f)
			if err != nil {
				t.Fatal(err)
			}
			target := tc.addr
			if tc.network != "unix" {
				if ap.Port() == 0 {
					t.Fatalf("bound port 0: %v", ap)
				}
				host := "127.0.0.1"
				if tc.network == "tcp6" {
					host = "::1"
				}
				target = net.JoinHostPort(host, fmt.Sprint(ap.Port()))
			} else if ap.IsValid() {
				t.Errorf("unix FileAddrPort = %v, want zero", ap)
			}
			lfd, err := DupListener(f)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(lfd)
			var sa unix.RawSockaddrAny
			if _, err := Accept(lfd, &sa); ClassifyAcceptError(err) != AcceptDrained {
				t.Fatalf("accept on an empty non-blocking listener: %v, want EAGAIN", err)
			}
			c, err := net.Dial(tc.dial, target)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var fd int
			deadline := time.Now().Add(5 * time.Second)
			for fd, err = Accept(lfd, &sa); err != nil; fd, err = Accept(lfd, &sa) {
				if time.Now().After(deadline) {
					t.Fatalf("accept: %v", err)
				}
				time.Sleep(time.Millisecond)
			}
			defer unix.Close(fd)
			if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
				t.Error("accepted socket is blocking")
			}
			if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
				t.Error("accepted socket is not close-on-exec")
			}
			if tc.network != "unix" {
				peer := netip.MustParseAddrPort(c.LocalAddr().String())
				if got := AddrPortFrom(&sa); got != peer {
					t.Errorf("peer address %v, want %v", got, peer)
				}
				local, err := Sockname(fd)
				if err != nil || local.Port() != ap.Port() {
					t.Errorf("Sockname = %v, %v; want port %d", local, err, ap.Port())
				}
			}
			// The local address backends give the connection: the
			// listener's, or from a wildcard one the connection's own,
			// shared with the connections that have the same.
			shared := ListenerLocal(lfd, tc.network == "unix")
			if (shared == nil) != tc.wildcard {
				t.Fatalf("ListenerLocal = %v, want nil: %v", shared, tc.wildcard)
			}
			if shared == nil {
				var locals LocalAddrs
				if shared = locals.Of(fd); locals.Of(fd) != shared {
					t.Errorf("LocalAddrs.Of gave two copies of %v", *shared)
				}
			}
			want := netip.AddrPort{}
			if tc.network != "unix" {
				want = netip.MustParseAddrPort(target)
			}
			if *shared != want {
				t.Errorf("connection's local address %v, want %v", *shared, want)
			}
		})
	}
}

func TestListenErrors(t *testing.T) {
	taken, err := Listen("tcp4", "127.0.0.1:0", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ap, _ := FileAddrPort(taken)
	tests := []struct{ network, addr string }{
		{"udp", "127.0.0.1:0"},
		{"tcp4", "not a host:port"},
		{"tcp4", ap.String()}, // in use, no SO_REUSEPORT
		{"unix", "/nonexistent-dir/s.sock"},
	}
	for _, tc := range tests {
		if f, err := Listen(tc.network, tc.addr, false, 0); err == nil {
			f.Close()
			t.Errorf("Listen(%s, %s) succeeded", tc.network, tc.addr)
		}
	}
	// DupListener refuses sockets that are not listening.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "unbound")
	defer f.Close()
	if _, err := DupListener(f); err == nil {
		t.Error("DupListener accepted a socket that is not listening")
	}
}

func TestLogLimiter(t *testing.T) {
	var l LogLimiter
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at          time.Duration
		ok          bool
		wantDropped int64
	}{
		{0, true, 0},
		{100 * time.Millisecond, false, 0},
		{900 * time.Millisecond, false, 0},
		{time.Second, true, 2},
		{1500 * time.Millisecond, false, 0},
		{3 * time.Second, true, 1},
	}
	for _, s := range steps {
		ok, dropped := l.Allow(t0.Add(s.at), time.Second)
		if ok != s.ok || (ok && dropped != s.wantDropped) {
			t.Errorf("at %v: Allow = %v, %d; want %v, %d", s.at, ok, dropped, s.ok, s.wantDropped)
		}
	}
}

func BenchmarkAccept(b *testing.B) {
	f, err := Listen("tcp4", "127.0.0.1:0", false, 4096)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	lfd, err := DupListener(f)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(lfd)
	ap, _ := FileAddrPort(f)
	sa4 := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	var sa unix.RawSockaddrAny
	b.ReportAllocs()
	for b.Loop() {
		cfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err := unix.Connect(cfd, sa4); err != nil {
			b.Fatal(err)
		}
		fd, err := Accept(lfd, &sa)
		if err != nil {
			b.Fatal(err)
		}
		_ = AddrPortFrom(&sa)
		unix.Close(fd)
		unix.Close(cfd)
	}
}
