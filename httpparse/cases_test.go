package httpparse

import (
	"reflect"
	"testing"
)

// headCase is one table case: raw bytes (a whole request, or a prefix) and
// either the rejection they must produce, or that they are incomplete, or
// checks on the single request they parse into.
type headCase struct {
	rule       string // the rule checked, with its RFC section
	raw        string
	err        *Error // the rejection, compared by identity
	incomplete bool
	lim        Limits
	noHost     bool
	check      func(t *testing.T, m msg)
}

// runHeadCases parses every case at once, byte at a time, and in 3-byte
// steps with the input moving between calls; all three must agree.
func runHeadCases(t *testing.T, cases []headCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			o := streamOpts{limits: c.lim, noHostCheck: c.noHost}
			got := runStream([]byte(c.raw), o)
			for _, step := range []streamOpts{{step: 1}, {step: 3, copyEach: true}} {
				step.limits, step.noHostCheck = c.lim, c.noHost
				if other := runStream([]byte(c.raw), step); !reflect.DeepEqual(other, got) {
					t.Fatalf("feeding %d bytes at a time differs from one feed\nraw=%q\nwhole:\n%v\nsplit:\n%v", step.step, c.raw, got, other)
				}
			}
			switch {
			case c.err != nil:
				if got.err != c.err || len(got.msgs) != 0 {
					t.Fatalf("raw=%q\nwant error %v, got:\n%v", c.raw, c.err, got)
				}
			case c.incomplete:
				if got.err != nil || !got.incomplete || len(got.msgs) != 0 {
					t.Fatalf("raw=%q\nwant incomplete, got:\n%v", c.raw, got)
				}
			default:
				if got.err != nil || got.incomplete || len(got.msgs) != 1 {
					t.Fatalf("raw=%q\nwant one request, got:\n%v", c.raw, got)
				}
				if c.check != nil {
					c.check(t, got.msgs[0])
				}
			}
		})
	}
}

// want returns a check comparing selected fields of the parsed request.
func want(method, target, path string, query *string, host string) func(*testing.T, msg) {
	return func(t *testing.T, m msg) {
		t.Helper()
		if m.Method != method || m.Target != target || m.Path != path || m.Host != host || !reflect.DeepEqual(m.Query, query) {
			t.Errorf("got method=%q target=%q path=%q query=%v host=%q; want %q %q %q %v %q",
				m.Method, m.Target, m.Path, m.Query, m.Host, method, target, path, query, host)
		}
	}
}

func sp(s string) *string { return &s }

func checkHeaders(want ...[2]string) func(*testing.T, msg) {
	return func(t *testing.T, m msg) {
		t.Helper()
		if !reflect.DeepEqual(m.Headers, want) {
			t.Errorf("headers = %q, want %q", m.Headers, want)
		}
	}
}

func checkMsg(f func(m msg) bool, what string) func(*testing.T, msg) {
	return func(t *testing.T, m msg) {
		t.Helper()
		if !f(m) {
			t.Errorf("%s: got %+v", what, m)
		}
	}
}
