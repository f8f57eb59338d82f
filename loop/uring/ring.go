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

// bufRing is a provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19):
// receives pick a buffer from it in the kernel, and the loop gives each
// buffer back as soon as it has handed the bytes on.
//
// Memory rule: both the ring entries and the buffers are mmap'd, outside the
// Go heap, because the kernel writes into them at any time while a receive
// is armed; they are unmapped only after the ring has been torn down with no
// request in flight (see eventLoop.destroy).
type bufRing struct {
	entries []byte // struct io_uring_buf[n], shared with the kernel
	bufs    []byte // n buffers of size bytes
	br      *giouring.BufAndRing
	size    int
	mask    int
}

// newBufRing maps n buffers of size bytes and registers them with ring as
// buffer group bufGroup. n must be a power of two.
func newBufRing(ring *giouring.Ring, n, size int) (*bufRing, error) {
	b := &bufRing{size: size, mask: n - 1}
	var err error
	esz := n * int(unsafe.Sizeof(giouring.BufAndRing{}))
	b.entries, err = unix.Mmap(-1, 0, esz, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("mmap buffer ring: %w", err)
	}
	b.bufs, err = unix.Mmap(-1, 0, n*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		unix.Munmap(b.entries)
		return nil, fmt.Errorf("mmap %d receive buffers of %d bytes: %w", n, size, err)
	}
	b.br = (*giouring.BufAndRing)(unsafe.Pointer(&b.entries[0]))
	b.br.BufRingInit()
	for i := 0; i < n; i++ {
		b.br.BufRingAdd(b.addr(uint16(i)), uint32(size), uint16(i), b.mask, i)
	}
	b.br.BufRingAdvance(n)
	reg := giouring.BufReg{
		RingAddr:    uint64(uintptr(unsafe.Pointer(&b.entries[0]))),
		RingEntries: uint32(n),
		Bgid:        bufGroup,
	}
	if _, err := ring.RegisterBufferRing(&reg, 0); err != nil {
		b.unmap()
		if errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("%w: IORING_REGISTER_PBUF_RING: %v (needs Linux 5.19)", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("register buffer ring: %w", err)
	}
	return b, nil
}

func (b *bufRing) addr(bid uint16) uintptr {
	return uintptr(unsafe.Pointer(&b.bufs[int(bid)*b.size]))
}

// data returns the n bytes a receive put into buffer bid.
func (b *bufRing) data(bid uint16, n int) []byte {
	off := int(bid) * b.size
	return b.bufs[off : off+n : off+b.size]
}

// put gives buffer bid back to the kernel.
func (b *bufRing) put(bid uint16) {
	b.br.BufRingAdd(b.addr(bid), uint32(b.size), bid, b.mask, 0)
	b.br.BufRingAdvance(1)
}

func (b *bufRing) unmap() {
	unix.Munmap(b.bufs)
	unix.Munmap(b.entries)
	b.bufs, b.entries, b.br = nil, nil, nil
}

// errnoOf turns a negative CQE result into an errno.
func errnoOf(res int32) syscall.Errno { return syscall.Errno(-res) }
