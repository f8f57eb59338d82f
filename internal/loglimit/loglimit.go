// Package loglimit rate-limits repeated log lines. Of the lines of one kind
// (Kind: the text before its first digit or quote, so that lines differing
// only in addresses, counts or quoted bytes are one kind), the first Burst
// in a window pass; the rest are counted, and when the window ends one
// summary line says how many were suppressed:
//
//	level=WARN msg="(suppressed 95 similar lines in the last 1m0s)" like="Unsolicited response received on idle HTTP channel starting with "
//
// A misbehaving peer then costs a few lines a minute instead of one per
// request. It wraps an slog.Handler (NewHandler) and, for code that logs
// through the log package or takes a *log.Logger (net/http's Transport
// and Server, httputil.ReverseProxy), builds a *log.Logger (NewLogLogger).
package loglimit

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"sync"
	"time"
)

// The limits NewLogLogger applies.
const (
	DefaultBurst  = 5
	DefaultWindow = time.Minute
)

// maxKinds bounds the kinds tracked at once: lines of further kinds share
// one overflow kind, so that lines that are all different cannot grow the
// table without bound.
const maxKinds = 256

// maxKindLen is the longest prefix of a line that names its kind.
const maxKindLen = 96

// Kind returns the kind of a log line: its text up to the first ASCII digit
// or quote (double or single), at most 96 bytes.
func Kind(msg string) string {
	for i := 0; i < len(msg) && i < maxKindLen; i++ {
		switch c := msg[i]; {
		case c >= '0' && c <= '9', c == '"', c == '\'':
			return msg[:i]
		}
	}
	return msg[:min(len(msg), maxKindLen)]
}

// limiter counts the lines of each kind in their current window. It is
// shared by a handler and the handlers derived from it (WithAttrs,
// WithGroup); mu guards kinds, and timers run summary on their own
// goroutine.
type limiter struct {
	burst  int
	window time.Duration
	next   slog.Handler // where summaries go; nil: slog.Default's handler

	mu    sync.Mutex
	kinds map[string]*kindWindow
}

// kindWindow is one kind's window: it began at start, passed passed lines
// and suppressed dropped; timer reports the suppressed lines when it ends.
type kindWindow struct {
	start   time.Time
	passed  int
	dropped int
	level   slog.Level // of the last suppressed line
	timer   *time.Timer
}

// allow reports whether a line of kind k at level lv may be logged at now.
// A window that ended with lines suppressed and whose timer has not fired
// yet is reported here, first, through report.
func (l *limiter) allow(k string, lv slog.Level, now time.Time) bool {
	l.mu.Lock()
	w := l.kinds[k]
	if w == nil && len(l.kinds) >= maxKinds {
		for kk, ww := range l.kinds {
			if ww.dropped == 0 && now.Sub(ww.start) >= l.window {
				delete(l.kinds, kk) // ended, nothing to report
			}
		}
		if len(l.kinds) >= maxKinds {
			k = "" // the overflow kind
			w = l.kinds[k]
		}
	}
	var ended *kindWindow
	if w != nil && now.Sub(w.start) >= l.window {
		if w.dropped > 0 && w.timer.Stop() {
			ended = w
		}
		w = nil
	}
	if w == nil {
		w = &kindWindow{start: now}
		l.kinds[k] = w
	}
	ok := w.passed < l.burst
	if ok {
		w.passed++
	} else {
		w.dropped++
		w.level = lv
		if w.dropped == 1 {
			w.timer = time.AfterFunc(l.window-now.Sub(w.start), func() { l.expire(k, w) })
		}
	}
	l.mu.Unlock()
	if ended != nil {
		l.report(k, ended)
	}
	return ok
}

// expire ends w, the window of kind k, when its timer fires.
func (l *limiter) expire(k string, w *kindWindow) {
	l.mu.Lock()
	if l.kinds[k] == w {
		delete(l.kinds, k)
	}
	l.mu.Unlock()
	l.report(k, w)
}

// report logs the summary of a window that suppressed lines.
func (l *limiter) report(k string, w *kindWindow) {
	h := l.next
	if h == nil {
		h = slog.Default().Handler()
	}
	ctx := context.Background()
	if !h.Enabled(ctx, w.level) {
		return
	}
	r := slog.NewRecord(time.Now(), w.level,
		fmt.Sprintf("(suppressed %d similar lines in the last %s)", w.dropped, l.window), 0)
	r.AddAttrs(slog.String("like", k))
	h.Handle(ctx, r) //nolint:errcheck // a log line has nowhere to report its own failure
}

// Handler is an slog.Handler that passes records to the next handler
// through a limiter.
type Handler struct {
	l    *limiter
	next slog.Handler // nil: slog.Default's handler at each record
}

// NewHandler returns a handler that passes the first burst records of a
// kind (Kind of the message) in each window to next, and one summary per
// window that suppressed any. A nil next means slog.Default's handler,
// looked up at each record, so that a handler built before the process
// set up its log still writes there.
func NewHandler(next slog.Handler, burst int, window time.Duration) *Handler {
	return &Handler{l: &limiter{burst: burst, window: window, next: next, kinds: map[string]*kindWindow{}}, next: next}
}

func (h *Handler) handler() slog.Handler {
	if h.next != nil {
		return h.next
	}
	return slog.Default().Handler()
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, lv slog.Level) bool {
	return h.handler().Enabled(ctx, lv)
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	if !h.l.allow(Kind(r.Message), r.Level, now) {
		return nil
	}
	return h.handler().Handle(ctx, r)
}

// WithAttrs implements slog.Handler; the result shares h's limits.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{l: h.l, next: h.handler().WithAttrs(as)}
}

// WithGroup implements slog.Handler; the result shares h's limits.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{l: h.l, next: h.handler().WithGroup(name)}
}

// NewLogLogger returns a *log.Logger whose lines are records at level
// through a Handler with the default limits (DefaultBurst lines of a kind
// per DefaultWindow). Use it as the ErrorLog of an http.Server or a
// ReverseProxy, or its Writer as the log package's output
// (log.SetOutput), which is where net/http's Transport logs. A nil next
// means slog.Default's handler at each line.
func NewLogLogger(next slog.Handler, level slog.Level) *log.Logger {
	return slog.NewLogLogger(NewHandler(next, DefaultBurst, DefaultWindow), level)
}
