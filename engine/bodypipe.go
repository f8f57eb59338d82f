package engine

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// pipeCap is how much of a streamed request body the engine holds for a
// handler that has not read it yet; past it the loop stops reading from
// the client (the kernel's receive window then pushes back).
const pipeCap = 64 << 10

// bodyPipe carries a request body that is larger than the body buffer from
// the loop (which reads and de-chunks it) to a handler running off the loop.
// The loop feeds it and the handler's goroutine reads it; both take mu for
// everything but wake and ready.
type bodyPipe struct {
	mu      sync.Mutex
	buf     []byte
	off     int
	done    bool  // the whole body was delivered
	err     error // the body will never complete (client gone, bad framing)
	full    bool  // the loop stopped reading because buf was full
	askMore bool  // a reader freed space while the loop was stopped
	cont    bool  // "100 Continue" still owed: the first read asks for it
	askCont bool  // the reader asked for 100 Continue
	// deadline is the reader's (http.ResponseController.SetReadDeadline):
	// a read waiting for bytes past it fails. Zero: none.
	deadline time.Time
	// ready wakes a reader waiting for bytes (feed, finish). wake is the
	// connection's Wake: the reader asks the loop for more of the body, or
	// for 100 Continue, with it (takeRequests). Both are set when made.
	ready chan struct{}
	wake  func() bool
}

func newBodyPipe(expect100 bool, wake func() bool) *bodyPipe {
	return &bodyPipe{ready: make(chan struct{}, 1), cont: expect100, wake: wake}
}

func (p *bodyPipe) signal() {
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

// feed is called on the loop with body bytes; it takes what fits and
// reports how much. When it takes less than offered, the loop must pause
// reading until the reader asks for more (OnWake).
func (p *bodyPipe) feed(b []byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return len(b) // nobody will read it: discard
	}
	if p.off > 0 && p.off == len(p.buf) {
		p.buf, p.off = p.buf[:0], 0
	}
	free := pipeCap - (len(p.buf) - p.off)
	n := min(free, len(b))
	if n > 0 {
		if p.off > 0 && len(p.buf)+n > cap(p.buf) {
			p.buf = p.buf[:copy(p.buf, p.buf[p.off:])]
			p.off = 0
		}
		p.buf = append(p.buf, b[:n]...)
		p.signal()
	}
	p.full = n < len(b)
	return n
}

// space reports how many bytes feed would take now.
func (p *bodyPipe) space() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return pipeCap - (len(p.buf) - p.off)
}

// markFull records that the loop stops feeding until the reader frees
// space; it returns false (and records nothing) when want bytes of space
// are free already,
// so that a reader that drained the pipe meanwhile is never waited for.
func (p *bodyPipe) markFull(want int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pipeCap-(len(p.buf)-p.off) >= want || p.err != nil {
		return false
	}
	p.full = true
	return true
}

// finish marks the body complete (err nil) or broken.
func (p *bodyPipe) finish(err error) {
	p.mu.Lock()
	if err != nil {
		if p.err == nil && !p.done {
			p.err = err
		}
	} else {
		p.done = true
	}
	p.mu.Unlock()
	p.signal()
}

// read is the handler's io.Reader: it waits for body bytes, and wakes the
// loop to resume reading (or to send 100 Continue).
func (p *bodyPipe) read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		if p.cont {
			p.cont = false
			p.askCont = true
			p.mu.Unlock()
			p.wake()
			continue
		}
		if n := len(p.buf) - p.off; n > 0 {
			k := copy(b, p.buf[p.off:])
			p.off += k
			resume := p.full
			if resume {
				p.full = false
				p.askMore = true
			}
			p.mu.Unlock()
			if resume {
				p.wake()
			}
			return k, nil
		}
		if p.done {
			p.mu.Unlock()
			return 0, io.EOF
		}
		if p.err != nil {
			err := p.err
			p.mu.Unlock()
			return 0, err
		}
		deadline := p.deadline
		p.mu.Unlock()
		if deadline.IsZero() {
			<-p.ready
			continue
		}
		if err := p.waitUntil(deadline); err != nil {
			return 0, err
		}
	}
}

// errReadTimeout is what a body read waiting past its read deadline
// returns: net/http's is the socket's "i/o timeout".
var errReadTimeout = fmt.Errorf("engine: request body read: %w", os.ErrDeadlineExceeded)

// waitUntil waits for the pipe's signal, or fails once deadline passed.
func (p *bodyPipe) waitUntil(deadline time.Time) error {
	d := time.Until(deadline)
	if d <= 0 {
		return errReadTimeout
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.ready:
		return nil
	case <-t.C:
		return errReadTimeout
	}
}

// setDeadline sets the reader's deadline, and wakes a reader waiting
// under the old one so that it waits under the new one.
func (p *bodyPipe) setDeadline(t time.Time) {
	p.mu.Lock()
	p.deadline = t
	p.mu.Unlock()
	p.signal()
}

// takeRequests returns and clears what the reader asked of the loop.
func (p *bodyPipe) takeRequests() (cont, more bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cont, more = p.askCont, p.askMore
	p.askCont, p.askMore = false, false
	return cont, more
}

// complete reports whether the whole body was delivered.
func (p *bodyPipe) complete() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}
