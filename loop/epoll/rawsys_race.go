//go:build race

package epoll

import "golang.org/x/sys/unix"

// Race-detector builds: the loop's reads and writes through x/sys/unix,
// which annotate them for the detector (see rawsys.go for why the normal
// build uses raw system calls).

func rawRead(fd int, p []byte) (int, error)  { return unix.Read(fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return unix.Write(fd, p) }
func pollNow(epfd int, events []unix.EpollEvent) (int, error) {
	return unix.EpollWait(epfd, events, 0)
}
