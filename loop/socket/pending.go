package socket

import (
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// PendingError returns the socket's pending error (SO_ERROR), or io.EOF if
// none: why a socket reported a hang-up.
func PendingError(fd int) error {
	if e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
		return fmt.Errorf("socket: %w", unix.Errno(e))
	}
	return io.EOF
}

// InputQueued reports whether bytes wait in a connected socket's receive
// queue: a non-blocking one-byte MSG_PEEK, which leaves them there. A
// peer's EOF, a reset or any other error is nothing queued: closing such a
// connection loses no request. It is for rare decisions (closing an idle
// connection), not for the read path.
func InputQueued(fd int) bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == nil && n > 0
}
