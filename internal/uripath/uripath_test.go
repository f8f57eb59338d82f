package uripath

import (
	"errors"
	"path"
	"regexp"
	"strings"
	"testing"
)

func TestAppend(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{in: "/", want: "/"},
		{in: "/a/b", want: "/a/b"},
		{in: "/a/b/", want: "/a/b/"},
		{in: "/.well-known/x", want: "/.well-known/x"},
		{in: "/a/...", want: "/a/..."},
		{in: "/a/.b./c..", want: "/a/.b./c.."},
		{in: "/proxy/%69nternal/secret", want: "/proxy/internal/secret"},
		{in: "/proxy/x/../internal/secret", want: "/proxy/internal/secret"},
		{in: "/proxy//internal/secret", want: "/proxy/internal/secret"},
		{in: "/proxy/./internal/secret", want: "/proxy/internal/secret"},
		{in: "/proxy/%61dmin", want: "/proxy/admin"},
		{in: "/%7Euser/%7euser", want: "/~user/~user"},
		{in: "/a/%2e%2e/b", want: "/b"},
		{in: "/a/%2E%2e/b", want: "/b"},
		{in: "/a/.%2E/b", want: "/b"},
		{in: "/a/%2e/b", want: "/a/b"},
		{in: "/a/b/.", want: "/a/b/"},
		{in: "/a/b/..", want: "/a/"},
		{in: "/a/b/%2e%2e", want: "/a/"},
		{in: "/.", want: "/"},
		{in: "/a/..", want: "/"},
		{in: "/a/../", want: "/"},
		{in: "//", want: "/"},
		{in: "///a///b///", want: "/a/b/"},
		{in: "/a/./././b", want: "/a/b"},
		{in: "/a/b/c/../../d", want: "/a/d"},
		{in: "/a;x=1/b", want: "/a;x=1/b"},
		{in: "/a/b;c", want: "/a/b;c"},
		{in: "/a%3bb", want: "/a%3Bb"},
		{in: "/a%3Fb%23c", want: "/a%3Fb%23c"},
		{in: "/a%20b", want: "/a%20b"},
		{in: "/%c3%a9", want: "/%C3%A9"},
		{in: "/%41%5a%30%2D%5F%7E", want: "/AZ0-_~"},
		{in: "/a/%2E%2E%2E", want: "/a/..."},
		{in: "/\xc3\xa9", want: "/\xc3\xa9"},
		{in: "/..", err: ErrAboveRoot},
		{in: "/../x", err: ErrAboveRoot},
		{in: "/a/../../x", err: ErrAboveRoot},
		{in: "/%2e%2e/x", err: ErrAboveRoot},
		{in: "//../x", err: ErrAboveRoot},
		{in: "/pub/..%2fadmin", err: ErrEncodedSlash},
		{in: "/a%2Fb", err: ErrEncodedSlash},
		{in: "/a%5cb", err: ErrEncodedSlash},
		{in: "/a%5Cb", err: ErrEncodedSlash},
		{in: "/a\\b", err: ErrBackslash},
		{in: "/a%00b", want: "/a%00b"},
		{in: "/a\x00b", err: ErrNUL},
		{in: "/a%zz", err: ErrBadEscape},
		{in: "/a%2", err: ErrBadEscape},
		{in: "/a%", err: ErrBadEscape},
		{in: "/a%g0", err: ErrBadEscape},
		{in: "/..;/x", err: ErrDotParameter},
		{in: "/a/..;x/b", err: ErrDotParameter},
		{in: "/a/.;x/b", err: ErrDotParameter},
		{in: "/a/..%3b/b", err: ErrDotParameter},
		{in: "/a/%2e%2e;/b", err: ErrDotParameter},
		{in: "", err: ErrNotAbsolute},
		{in: "a/b", err: ErrNotAbsolute},
	}
	for _, tt := range tests {
		got, err := Append([]byte("prefix"), []byte(tt.in))
		if !errors.Is(err, tt.err) {
			t.Errorf("Append(%q): error %v, want %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && string(got) != "prefix"+tt.want {
			t.Errorf("Append(%q) = %q, want %q", tt.in, got[len("prefix"):], tt.want)
		}
		if normal := IsNormal([]byte(tt.in)); normal && (err != nil || tt.want != tt.in) {
			t.Errorf("IsNormal(%q) = true, but its normal form is %q (error %v)", tt.in, tt.want, err)
		}
	}
}

