package socket

import (
	"math/bits"
	"sync"
)

// Buffer size classes are powers of two from 1<<minShift to 1<<maxShift.
// Small leftovers (a partial request head) are the common case, so the
// smallest class is 512 bytes; larger requests are served by allocation and
// dropped on Put, so that one huge response cannot pin memory in the pool.
const (
	minShift = 9  // 512 B
	maxShift = 22 // 4 MiB
)

// MaxPooled is the largest buffer capacity the pool keeps.
const MaxPooled = 1 << maxShift

var pools [maxShift - minShift + 1]sync.Pool

// classOf returns the size class for n bytes, or -1 above MaxPooled.
func classOf(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	if n > MaxPooled {
		return -1
	}
	return bits.Len(uint(n-1)) - minShift
}

// GetBuffer returns an empty buffer (len 0) with capacity of at least n.
// Pointers are handed out (rather than slices) so that Put and Get do not
// allocate. Release it with PutBuffer when it is no longer referenced.
func GetBuffer(n int) *[]byte {
	c := classOf(n)
	if c < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	if v := pools[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 1<<(c+minShift))
	return &b
}

// PutBuffer returns b to the pool. Buffers that did not come from GetBuffer's
// size classes (or exceed MaxPooled) are dropped for the GC. b must not be
// used after the call. A nil b is ignored.
func PutBuffer(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	if c < 1<<minShift || c > MaxPooled || c&(c-1) != 0 {
		return
	}
	*b = (*b)[:0]
	pools[bits.Len(uint(c))-1-minShift].Put(b)
}

// AppendBuffer appends p to b, moving the contents to a larger pooled buffer
// (and releasing the old one) when b is full. b may be nil. It returns the
// buffer now holding the data, which may differ from b.
func AppendBuffer(b *[]byte, p []byte) *[]byte {
	if b == nil {
		b = GetBuffer(len(p))
		*b = append(*b, p...)
		return b
	}
	need := len(*b) + len(p)
	if need <= cap(*b) {
		*b = append(*b, p...)
		return b
	}
	// Grow at least 2x so that appending in small pieces stays linear even
	// above MaxPooled, where classes no longer round sizes up.
	nb := GetBuffer(max(need, 2*cap(*b)))
	*nb = append(append(*nb, *b...), p...)
	PutBuffer(b)
	return nb
}

// ShrinkBuffer moves the contents of b into a smaller pooled buffer when b's
// capacity is at least four times what it holds, so that a connection whose
// backlog was consumed does not keep a large buffer while idle. It returns the
// buffer now holding the data.
func ShrinkBuffer(b *[]byte) *[]byte {
	if b == nil || cap(*b) <= 1<<minShift || cap(*b) < 4*len(*b) {
		return b
	}
	nb := GetBuffer(len(*b))
	*nb = append(*nb, *b...)
	PutBuffer(b)
	return nb
}
