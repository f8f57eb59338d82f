package httpparse

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// firstFlag is the index of the lowest byte a word mask flags, 8 for none.
func firstFlag(m uint64) int { return bits.TrailingZeros64(m) >> 3 }

// TestNameMask checks the word test for letters, digits and '-' against
// the byte-by-byte definition: every byte value at every position, and
// random words for the lowest flag.
func TestNameMask(t *testing.T) {
	isName := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
	}
	for c := 0; c < 256; c++ {
		for k := 0; k < 8; k++ {
			w := []byte("aZ9-bY8-")
			w[k] = byte(c)
			m := nameMask(binary.LittleEndian.Uint64(w))
			want := 8
			if !isName(byte(c)) {
				want = k
			}
			if got := firstFlag(m); got != want {
				t.Fatalf("byte %#x at %d: first flag %d, want %d", c, k, got, want)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 200000; n++ {
		x := r.Uint64()
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], x)
		want := 8
		for i, c := range b {
			if !isName(c) {
				want = i
				break
			}
		}
		if got := firstFlag(nameMask(x)); got != want {
			t.Fatalf("%q: first flag %d, want %d", b, got, want)
		}
	}
}

// TestCtlMask checks that the lowest byte ctlMask flags is the first byte
// below 0x20 or equal to 0x7F, which is what the value scans rely on.
func TestCtlMask(t *testing.T) {
	isCtl := func(c byte) bool { return c < 0x20 || c == 0x7f }
	check := func(b [8]byte) {
		t.Helper()
		want := 8
		for i, c := range b {
			if isCtl(c) {
				want = i
				break
			}
		}
		if got := firstFlag(ctlMask(binary.LittleEndian.Uint64(b[:]))); got != want {
			t.Fatalf("%q: first flag %d, want %d", b, got, want)
		}
	}
	for c := 0; c < 256; c++ {
		for k := 0; k < 8; k++ {
			b := [8]byte{'v', 'a', 'l', 'u', 'e', ' ', 0x80, 0xff}
			b[k] = byte(c)
			check(b)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{0, 1, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xff, '\t', '\r', '\n', 'a'}
	for n := 0; n < 200000; n++ {
		var b [8]byte
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		check(b)
	}
}

// fastPathHeads are heads at the edges of what the fast paths accept:
// each must parse exactly as the scanners parse it.
func fastPathHeads() []string {
	long := strings.Repeat("x", 40)
	return []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHOST:a\r\n\r\n",
		"GET / HTTP/1.1\r\nhost: \t a.example \t \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a:8080\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a:\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a,b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a%41\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
		"GET / HTTP/1.1\r\nHosts: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\n\r\n",
		"GET / HTTP/1.1\r\nX-A_b.c~: v\tw \r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX:\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX: \t \r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX: \x80\xff obs-text\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\x7fb\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\x00b\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX\x80: a\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\n X: a\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n X: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX-" + long + ": " + long + "\r\nHost: a\r\n\r\n",
		"GET /p?q=1&r=%20 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /p%2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /p%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /[x] HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://h/p?q HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.9\r\nHost: a\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
		"GET / http/1.1\r\nHost: a\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GE\x7fT / HTTP/1.1\r\nHost: a\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: b\r\n\r\n",
	}
}

// TestFastPathsAgree parses heads at the fast paths' edges, and random
// heads made of the bytes those paths decide on, with and without the fast
// paths and under tight limits, and wants the same outcome every time.
func TestFastPathsAgree(t *testing.T) {
	limits := []Limits{
		{},
		{MaxRequestLine: 14, MaxFieldSize: 7, MaxHeaderCount: 2},
		{MaxRequestLine: 16, MaxFieldSize: 8, MaxHeaderCount: 3},
		{MaxRequestLine: 64, MaxFieldSize: 48, MaxHeaderCount: 6},
	}
	check := func(head string) {
		t.Helper()
		for _, lim := range limits {
			for _, noHost := range []bool{false, true} {
				o := streamOpts{limits: lim, noHostCheck: noHost}
				fast := runStream([]byte(head), o)
				o.slowOnly = true
				slow := runStream([]byte(head), o)
				if !reflect.DeepEqual(fast, slow) {
					t.Fatalf("%q (limits %+v): fast paths disagree\nfast:\n%v\nslow:\n%v", head, lim, fast, slow)
				}
			}
		}
	}
	for _, h := range fastPathHeads() {
		check(h)
	}
	if testing.Short() {
		t.Skip("-short: the heads above checked, not the 30,000 random ones beyond them; make test checks those")
	}
	r := rand.New(rand.NewPCG(5, 6))
	pieces := []string{"GET ", "POST ", "/", "/p", "?", "%41", "%4", " ", "HTTP/1.1", "HTTP/1.0", "\r\n", "\r", "\n",
		"Host", "host", ":", ": ", "a", "a.b", ":80", "[::1]", "X-Y", "\t", " ", "\x00", "\x7f", "\x80", ",", "_", "\r\n\r\n"}
	for n := 0; n < 30000; n++ {
		var b strings.Builder
		b.WriteString("GET / HTTP/1.1\r\n")
		if r.IntN(4) == 0 {
			b.Reset()
		}
		for k := r.IntN(24); k > 0; k-- {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		b.WriteString("\r\n\r\n")
		check(b.String())
	}
}