func TestIsNormal(t *testing.T) {
	for _, p := range []string{"/", "/plaintext", "/a/b/", "/.well-known/acme", "/a/...", "/a..b/c.", "/a;b/c"} {
		if !IsNormal([]byte(p)) {
			t.Errorf("IsNormal(%q) = false, want true", p)
		}
	}
	for _, p := range []string{"", "a", "//", "/a//b", "/.", "/./a", "/..", "/a/..", "/a/./", "/a%41", "/a\\b", "/a\x00", "/.;x", "/..;x/"} {
		if IsNormal([]byte(p)) {
			t.Errorf("IsNormal(%q) = true, want false", p)
		}
	}
}

// TestAppendIsIdempotent: a normal form is its own normal form, and
// IsNormal agrees.
func TestAppendIsIdempotent(t *testing.T) {
	for _, p := range []string{"/a/./b/../c//d/", "/%7e%2e%41/%3b", "/x/%2E%2E/y"} {
		once, err := Append(nil, []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		twice, err := Append(nil, once)
		if err != nil || string(twice) != string(once) {
			t.Errorf("Append(Append(%q)) = %q, %v; want %q", p, twice, err, once)
		}
	}
}

var escape = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// reference is a slow, obviously correct normalizer built on path.Clean,
// for the fuzz target to compare Append with.
func reference(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return "", false
	}
	// Every '%' must start a valid escape.
	if strings.Count(p, "%") != len(escape.FindAllString(p, -1)) {
		return "", false
	}
	bad := false
	p = escape.ReplaceAllStringFunc(p, func(e string) string {
		v := unhexString(e[1:])
		switch {
		case v >= 'a' && v <= 'z' || v >= 'A' && v <= 'Z' || v >= '0' && v <= '9' || strings.IndexByte("-._~", v) >= 0:
			return string(rune(v))
		case v == '/' || v == '\\':
			bad = true
		}
		return strings.ToUpper(e)
	})
	if bad {
		return "", false
	}
	segs := strings.Split(p[1:], "/")
	depth := 0
	for _, s := range segs {
		switch {
		case s == "..":
			if depth == 0 {
				return "", false
			}
			depth--
		case strings.HasPrefix(s, ".;"), strings.HasPrefix(s, "..;"),
			strings.HasPrefix(s, ".%3B"), strings.HasPrefix(s, "..%3B"):
			return "", false
		case s != "" && s != ".":
			depth++
		}
	}
	out := path.Clean(p)
	last := segs[len(segs)-1]
	if out != "/" && (last == "" || last == "." || last == "..") {
		out += "/"
	}
	return out, true
}

func unhexString(s string) byte {
	var v byte
	for i := 0; i < 2; i++ {
		v = v<<4 | unhex(s[i])
	}
	return v
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2E/x", "//a//", "/a/b/.", "/a%2fb", "/..;/", "/%7e%41", "/a/b/c/../..", "/a%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := Append(nil, []byte(p))
		want, ok := reference(p)
		if ok != (err == nil) {
			t.Fatalf("Append(%q): %q, %v; reference %q, ok %v", p, got, err, want, ok)
		}
		if ok && string(got) != want {
			t.Fatalf("Append(%q) = %q, reference %q", p, got, want)
		}
		if IsNormal([]byte(p)) && (!ok || want != p) {
			t.Fatalf("IsNormal(%q) = true, normal form %q, ok %v", p, want, ok)
		}
		if ok {
			again, err := Append(nil, got)
			if err != nil || string(again) != string(got) || !IsNormal(got) && !strings.Contains(string(got), "%") {
				t.Fatalf("normal form %q of %q is not stable: %q, %v", got, p, again, err)
			}
		}
	})
}

// benchmarkNormalize is what the engine does per request: the check, and
// Append into a reused buffer only when the path is not normal.
func benchmarkNormalize(b *testing.B, path string) {
	p := []byte(path)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		if !IsNormal(p) {
			var err error
			if buf, err = Append(buf[:0], p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkNormal(b *testing.B) { benchmarkNormalize(b, "/api/v1/users/12345/profile") }
func BenchmarkNeedsWork(b *testing.B) {
	benchmarkNormalize(b, "/api/v1/./users//%31%32345/x/../profile")
}
