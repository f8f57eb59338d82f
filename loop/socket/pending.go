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
