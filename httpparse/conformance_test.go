package httpparse

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/asyncd/asyncd/internal/conformance"
)

type vector = conformance.Vector

type parsedVec = conformance.Message

func latin1(s string) []byte { return conformance.Latin1(s) }

func latin1Pairs(in [][2]string) [][2]string { return conformance.Latin1Pairs(in) }

func decodeParsed(raw json.RawMessage) ([]parsedVec, error) { return conformance.Messages(raw) }

func loadVectors(t testing.TB) []vector {
	dir := conformance.Dir()
	if dir == "" {
		t.Skip("shared/conformance not found above the working directory; the table tests still cover every rule")
	}
	vs, err := conformance.Load(dir)
	if err != nil {
		t.Fatalf("conformance vectors: %v", err)
	}
	if len(vs) == 0 {
		t.Fatalf("no vectors in %s", dir)
	}
	return vs
}

// verdict is what one vector expects from the parser.
type verdict struct {
	expect string
	status int
	altOK  bool
	parsed []parsedVec
	before int // messages before the error; -1 when the vector does not say
}

// checkVerdict compares a stream outcome with a verdict; it returns "" when
// they agree.
func checkVerdict(v vector, want verdict, got outcome) string {
	rejectOK := func() string {
		e, ok := got.err.(*Error)
		if !ok {
			return "want a rejection"
		}
		if want.expect == "reject" && e.Status != want.status {
			return "wrong status"
		}
		if want.expect != "reject" && !(e.Status >= 400 && e.Status < 500 || e.Status == 501) {
			return "alternative rejection must be 4xx or 501"
		}
		if want.expect == "reject" && want.before >= 0 && len(got.msgs) != want.before {
			return "wrong number of messages before the error"
		}
		return ""
	}
	switch want.expect {
	case "reject":
		return rejectOK()
	case "incomplete":
		if got.err != nil {
			if want.altOK {
				return rejectOK()
			}
			return "want incomplete, got an error"
		}
		if !got.incomplete {
			return "want incomplete"
		}
		return ""
	case "accept":
		if got.err != nil && (v.After != "incomplete" || len(got.msgs) != len(want.parsed)) {
			if want.altOK {
				return rejectOK()
			}
			return "want accept, got an error"
		}
		if len(got.msgs) != len(want.parsed) {
			return "wrong number of messages"
		}
		for i, pv := range want.parsed {
			m := got.msgs[i]
			if m.Method != string(latin1(pv.Method)) || m.Target != string(latin1(pv.Target)) || m.Version != pv.Version {
				return "request line differs"
			}
			wh := latin1Pairs(pv.Headers)
			gh := m.Headers
			if len(wh) != 0 || len(gh) != 0 {
				if !reflect.DeepEqual(wh, gh) {
					return "headers differ"
				}
			}
			if m.Body != string(latin1(pv.Body)) {
				return "body differs"
			}
			wt := latin1Pairs(pv.Trailers)
			if len(wt) != 0 || len(m.Trailers) != 0 {
				if !reflect.DeepEqual(wt, m.Trailers) {
					return "trailers differ"
				}
			}
		}
		switch v.After {
		case "close", "close-ignore-rest":
			if got.stopped != "close" {
				return "want the connection closed after the last message"
			}
		case "tunnel":
			if got.stopped != "tunnel" {
				return "want a tunnel after CONNECT"
			}
		case "incomplete":
			// The trailing bytes are the start of a next request: the
			// parser waits for its request line to end (deferLine).
			if !got.incomplete {
				return "want trailing bytes read as an incomplete request"
			}
		default:
			if got.stopped != "" {
				return "connection should stay open"
			}
		}
		return ""
	}
	return "unknown expect " + want.expect
}

// TestConformanceVectors runs every shared conformance vector through the
// parser at once, byte at a time and with the bytes moving between calls,
// and checks the verdict (with Host enforced, as the server does) and, for
// vectors that carry one, the parser-only verdict without the Host rule.
//
// The vectors judge syntax, not deployment limits, so they run with
// MaxBodySize at its maximum: a huge but valid Content-Length or chunk size
// is then "incomplete" as the vectors say, where the default limit would
// answer 413 (covered by the table tests).
func TestConformanceVectors(t *testing.T) {
	vs := loadVectors(t)
	counts := map[string]int{}
	lim := Limits{MaxBodySize: math.MaxInt64}
	for _, v := range vs {
		t.Run(v.ID, func(t *testing.T) {
			raw := latin1(v.Raw)
			run := func(name string, noHost bool, want verdict) {
				t.Helper()
				whole := runStream(raw, streamOpts{noHostCheck: noHost, limits: lim})
				if why := checkVerdict(v, want, whole); why != "" {
					t.Errorf("%s: %s\nraw=%q\nwant %+v\ngot:\n%v", name, why, raw, want, whole)
				}
				for _, o := range []streamOpts{{step: 1}, {step: 7, copyEach: true}, {slowOnly: true}} {
					o.noHostCheck, o.limits = noHost, lim
					got := runStream(raw, o)
					if !reflect.DeepEqual(got, whole) {
						t.Errorf("%s: feeding %d bytes at a time (slow paths only: %v) differs from one feed\nwhole:\n%v\ngot:\n%v", name, o.step, o.slowOnly, whole, got)
					}
				}
			}
			parsed, err := decodeParsed(v.Parsed)
			if err != nil {
				t.Fatalf("parsed: %v", err)
			}
			want := verdict{expect: v.Expect, status: v.Status, altOK: v.AltOK, parsed: parsed, before: -1}
			if v.MessagesBeforeSet {
				want.before = v.MessagesBefore
			}
			run("server verdict", false, want)
			counts[v.Expect]++
			if v.ExpectIgnoringHost != "" {
				ph, err := decodeParsed(v.ParsedIgnoringHost)
				if err != nil {
					t.Fatalf("parsed_ignoring_host: %v", err)
				}
				w := verdict{expect: v.ExpectIgnoringHost, parsed: ph, before: -1}
				if v.IgnoringHost != nil {
					w.status, w.altOK = v.IgnoringHost.Status, v.IgnoringHost.AltOK
				}
				run("parser-only verdict (Host rule off)", true, w)
			}
		})
	}
	t.Logf("%d vectors: %v", len(vs), counts)
}
