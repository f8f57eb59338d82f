package server

import (
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Cmd is a command to a loop, sent through its wake queue.
type Cmd uint32

// Commands; a loop may receive several at once (bits).
const (
	CmdStopAccepting Cmd = 1 << iota
	CmdStop
)

// eventfdOne is the 8-byte counter increment written to an eventfd.
var eventfdOne = [8]byte{1}

// WakeQueue is how other goroutines reach a loop: the connections whose
// Wake asked for an OnWake, and the server's commands, signalled through an
// eventfd that the loop waits on. C is the backend's connection type.
//
// Wakes before the loop gets to them merge (ConnWake), and the eventfd is
// written once until the loop takes the queue. The zero value is unusable
// until Open.
type WakeQueue[C any] struct {
	// pending is a hint that Take would find work: set with each signal,
	// cleared by Take (any goroutine).
	pending atomic.Bool

	mu sync.Mutex
	// fd is the eventfd: set by Open (New), written to under mu by any
	// goroutine, closed under mu by Close (the loop goroutine, or Stop
	// before Serve); the loop goroutine waits on it and reads it (FD,
	// Reset) with no lock, since only it closes it once running.
	fd        int
	open      bool // under mu: fd is ours to write and close
	q         []C  // under mu
	signalled bool // under mu: eventfd written and not yet taken
	cmds      Cmd  // under mu: pending commands
	dead      bool // under mu: closed, no more signals

	spare []C     // loop goroutine only: the slice Take hands out next
	buf   [8]byte // loop goroutine only: Reset's read
}

// Open creates the eventfd (non-blocking, close-on-exec).
func (w *WakeQueue[C]) Open() error {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	w.fd, w.open = fd, true
	return nil
}

// FD is the eventfd the loop waits on.
func (w *WakeQueue[C]) FD() int { return w.fd }

// Close closes the eventfd, after which Wake and Command are no-ops. The
// close happens under the mutex, so that no signal can write to the number
// once an unrelated file reuses it.
func (w *WakeQueue[C]) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dead = true
	w.q = nil
	if w.open {
		unix.Close(w.fd)
		w.fd, w.open = -1, false
	}
}

// Wake queues c for OnWake unless it is queued already; any goroutine. It
// returns false once c is dead (ConnWake.Kill) or the loop is gone. The
// queue holds the connection itself, not its descriptor or slot, so a
// connection that reuses either never gets another's OnWake.
func (w *WakeQueue[C]) Wake(c C, cw *ConnWake) bool {
	for {
		switch cw.state.Load() {
		case wakeDead:
			return false
		case wakeQueued:
			return true
		}
		if cw.state.CompareAndSwap(wakeIdle, wakeQueued) {
			return w.push(c)
		}
	}
}

func (w *WakeQueue[C]) push(c C) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead {
		return false
	}
	w.q = append(w.q, c)
	w.signalLocked()
	return true
}

// Command sends cmd to the loop; any goroutine.
func (w *WakeQueue[C]) Command(cmd Cmd) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead {
		return
	}
	w.cmds |= cmd
	w.signalLocked()
}

// signalLocked writes the eventfd unless it is already signalled.
func (w *WakeQueue[C]) signalLocked() {
	if w.signalled {
		return
	}
	w.signalled = true
	w.pending.Store(true)
	_, _ = unix.Write(w.fd, eventfdOne[:])
}

// Pending reports whether Take may find work; any goroutine.
func (w *WakeQueue[C]) Pending() bool { return w.pending.Load() }

// Reset reads the eventfd's counter back to zero once its readiness was
// seen; loop goroutine.
func (w *WakeQueue[C]) Reset() { _, _ = unix.Read(w.fd, w.buf[:]) }

// Take returns the pending commands and the connections queued since the
// last Take, and lets the next Wake or Command signal again; loop
// goroutine. The loop calls ConnWake.Claim before each OnWake and hands
// the slice back with Done.
func (w *WakeQueue[C]) Take() (Cmd, []C) {
	w.mu.Lock()
	w.pending.Store(false)
	w.signalled = false
	cmds := w.cmds
	w.cmds = 0
	batch := w.q
	w.q, w.spare = w.spare, nil
	w.mu.Unlock()
	return cmds, batch
}

// Done takes back the slice Take returned, for reuse; loop goroutine.
func (w *WakeQueue[C]) Done(batch []C) {
	var none C
	for i := range batch { // a batch is short: cheaper than clear's bulk barrier
		batch[i] = none
	}
	w.spare = batch[:0]
}

// Wake states of a connection.
const (
	wakeIdle   uint32 = iota
	wakeQueued        // on the loop's wake queue
	wakeDead          // closing, closed or detached: Wake returns false
)

// ConnWake is a connection's wake state; any goroutine. The zero value is
// idle.
type ConnWake struct{ state atomic.Uint32 }

// Kill marks the connection closing, closed or detached: Wake returns
// false from now on, and a queued wake is skipped.
func (cw *ConnWake) Kill() { cw.state.Store(wakeDead) }

// Claim is called by the loop for each connection Take returned: it
// reports whether OnWake is due (the connection is queued and alive). It
// clears the queued state before the callback, so that a Wake during it
// queues another OnWake.
func (cw *ConnWake) Claim() bool { return cw.state.CompareAndSwap(wakeQueued, wakeIdle) }
