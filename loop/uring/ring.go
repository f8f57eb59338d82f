package uring

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

// Ring sizes. The completion queue is 8x the submission queue because every
// connection keeps a multishot receive armed: a burst of input on many
// connections posts one completion each without any new submission. The
// kernel keeps completions that do not fit (IORING_FEAT_NODROP), so the size
// is about avoiding that slow path, not correctness.
const (
	sqEntries = 1024
	cqEntries = 8 * sqEntries
	bufGroup  = 0 // the provided-buffer group id; one group per ring
)

// ringParams mirrors struct io_uring_params (include/uapi/linux/io_uring.h).
// giouring.Params has the same layout but unexported fields, so the backend
// fills this one and hands giouring a pointer to it: that is the only way to
// set cq_entries (IORING_SETUP_CQSIZE) and to read back the features word.
type ringParams struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32
	features     uint32
	wqFd         uint32
	resv         [3]uint32
	sqOff        [10]uint32 // struct io_sqring_offsets, filled by the kernel
	cqOff        [10]uint32 // struct io_cqring_offsets, filled by the kernel
}

// Compile-time check that the mirror and giouring.Params agree in size.
var (
	_ [unsafe.Sizeof(ringParams{}) - unsafe.Sizeof(giouring.Params{})]struct{}
	_ [unsafe.Sizeof(giouring.Params{}) - unsafe.Sizeof(ringParams{})]struct{}
)

// setupAttempts are the io_uring_setup flag sets tried in order; the first
// one the kernel accepts wins (EINVAL moves on to the next, any other error
// is final). SINGLE_ISSUER (6.0) and DEFER_TASKRUN (6.1) let the kernel skip
// locking and run completion work only when the loop asks for events, which
// is exactly how a loop goroutine locked to one thread works; COOP_TASKRUN
// (5.19) avoids interrupting the thread for completion work; TASKRUN_FLAG
// lets the loop see pending work in the SQ flags; SUBMIT_ALL (5.18) keeps
// submitting after one bad SQE. It is a variable so that tests can force the
// fallback.
var setupAttempts = []uint32{
	giouring.SetupSubmitAll | giouring.SetupCoopTaskrun | giouring.SetupTaskrunFlag |
		giouring.SetupSingleIssuer | giouring.SetupDeferTaskrun,
	giouring.SetupSubmitAll | giouring.SetupCoopTaskrun | giouring.SetupTaskrunFlag,
	giouring.SetupSubmitAll,
	0,
}

// requiredFeatures are the IORING_FEAT_* bits the backend relies on:
// EXT_ARG (5.11) for waiting with a timeout inside io_uring_enter (giouring's
// fallback for older kernels, a timeout SQE, is broken: it points the SQE at
// the wrong memory), NODROP (5.5) so that completions are never lost when
// the CQ ring is full, FAST_POLL (5.7) so that socket operations wait on
// readiness in the kernel instead of in worker threads.
var requiredFeatures = []struct {
	bit  uint32
	name string
}{
	{giouring.FeatExtArg, "IORING_FEAT_EXT_ARG (Linux 5.11)"},
	{giouring.FeatNoDrop, "IORING_FEAT_NODROP (Linux 5.5)"},
	{giouring.FeatFastPoll, "IORING_FEAT_FAST_POLL (Linux 5.7)"},
}

// ErrUnavailable is wrapped by every error that means io_uring cannot be used
// on this machine (as opposed to a configuration or resource error), so that a
// caller can fall back to another backend with errors.Is.
var ErrUnavailable = errors.New("io_uring unavailable")

// newRing creates a ring with the best flag set the kernel accepts (see
// setupAttempts) plus extra (e.g. IORING_SETUP_R_DISABLED). It returns the
// flags that were accepted, without extra.
func newRing(sq, cq, extra uint32) (*giouring.Ring, uint32, error) {
	var err error
	for _, flags := range setupAttempts {
		ring := giouring.NewRing()
		p := ringParams{
			flags:     flags | extra | giouring.SetupCQSize | giouring.SetupClamp,
			cqEntries: cq,
		}
		err = ring.QueueInitParams(sq, (*giouring.Params)(unsafe.Pointer(&p)))
		if err == nil {
			for _, f := range requiredFeatures {
				if p.features&f.bit == 0 {
					ring.QueueExit()
					return nil, 0, fmt.Errorf("%w: kernel lacks %s", ErrUnavailable, f.name)
				}
			}
			return ring, flags, nil
		}
		if !errors.Is(err, unix.EINVAL) {
			break
		}
	}
	return nil, 0, setupError(err)
}

