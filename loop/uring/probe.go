package uring

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

// ProbeFailEnv is the environment variable that makes Probe fail: when it is
// set to a non-empty reason, Probe returns an error wrapping ErrUnavailable
// that quotes the reason, without touching the kernel. It exists so that
// tests (and operators) can exercise the fallback to another backend on a
// machine where io_uring works, e.g.
//
//	ASYNCD_INTERNAL_IOURING_PROBE_FAIL="simulated seccomp" asyncd -c asyncd.yaml
//
// Its name carries config.InternalEnvPrefix because every other ASYNCD_
// variable must name a setting: the config loader would refuse it. The
// supervisor passes it on (Env) to the serving processes, where the backend
// is chosen, and to the new supervisor of a binary upgrade.
const ProbeFailEnv = "ASYNCD_INTERNAL_IOURING_PROBE_FAIL"

// Env names ProbeFailEnv (loop.EnvReader), so that the supervisor passes it
// on.
func (Backend) Env() []string { return []string{ProbeFailEnv} }

// requiredOps are the io_uring opcodes the backend submits, checked with
// IORING_REGISTER_PROBE. It is a variable so that tests can add an opcode the
// kernel lacks.
var requiredOps = []struct {
	op   uint8
	name string
}{
	{giouring.OpRecv, "IORING_OP_RECV"},
	{giouring.OpSend, "IORING_OP_SEND"},
	{giouring.OpPollAdd, "IORING_OP_POLL_ADD"},
	{giouring.OpShutdown, "IORING_OP_SHUTDOWN"},
	{giouring.OpClose, "IORING_OP_CLOSE"},
	{giouring.OpAsyncCancel, "IORING_OP_ASYNC_CANCEL"},
}

// probeTimeout bounds the functional check's wait for its completion.
const probeTimeout = 2 * time.Second

// Probe reports why the io_uring backend cannot run here, or nil. It sets up
// a small ring with the same flags New would use (falling back the same way),
// checks the kernel features and, with IORING_REGISTER_PROBE, every opcode the
// backend submits, then runs the one thing an opcode probe cannot see: a
// multishot receive (Linux 6.0) into a registered provided-buffer ring (5.19)
// over a socketpair, and a synchronous cancel (IORING_REGISTER_SYNC_CANCEL,
// 6.0) of it. Errors that mean "io_uring is not usable here" wrap
// ErrUnavailable and name the reason: io_uring_setup denied by seccomp
// (EPERM, e.g. Docker's default profile) or by kernel.io_uring_disabled, a
// kernel without io_uring (ENOSYS), a missing feature or opcode by name.
// See ProbeFailEnv for forcing a failure.
func (Backend) Probe() error {
	if reason := os.Getenv(ProbeFailEnv); reason != "" {
		return fmt.Errorf("%w: forced by %s=%q", ErrUnavailable, ProbeFailEnv, reason)
	}
	// SINGLE_ISSUER binds the ring to the thread that creates it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ring, _, err := newRing(8, 16, 0)
	if err != nil {
		return fmt.Errorf("io_uring: %w", err)
	}
	defer ring.QueueExit()
	probe, err := ring.GetProbeRing()
	if err != nil {
		return fmt.Errorf("io_uring: %w: IORING_REGISTER_PROBE: %v (needs Linux 5.6)", ErrUnavailable, err)
	}
	for _, op := range requiredOps {
		if !probe.IsSupported(op.op) {
			return fmt.Errorf("io_uring: %w: kernel does not support %s (opcode %d)", ErrUnavailable, op.name, op.op)
		}
	}
	if err := probeMultishotRecv(ring); err != nil {
		return fmt.Errorf("io_uring: %w", err)
	}
	return nil
}

// probeMultishotRecv arms a multishot receive with buffer selection on one end
// of a socketpair, writes a byte into the other, and checks that the byte
// arrives in a provided buffer with the multishot still armed; then cancels
// it synchronously.
func probeMultishotRecv(ring *giouring.Ring) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("probe socketpair: %w", err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	br, err := newBufRing(ring, 2, 64)
	if err != nil {
		return err
	}
	// Unregister before unmapping; QueueExit would drop it too, but only
	// after the deferred munmap.
	defer br.unmap()
	defer ring.UnregisterBufferRing(bufGroup)

	const ud = 1
	sqe := ring.GetSQE()
	sqe.PrepareRecvMultishot(fds[0], 0, 0, 0)
	sqe.Flags |= giouring.SqeBufferSelect
	sqe.BufIG = bufGroup
	sqe.UserData = ud
	if _, err := ring.Submit(); err != nil {
		return fmt.Errorf("probe submit recv: %w", err)
	}
	if _, err := unix.Write(fds[1], []byte{'x'}); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	res, flags, err := probeWait(ring)
	if err != nil {
		return fmt.Errorf("%w: multishot recv: %v", ErrUnavailable, err)
	}
	switch {
	case res == -int32(unix.EINVAL):
		return fmt.Errorf("%w: multishot recv with provided buffers rejected (EINVAL; needs Linux 6.0)", ErrUnavailable)
	case res < 0:
		return fmt.Errorf("%w: multishot recv: %v", ErrUnavailable, errnoOf(res))
	case res != 1 || flags&giouring.CQEFBuffer == 0:
		return fmt.Errorf("%w: multishot recv: got %d bytes, flags %#x; want 1 byte in a provided buffer", ErrUnavailable, res, flags)
	case flags&giouring.CQEFMore == 0:
		return fmt.Errorf("%w: multishot recv ended after one completion (IORING_CQE_F_MORE unset; needs Linux 6.0)", ErrUnavailable)
	}
	reg := giouring.SyncCancelReg{Addr: ud, Timeout: syscall.NsecToTimespec(int64(probeTimeout))}
	if _, err := ring.RegisterSyncCancel(&reg); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("%w: IORING_REGISTER_SYNC_CANCEL: %v (needs Linux 6.0)", ErrUnavailable, err)
		}
		return fmt.Errorf("%w: IORING_REGISTER_SYNC_CANCEL: %v", ErrUnavailable, err)
	}
	// The cancelled receive's last completion.
	if _, _, err := probeWait(ring); err != nil {
		return fmt.Errorf("%w: cancelled multishot recv: %v", ErrUnavailable, err)
	}
	return nil
}

// probeWait returns the next completion's result and flags, polling for at
// most probeTimeout. It polls rather than letting io_uring_enter wait with a
// timeout because giouring passes the kernel the timespec's address as an
// integer, which is only safe for memory that cannot move (a goroutine stack
// can); the event loop keeps its timespec in a heap object instead.
func probeWait(ring *giouring.Ring) (int32, uint32, error) {
	deadline := time.Now().Add(probeTimeout)
	for {
		// Run deferred completion work (IORING_SETUP_DEFER_TASKRUN).
		if _, err := ring.GetEvents(); err != nil && !errors.Is(err, unix.EINTR) {
			return 0, 0, fmt.Errorf("io_uring_enter: %w", err)
		}
		if cqe, err := ring.PeekCQE(); err == nil && cqe != nil {
			res, flags := cqe.Res, cqe.Flags
			ring.CQESeen(cqe)
			return res, flags, nil
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("no completion within %v", probeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}
