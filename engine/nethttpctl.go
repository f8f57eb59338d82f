package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// What the net/http adapter's ResponseWriter offers beyond Write and
// Flush, as net/http's own does: http.ResponseController's deadlines and
// full duplex, CloseNotify, response trailers, and write errors that say
// what net/http's say.

// errWriteTimeout is what a write after the response's write deadline
// returns: net/http's is the socket's "i/o timeout", os.ErrDeadlineExceeded.
var errWriteTimeout = fmt.Errorf("engine: response write: %w", os.ErrDeadlineExceeded)

// errClientGoneHTTP is ErrClientGone for net/http handlers: it also
// matches syscall.EPIPE, the "broken pipe" net/http's server returns for a
// write to a client that left (checked side by side in
// TestParityWriteAfterClientLeft).
var errClientGoneHTTP = fmt.Errorf("%w: %w", ErrClientGone, syscall.EPIPE)

// httpWriteErr turns the engine's write errors into net/http's.
func httpWriteErr(err error) error {
	if errors.Is(err, ErrClientGone) {
		return errClientGoneHTTP
	}
	return err
}

// writerExt is the part of a responseWriter that few handlers use, made
// when one does, so that the others allocate less.
type writerExt struct {
	trailers []string       // names declared in the Trailer header (declareTrailers)
	wd       *writeDeadline // SetWriteDeadline's, once set
}

// extra returns w's writerExt, made on first use.
func (w *responseWriter) extra() *writerExt {
	if w.ext == nil {
		w.ext = &writerExt{}
	}
	return w.ext
}

// deadline returns the write deadline, nil if none was ever set.
func (w *responseWriter) deadline() *writeDeadline {
	if w.ext == nil {
		return nil
	}
	return w.ext.wd
}

// writeDeadline is a response's write deadline (SetWriteDeadline). at is
// the handler's; the timer's goroutine and the handler share the rest,
// under mu.
type writeDeadline struct {
	at    time.Time
	timer *time.Timer
	mu    sync.Mutex
	gen   uint64 // which SetWriteDeadline the timer belongs to
	fired bool   // the deadline passed while a write could be waiting
	ended bool   // the handler returned: the Ctx may be reused, signal nothing
}

// SetWriteDeadline implements http.ResponseController's: a write at or
// after t fails with an error matching os.ErrDeadlineExceeded, and so does
// one waiting for a slow client when t passes; the response is then cut
// short and the connection closed, as net/http's connection is broken by
// a write timeout. The zero time clears the deadline.
func (w *responseWriter) SetWriteDeadline(t time.Time) error {
	d := w.deadline()
	if d == nil {
		if t.IsZero() {
			return nil
		}
		d = &writeDeadline{}
		w.extra().wd = d
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at, d.fired = t, false
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if t.IsZero() || !w.c.off.launched {
		// On the loop nothing waits for the client: Write checks the time.
		return nil
	}
	gen := d.gen
	d.timer = time.AfterFunc(time.Until(t), func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !d.ended {
			d.fired = true
			w.c.off.signal() // release a write waiting in pushOff
		}
	})
	return nil
}

// pastWriteDeadline reports whether the write deadline has passed, and
// then ends the response (timedOut).
func (w *responseWriter) pastWriteDeadline() bool {
	d := w.deadline()
	if d == nil {
		return false
	}
	d.mu.Lock()
	past := d.fired || !d.at.IsZero() && !time.Now().Before(d.at)
	d.mu.Unlock()
	if past {
		w.timedOut()
	}
	return past
}

// endWriteDeadline stops the timer as the handler returns, and drops a
// wake it may have left for the next request on this Ctx.
func (w *responseWriter) endWriteDeadline() {
	d := w.deadline()
	if d == nil {
		return
	}
	d.mu.Lock()
	d.ended = true
	if d.timer != nil {
		d.timer.Stop()
	}
	d.mu.Unlock()
	if w.c.off.launched {
		select {
		case <-w.c.off.wake:
		default:
		}
	}
}

// timedOut ends a response whose write deadline passed: nothing more goes
// out, and the connection closes: a stream ends without its last chunk,
// and a response not yet sent is never sent, as with net/http, whose
// final flush fails on the timed-out connection.
func (w *responseWriter) timedOut() {
	c := w.c
	if !c.streaming {
		c.status, c.out, c.streaming = http.StatusInternalServerError, c.out[:0], true
	}
	c.out = c.out[:0]
	c.panicked = true // the stream ends in a close, never in its last chunk
}

