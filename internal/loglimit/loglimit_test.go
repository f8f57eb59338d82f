package loglimit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestKind(t *testing.T) {
	tests := []struct{ in, want string }{
		{`Unsolicited response received on idle HTTP channel starting with "HTTP/1.1 200 OK"; err=<nil>`,
			`Unsolicited response received on idle HTTP channel starting with `},
		{"httputil: ReverseProxy read error during body copy: read tcp 127.0.0.1:4->127.0.0.1:5: reset",
			"httputil: ReverseProxy read error during body copy: read tcp "},
		{"no digits or quotes", "no digits or quotes"},
		{"it's", "it"},
		{"7 lines", ""},
		{strings.Repeat("x", 120), strings.Repeat("x", 96)},
	}
	for _, tt := range tests {
		if got := Kind(tt.in); got != tt.want {
			t.Errorf("Kind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer for a handler that a timer writes to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newCapture() (*syncBuffer, slog.Handler) {
	var buf syncBuffer
	return &buf, slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})
}

func record(at time.Time, msg string) slog.Record {
	return slog.NewRecord(at, slog.LevelWarn, msg, 0)
}

var summaryRE = regexp.MustCompile(`\(suppressed (\d+) similar lines in the last ([^)]+)\)" like="([^"]*)"`)

// summaries returns the suppressed counts per kind found in out.
func summaries(t *testing.T, out string) map[string]int {
	got := map[string]int{}
	for _, m := range summaryRE.FindAllStringSubmatch(out, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatal(err)
		}
		got[m[3]] += n
	}
	return got
}

// TestWindow drives one handler with record times chosen by the test: the
// first burst lines of a kind pass, the rest are suppressed, other kinds
// are counted apart, and the first line after the window reports what the
// window suppressed and starts a new window.
func TestWindow(t *testing.T) {
	out, capture := newCapture()
	h := NewHandler(capture, 3, time.Hour) // the timer never fires in the test
	ctx := context.Background()
	t0 := time.Now()
	for i := range 10 {
		h.Handle(ctx, record(t0.Add(time.Duration(i)*time.Second), fmt.Sprintf("Unsolicited response \"%d\"", i))) //nolint:errcheck
	}
	h.Handle(ctx, record(t0, "other kind 1")) //nolint:errcheck
	if n := strings.Count(out.String(), "Unsolicited"); n != 3 {
		t.Fatalf("%d lines of one kind passed in the window, want 3:\n%s", n, out)
	}
	if !strings.Contains(out.String(), "other kind 1") {
		t.Fatalf("a line of another kind was held back:\n%s", out)
	}
	if s := summaries(t, out.String()); len(s) != 0 {
		t.Fatalf("a summary before the window ended: %v", s)
	}
	h.Handle(ctx, record(t0.Add(time.Hour), `Unsolicited response "next"`)) //nolint:errcheck
	if s := summaries(t, out.String()); s["Unsolicited response "] != 7 || len(s) != 1 {
		t.Fatalf("summaries %v, want 7 suppressed of one kind:\n%s", s, out)
	}
	if !strings.Contains(out.String(), `msg="Unsolicited response \"next\""`) {
		t.Fatalf("the first line of the next window was held back:\n%s", out)
	}
	if !strings.Contains(out.String(), "level=WARN msg=\"(suppressed 7 similar lines in the last 1h0m0s)\"") {
		t.Fatalf("the summary is not at the lines' level:\n%s", out)
	}
}

// TestSummaryWhenTheFloodStops checks that the summary comes when the
// window ends, not only with the next line of its kind: every line is
// either logged or counted in a summary.
func TestSummaryWhenTheFloodStops(t *testing.T) {
	out, capture := newCapture()
	h := slog.New(NewHandler(capture, 2, 50*time.Millisecond)).With("route", "/api/")
	const sent = 40
	for i := range sent {
		h.Warn(fmt.Sprintf("httputil: ReverseProxy read error during body copy: read tcp 127.0.0.1:%d", 40000+i))
	}
	kind := "httputil: ReverseProxy read error during body copy: read tcp "
	var passed, suppressed int
	ok := func() bool {
		passed = strings.Count(out.String(), `msg="httputil`)
		suppressed = summaries(t, out.String())[kind]
		return passed+suppressed == sent
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ok() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if passed+suppressed != sent || suppressed == 0 {
		t.Fatalf("%d lines logged and %d reported suppressed, want %d in all, some suppressed:\n%s", passed, suppressed, sent, out)
	}
	if !strings.Contains(out.String(), "route=/api/") {
		t.Fatalf("WithAttrs lost the attributes:\n%s", out)
	}
}

// TestNewLogLogger checks the *log.Logger path that net/http's Transport,
// Server and ReverseProxy log through: lines become records at the given
// level, limited by kind.
func TestNewLogLogger(t *testing.T) {
	out, capture := newCapture()
	l := NewLogLogger(capture, slog.LevelWarn)
	for i := range 20 {
		l.Printf("Unsolicited response received on idle HTTP channel starting with %q; err=<nil>", fmt.Sprint("HTTP/1.1 200 OK ", i))
	}
	if n := strings.Count(out.String(), "level=WARN msg=\"Unsolicited"); n != DefaultBurst {
		t.Fatalf("%d lines logged, want %d:\n%s", n, DefaultBurst, out)
	}
}

// TestKindsAreBounded checks that lines that are all of different kinds
// cannot grow the limiter's table without bound.
func TestKindsAreBounded(t *testing.T) {
	_, capture := newCapture()
	h := NewHandler(capture, 1, time.Hour)
	t0 := time.Now()
	for i := range 3 * maxKinds {
		h.Handle(context.Background(), record(t0, "kind "+strings.Repeat("x", i%60)+string(rune('a'+i/60)))) //nolint:errcheck
	}
	h.l.mu.Lock()
	n := len(h.l.kinds)
	h.l.mu.Unlock()
	if n > maxKinds+1 {
		t.Fatalf("%d kinds tracked, want at most %d", n, maxKinds+1)
	}
}
