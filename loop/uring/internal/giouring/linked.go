// MIT License
//
// Copyright (c) 2023 Paweł Gaczyński
//
// Permission is hereby granted, free of charge, to any person obtaining a
// copy of this software and associated documentation files (the
// "Software"), to deal in the Software without restriction, including
// without limitation the rights to use, copy, modify, merge, publish,
// distribute, sublicense, and/or sell copies of the Software, and to
// permit persons to whom the Software is furnished to do so, subject to
// the following conditions:
//
// The above copyright notice and this permission notice shall be included
// in all copies or substantial portions of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS
// OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
// MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.
// IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY
// CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT,
// TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
// SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

package giouring

// asyncd patch: upstream pulled syscall.mmap and syscall.munmap in with
// //go:linkname, which the Go 1.23+ linker rejects ("invalid reference to
// syscall.munmap") unless every build passes -ldflags=-checklinkname=0. These
// wrappers use golang.org/x/sys/unix instead and deal in unsafe.Pointer, so
// that no mapping address round-trips through uintptr (go vet clean).

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func mmap(length uintptr, prot int, flags int, fd int, offset int64) (unsafe.Pointer, error) {
	return unix.MmapPtr(fd, offset, nil, length, prot, flags)
}

func munmap(addr unsafe.Pointer, length uintptr) error {
	return unix.MunmapPtr(addr, length)
}
