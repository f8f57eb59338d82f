// Package giouring is a vendored, minimally patched copy of
// github.com/pawelgaczynski/giouring v0.0.0-20230826085535-69588b89acb9
// (MIT licence, see LICENSE), a Go port of liburing's ring helpers. asyncd's
// loop/uring backend is its only user; nothing else may import it.
//
// Why a copy: upstream's linked.go pulls syscall.mmap and syscall.munmap in
// with //go:linkname, and the Go 1.23+ linker refuses that reference
// ("invalid reference to syscall.munmap") unless every build and test passes
// -ldflags=-checklinkname=0. Upstream has had no release since 2023.
//
// Patches against upstream (everything else is byte-for-byte upstream, minus
// the tests and benchmarks):
//   - linked.go: mmap/munmap wrap golang.org/x/sys/unix.MmapPtr/MunmapPtr and
//     take and return unsafe.Pointer; setup.go and sys.go call sites adjusted.
//   - lib.go: CompletionQueueEvent.GetData removed (uint64 -> unsafe.Pointer).
//   - prepare.go: prepareRW also clears OpcodeFlags, Addr3 and the padding,
//     as liburing's io_uring_prep_rw does. Upstream left them from the SQ
//     slot's previous request, so a SHUTDOWN or CLOSE landing in a slot last
//     used by a SEND (MSG_NOSIGNAL) or POLL_ADD (its mask) failed with EINVAL:
//     no FIN after a response, and a leaked descriptor.
//   - register.go: UnregisterRingFd refused (EINVAL) exactly when a ring fd
//     was registered (its test was inverted against liburing's), so
//     QueueExit never unregistered it.
//   - asyncd.go (new): exported accessors FlushSQ, EnterFd, SQFlags and
//     Features, so that the loop can make its own io_uring_enter calls (a
//     raw system call when it does not wait, a minimum completion count of
//     its own).
//   - doc.go: this comment.
//
// Known upstream defects that asyncd works around rather than patches (keep
// the diff small): PrepareTimeout, PrepareLinkTimeout and
// PrepareTimeoutRemove/Update point the SQE at the wrong or a dead timespec;
// PeekBatchCQE computes pointers past the ready entries (only the returned
// count is valid); Params, GetEventsArg and Ring keep their fields
// unexported, so the features word and cq_entries are not reachable.
package giouring
