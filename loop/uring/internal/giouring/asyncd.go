package giouring

import "sync/atomic"

// Accessors asyncd's loop needs to make io_uring_enter itself (see
// loop/uring enter): the SQ tail to publish, the descriptor or registered
// index to enter with, and the SQ flags. Not part of upstream.

// FlushSQ publishes the prepared SQEs to the kernel and returns how many
// are waiting to be submitted (liburing's __io_uring_flush_sq).
func (ring *Ring) FlushSQ() uint32 { return ring.internalFlushSQ() }

// EnterFd returns what io_uring_enter takes as its first argument and the
// flags that go with it: the registered ring index and
// EnterRegisteredRing after RegisterRingFd, else the ring's descriptor.
func (ring *Ring) EnterFd() (fd int, flags uint32) {
	if ring.intFlags&IntFlagRegRing != 0 {
		return ring.enterRingFd, EnterRegisteredRing
	}
	return ring.enterRingFd, 0
}

// SQFlags returns the SQ ring's flags word (IORING_SQ_TASKRUN,
// IORING_SQ_CQ_OVERFLOW, ...).
func (ring *Ring) SQFlags() uint32 { return atomic.LoadUint32(ring.sqRing.flags) }

// Features returns the IORING_FEAT_* word io_uring_setup reported.
func (ring *Ring) Features() uint32 { return ring.features }
