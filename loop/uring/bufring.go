package uring

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

// bufRing is a provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19):
// receives pick a buffer from it in the kernel, and the loop gives each
// buffer back as soon as it has handed the bytes on.
//
// Memory rule: both the ring entries and the buffers are mmap'd, outside the
// Go heap, because the kernel writes into them at any time while a receive
// is armed; they are unmapped only after the ring has been torn down with no
// request in flight (see eventLoop.destroy). Loop goroutine only, on the
// Go side.
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