// SetReadDeadline implements http.ResponseController's: a read of a body
// still arriving (streamed, or request_buffering: false) that waits past t
// fails with an error matching os.ErrDeadlineExceeded. A body the engine
// buffered before the handler ran never waits, as net/http's reads of
// bytes it already holds do not. The zero time clears the deadline.
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	if p := w.c.pipe; p != nil {
		p.setDeadline(t)
	}
	return nil
}

// EnableFullDuplex implements http.ResponseController's. The adapter is
// always full duplex: a handler may read a body that is still arriving
// after its response started, as net/http allows only after this call.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// CloseNotify implements the deprecated http.CloseNotifier: the channel
// receives true when the client goes away (the request's context ends for
// that reason) while the handler runs.
func (w *responseWriter) CloseNotify() <-chan bool {
	ch := make(chan bool, 1)
	ctx := w.c.Context()
	go func() {
		<-ctx.Done()
		if context.Cause(ctx) == context.Canceled {
			ch <- true
		}
	}()
	return ch
}

// declareTrailers records the names in the Trailer header, as net/http
// does at WriteHeader; net/http refuses the framing fields among them.
func (w *responseWriter) declareTrailers(vs []string) {
	for _, v := range vs {
		for _, name := range strings.Split(v, ",") {
			k := http.CanonicalHeaderKey(strings.TrimSpace(name))
			switch k {
			case "", "Transfer-Encoding", "Trailer", "Content-Length":
				continue
			}
			w.extra().trailers = append(w.extra().trailers, k)
		}
	}
}

// sendTrailers gives the response the trailer fields the handler set (the
// declared names, and keys with http.TrailerPrefix), once it returned. As
// with net/http they need chunked framing: a response not yet streaming
// becomes a chunked stream if it declared trailers; one with a
// Content-Length, an HTTP/1.0 client or a bodyless status sends none.
func (w *responseWriter) sendTrailers() {
	c := w.c
	var declared []string
	if w.ext != nil {
		declared = w.ext.trailers
	}
	if !c.streaming && (len(declared) == 0 || c.contentLen >= 0) {
		// Only declared trailers make net/http chunk a response it holds
		// whole, and never one with a Content-Length; http.TrailerPrefix
		// keys alone are then dropped.
		return
	}
	if !c.ProtoAtLeast(1, 1) || !bodyAllowed(c.status) || isHead(&c.req) {
		return
	}
	var b []byte
	for _, k := range declared {
		for _, v := range w.header[k] {
			b = c.appendTrailer(b, k, v)
		}
	}
	for k, vs := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vs {
				b = c.appendTrailer(b, http.CanonicalHeaderKey(name), v)
			}
		}
	}
	if !c.streaming {
		c.streamHead() // the rest goes out as the handler's response completes
	}
	if c.streamCL == -1 {
		c.trailers = b
	}
}

// appendTrailer appends "name: value\r\n", or nothing for a field that may
// not be sent (as SetHeader refuses it).
func (c *Ctx) appendTrailer(b []byte, name, value string) []byte {
	if !validName(s2b(name)) || !c.validValue(value) {
		return b
	}
	b = append(b, name...)
	b = append(b, ':', ' ')
	b = append(b, value...)
	return append(b, '\r', '\n')
}

// logIgnoredWriteHeader logs a WriteHeader call that has no effect (a
// second one, or one after Hijack) with the handler's call site, as
// net/http's server does through its ErrorLog.
func (w *responseWriter) logIgnoredWriteHeader() {
	what := "superfluous response.WriteHeader call"
	if w.hijacked {
		what = "response.WriteHeader on hijacked connection"
	}
	adapterErrorLog.Printf("http: %s from %s", what, handlerCaller())
}

// enginePkg is this package's import path, for handlerCaller.
var enginePkg = reflect.TypeFor[responseWriter]().PkgPath()

// handlerCaller returns the first caller outside this package and
// net/http: "function (file:line)", as net/http's relevantCaller.
func handlerCaller() string {
	pc := make([]uintptr, 16)
	frames := runtime.CallersFrames(pc[:runtime.Callers(2, pc)])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "net/http.") && !strings.HasPrefix(f.Function, enginePkg+".") {
			return fmt.Sprintf("%s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
		}
		if !more {
			return "an unknown caller"
		}
	}
}