// setupError explains an io_uring_setup failure.
func setupError(err error) error {
	switch {
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("%w: io_uring_setup: %w (kernel built without CONFIG_IO_URING, or too old)", ErrUnavailable, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		switch disabled := ioUringDisabled(); disabled {
		case "2":
			return fmt.Errorf("%w: io_uring_setup: %w: sysctl kernel.io_uring_disabled=2 disables io_uring for every process", ErrUnavailable, err)
		case "1":
			return fmt.Errorf("%w: io_uring_setup: %w: sysctl kernel.io_uring_disabled=1 allows io_uring only to CAP_SYS_ADMIN and members of kernel.io_uring_group", ErrUnavailable, err)
		default:
			return fmt.Errorf("%w: io_uring_setup: %w: blocked by a seccomp filter or LSM (Docker's and containerd's default seccomp profiles deny io_uring_setup; kernel.io_uring_disabled=%s)", ErrUnavailable, err, disabled)
		}
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w: io_uring_setup: %w (kernel too old for the flags asyncd needs)", ErrUnavailable, err)
	case errors.Is(err, unix.ENOMEM):
		return fmt.Errorf("io_uring_setup: %w (out of memory, or RLIMIT_MEMLOCK too low on kernels before 5.12)", err)
	}
	return fmt.Errorf("io_uring_setup: %w", err)
}

// ioUringDisabled returns the value of the kernel.io_uring_disabled sysctl
// (Linux 6.6+), or "absent" on older kernels.
func ioUringDisabled() string {
	b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	if err != nil {
		return "absent"
	}
	return strings.TrimSpace(string(b))
}

// opKind is the top byte of a request's user_data.
type opKind uint8

const (
	kindIgnored  opKind = iota // a CQE already handled out of order (see conn.quiesce)
	kindRecv                   // multishot recv on a connection
	kindSend                   // send of a connection's output
	kindPoll                   // error/hang-up poll on a paused connection
	kindShutdown               // shutdown(SHUT_WR) of a closing connection
	kindClose                  // close(2) of a connection
	kindCancel                 // async cancel; its result is not needed
	kindAccept                 // multishot readiness poll on a listener (see armAccept)
	kindWake                   // multishot poll on the loop's eventfd
)

// user_data layout: kind (8 bits) | generation (24 bits) | slot (32 bits).
// The slot indexes the loop's connection table; the generation is the
// connection's, so that a completion can never be taken for the connection
// that reused the slot (or the descriptor number) later.
const (
	kindShift = 56
	genShift  = 32
	genMask   = 1<<24 - 1
)

func userData(k opKind, gen, slot uint32) uint64 {
	return uint64(k)<<kindShift | uint64(gen&genMask)<<genShift | uint64(slot)
}

func udKind(ud uint64) opKind { return opKind(ud >> kindShift) }
func udGen(ud uint64) uint32  { return uint32(ud>>genShift) & genMask }
func udSlot(ud uint64) uint32 { return uint32(ud) }

// errnoOf turns a negative CQE result into an errno.
func errnoOf(res int32) syscall.Errno { return syscall.Errno(-res) }

// reap handles the completions in the CQ ring. Each one is copied and its
// slot released before it is handled, so that a handler that detaches a
// connection (quiesce) sees exactly the completions not yet handled.
func (l *eventLoop) reap() {
	for round := 0; round < reapRounds; round++ {
		// Sized to what is ready: giouring's PeekBatchCQE fills every
		// slot it is given, ready or not (a known upstream defect, see
		// its doc.go), which cost 256 pointer stores per reap. With none
		// ready it is not called at all: it would enter the kernel to
		// run pending completion work, which enter does.
		k := min(int(l.ring.CQReady()), len(l.batch))
		if k == 0 {
			return
		}
		n := int(l.ring.PeekBatchCQE(l.batch[:k]))
		for i := 0; i < n; i++ {
			e := l.batch[i]
			ud, res, flags := e.UserData, e.Res, e.Flags
			l.ring.CQAdvance(1)
			l.dispatch(ud, res, flags)
		}
		if n < len(l.batch) {
			return
		}
	}
}

func (l *eventLoop) dispatch(ud uint64, res int32, flags uint32) {
	switch k := udKind(ud); k {
	case kindWake:
		l.onWake(res, flags)
	case kindAccept:
		if i := udSlot(ud); int(i) < len(l.listeners) {
			l.onAccept(l.listeners[i], res, flags)
		}
	case kindRecv, kindSend, kindPoll, kindShutdown, kindClose:
		var c *conn
		if slot := udSlot(ud); int(slot) < len(l.conns) {
			c = l.conns[slot]
		}
		if c == nil || c.gen != udGen(ud) {
			// Cannot happen: a slot is freed only once its requests
			// completed. Still, never leak a buffer.
			if flags&giouring.CQEFBuffer != 0 {
				l.bufs.put(uint16(flags >> giouring.CQEBufferShift))
			}
			return
		}
		switch k {
		case kindRecv:
			l.onRecv(c, res, flags)
		case kindSend:
			l.onSend(c, res)
		case kindPoll:
			l.onPoll(c, res)
		case kindShutdown:
			l.onShutdown(c, res)
		case kindClose:
			l.onClose(c, res)
		}
	}
	// kindCancel: the cancelled request reports for itself.
	// kindIgnored: already handled by quiesce.
}

// sqe returns a free submission slot, submitting what is queued if the SQ
// ring is full. If the kernel refuses to take submissions, the loop ends
// with an error; the SQE returned then is a dummy that is never submitted.
func (l *eventLoop) sqe() *giouring.SubmissionQueueEntry {
	for try := 0; ; try++ {
		if e := l.ring.GetSQE(); e != nil {
			return e
		}
		if _, err := l.ring.Submit(); err != nil && try >= 100 {
			if l.fatal == nil {
				l.fatal = fmt.Errorf("io_uring: loop %d: submit: %w", l.idx, err)
			}
			return &l.spareSQE
		}
	}
}

// cancel submits an async cancel of the request with user_data ud.
func (l *eventLoop) cancel(ud uint64) {
	sqe := l.sqe()
	sqe.PrepareCancel64(ud, 0)
	sqe.UserData = userData(kindCancel, 0, 0)
}

// cancelOp cancels c's request of kind (op bit bit) unless already done.
func (l *eventLoop) cancelOp(c *conn, kind opKind, bit uint8) {
	if c.ops&bit != 0 && c.cancels&bit == 0 {
		c.cancels |= bit
		l.cancel(userData(kind, c.gen, c.slot))
	}
}
