package residency

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

func TestReadOnlyMappings(t *testing.T) {
	maps := []byte(`00400000-00c00000 r-xp 00000000 08:01 1234 /usr/bin/asyncd
Rss:                1024 kB
Anonymous:             0 kB
00c00000-01400000 r--p 00800000 08:01 1234 /usr/bin/asyncd
Anonymous:             0 kB
01400000-01500000 rw-p 01000000 08:01 1234 /usr/bin/asyncd
Anonymous:            28 kB
01500000-01600000 rw-p 00000000 00:00 0
Anonymous:           800 kB
01600000-01700000 r--p 00000000 08:01 99 /usr/lib/libc.so.6
Anonymous:             0 kB
01700000-01800000 r-xp 00000000 08:01 1235 /usr/bin/asyncd (deleted)
Anonymous:             0 kB
01800000-01804000 r--p 00100000 08:01 99 /usr/lib/libc.so.6
Anonymous:            16 kB
7ffd0000-7ffd1000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
02000000-01000000 r-xp 00000000 08:01 1234 /usr/bin/asyncd
Anonymous:             0 kB
`)
	// Code and read-only data of every file, the executable's, a
	// library's, one replaced on disk (a binary upgrade: its name carries
	// " (deleted)"); never a writable data segment (rw-p), a read-only one
	// with private copies (libc's RELRO, Anonymous 16 kB), anonymous
	// memory, [vdso], or a backwards range.
	want := []mapping{
		{0x400000, 0xc00000, "/usr/bin/asyncd"},
		{0xc00000, 0x1400000, "/usr/bin/asyncd"},
		{0x1600000, 0x1700000, "/usr/lib/libc.so.6"},
		{0x1700000, 0x1800000, "/usr/bin/asyncd (deleted)"},
	}
	got := readOnlyMappings(maps)
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%v, want %v", got, want)
		}
	}
}

// resident sums the Rss of this process's mappings of path in
// /proc/self/smaps, in KiB.
func resident(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 5 && bytes.Contains(f[0], []byte("-")) && !bytes.HasSuffix(f[0], []byte(":")) {
			in = len(f) >= 6 && string(bytes.Join(f[5:], []byte(" "))) == path
			continue
		}
		if in && len(f) >= 2 && string(f[0]) == "Rss:" {
			n, _ := strconv.ParseInt(string(f[1]), 10, 64)
			sum += n
		}
	}
	return sum
}

// TestDropReadOnly maps a file read-only and private, as the loader maps
// an executable's code, touches every page, and drops them: its resident
// pages go from all to none, and reading it again gives the same bytes.
func TestDropReadOnly(t *testing.T) {
	const size = 1 << 20
	path := filepath.Join(t.TempDir(), "exe")
	want := bytes.Repeat([]byte("asyncd!\n"), size/8)
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m) //nolint:errcheck
	sum := 0
	for i := 0; i < size; i += 4096 {
		sum += int(m[i])
	}
	if sum != size/4096*int('a') {
		t.Fatalf("read %d, want every page's first byte 'a'", sum)
	}
	if got := resident(t, path); got != size/1024 {
		t.Fatalf("after touching every page: %d KiB resident, want %d", got, size/1024)
	}
	maps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	advised, err := dropReadOnly(maps, func(p string) bool { return p == path })
	if err != nil || advised != size {
		t.Fatalf("dropReadOnly: %d bytes, %v; want %d", advised, err, size)
	}
	if got := resident(t, path); got != 0 {
		t.Errorf("after dropReadOnly: %d KiB resident, want 0", got)
	}
	if !bytes.Equal(m, want) {
		t.Error("the mapping reads differently after dropReadOnly")
	}
}

// TestShed: on the test binary itself, Shed finds the read-only mappings
// and the process goes on running.
func TestShed(t *testing.T) {
	advised, err := Shed()
	if err != nil || advised <= 0 {
		t.Fatalf("Shed: %d bytes advised, %v; want the executable's read-only mappings", advised, err)
	}
	if got := strconv.Itoa(12345); got != "12345" {
		t.Fatal(got)
	}
}
