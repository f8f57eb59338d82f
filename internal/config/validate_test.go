package config

import (
	"testing"
	"time"
)

func TestParseBind(t *testing.T) {
	tests := []struct {
		in   string
		want BindAddr
		err  string
	}{
		{in: "127.0.0.1:8000", want: BindAddr{Network: "tcp", Host: "127.0.0.1", Port: 8000}},
		{in: ":80", want: BindAddr{Network: "tcp", Port: 80}},
		{in: "0.0.0.0:0", want: BindAddr{Network: "tcp", Host: "0.0.0.0"}},
		{in: "[::1]:8000", want: BindAddr{Network: "tcp", Host: "::1", Port: 8000}},
		{in: "[fe80::1%eth0]:8000", want: BindAddr{Network: "tcp", Host: "fe80::1%eth0", Port: 8000}},
		{in: "localhost:8000", want: BindAddr{Network: "tcp", Host: "localhost", Port: 8000}},
		{in: "unix:/run/a.sock", want: BindAddr{Network: "unix", Path: "/run/a.sock"}},
		{in: "unix:///run/a.sock", want: BindAddr{Network: "unix", Path: "/run/a.sock"}},
		{in: "unix:relative.sock", want: BindAddr{Network: "unix", Path: "relative.sock"}},
		{in: "unix:@abstract", want: BindAddr{Network: "unix", Path: "@abstract"}},
		{in: "fd://3", want: BindAddr{Network: "fd", FD: 3}},
		{in: "unix:", err: `"unix:": empty socket path`},
		{in: "fd://-1", err: `"fd://-1": fd:// needs a descriptor number, e.g. fd://3`},
		{in: "8000", err: `"8000": missing port, e.g. 8000:8000`},
		{in: "[127.0.0.1]:80", err: `"[127.0.0.1]:80": "127.0.0.1" is not an IPv6 address`},
		{in: "*:80", err: `"*:80": "*" is not a host name or IP address (for every interface write :80)`},
		{in: ":http", err: `":http": port must be a number from 0 to 65535`},
		{in: ":+80", err: `":+80": port must be a number from 0 to 65535`},
		{in: "a:b:c", err: `"a:b:c": write IPv6 addresses in brackets, e.g. [::1]:8000`},
		{in: "[::1", err: `"[::1": not HOST:PORT, [IPv6]:PORT, :PORT, unix:PATH or fd://FD`},
	}
	for _, tt := range tests {
		got, err := ParseBind(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseBind(%q) error %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseBind(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		// String renders something that parses back to the same address.
		if again, err := ParseBind(got.String()); err != nil || again != got {
			t.Errorf("ParseBind(%q).String() = %q does not parse back: %+v %v", tt.in, got.String(), again, err)
		}
	}
	c := Default()
	c.Bind = []string{":1", "unix:/a"}
	addrs, err := c.BindAddrs()
	if err != nil || len(addrs) != 2 || addrs[1].Path != "/a" {
		t.Fatalf("BindAddrs: %+v %v", addrs, err)
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 30 * time.Second: "30s", 90 * time.Second: "90s", time.Minute: "1m", 2 * time.Hour: "2h",
		250 * time.Millisecond: "250ms", 1500 * time.Millisecond: "1.5s", -5 * time.Second: "-5s", time.Microsecond: "1µs",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if d >= 0 {
			back, err := DecodeDuration(formatDuration(d))
			if err != nil || back != d {
				t.Errorf("%q decodes to %v, %v", formatDuration(d), back, err)
			}
		}
	}
	for n, want := range map[int64]string{
		0: "0", 1: "1", 1024: "1KiB", 1000: "1KB", 100 << 20: "100MiB", 1 << 30: "1GiB", 10_000_000: "10MB", 1500: "1500", 3 << 40: "3TiB",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := decodeSize(formatSize(n)); err != nil || back != n {
			t.Errorf("%q decodes to %d, %v", formatSize(n), back, err)
		}
	}
}

func TestDecodeSizes(t *testing.T) {
	for in, want := range map[string]int64{
		"64KiB": 64 << 10, "10MB": 10e6, "1GiB": 1 << 30, "1.5 gib": 3 << 29, "512": 512, "512b": 512,
		"2TB": 2e12, " 7 KiB ": 7 << 10, "0": 0, "-1": -1,
	} {
		if got, err := decodeSize(in); err != nil || got != want {
			t.Errorf("decodeSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"":          `not a size: ""`,
		"1e3":       `not a size: "1e3" (use bytes, or a unit: KB MB GB TB, KiB MiB GiB TiB)`,
		"1.2.3KB":   `not a size: "1.2.3KB"`,
		"9999999TB": `too large: "9999999TB"`,
		"1G":        `not a size: "1G" (ambiguous unit: write GB for powers of 1000 or GiB for powers of 1024)`,
		"KiB":       `not a size: "KiB"`,
	} {
		if _, err := decodeSize(in); err == nil || err.Error() != want {
			t.Errorf("decodeSize(%q) error %v, want %s", in, err, want)
		}
	}
}

func TestDecodeDurations(t *testing.T) {
	for in, want := range map[any]time.Duration{
		30: 30 * time.Second, "30": 30 * time.Second, 2.5: 2500 * time.Millisecond, "0.25": 250 * time.Millisecond,
		"1m30s": 90 * time.Second, "250ms": 250 * time.Millisecond, " 1h ": time.Hour, "-3": -3 * time.Second,
	} {
		if got, err := DecodeDuration(in); err != nil || got != want {
			t.Errorf("DecodeDuration(%#v) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, tt := range []struct {
		in   any
		want string
	}{
		{"abc", `not a duration: "abc"`},
		{"inf", `not a duration: "inf"`},
		{"1e3", `not a duration: "1e3"`},
		{"30 s", `not a duration: "30 s"`},
		{int64(1) << 62, "too large: 4611686018427387904 seconds"},
		{true, "must be a duration (seconds, or a Go duration such as 1m30s), got true (a boolean)"},
		{float64(1e300), "not a duration: 1e+300"},
		{map[string]any{}, "must be a duration (seconds, or a Go duration such as 1m30s), got a mapping"},
		{"99999999999999999s", `not a duration: "99999999999999999s"`},
	} {
		if _, err := DecodeDuration(tt.in); err == nil || err.Error() != tt.want {
			t.Errorf("DecodeDuration(%#v) error %v, want %s", tt.in, err, tt.want)
		}
	}
}
