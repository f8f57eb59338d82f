package supervisor

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// notifier speaks systemd's sd_notify protocol when NOTIFY_SOCKET is set.
type notifier struct {
	addr     string
	watchdog time.Duration
}

func newNotifier() *notifier {
	n := &notifier{addr: os.Getenv("NOTIFY_SOCKET")}
	if us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64); err == nil && us > 0 {
		pid := os.Getenv("WATCHDOG_PID")
		if pid == "" || pid == strconv.Itoa(os.Getpid()) {
			n.watchdog = time.Duration(us) * time.Microsecond
		}
	}
	return n
}

// send sends one notification; it is a no-op outside systemd.
func (n *notifier) send(state string) error {
	if n == nil || n.addr == "" {
		return nil
	}
	addr := n.addr
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr, err)
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// reloading sends RELOADING=1 with the monotonic timestamp systemd's
// Type=notify-reload wants.
func (n *notifier) reloading() error {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := ts.Sec*1e6 + ts.Nsec/1e3
	return n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", usec))
}

// listenFDs returns the descriptors systemd passed for socket activation
// (LISTEN_FDS, LISTEN_PID) and unsets the variables so children do not
// take them for their own.
func listenFDs() []*os.File {
	defer func() {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}()
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	var out []*os.File
	for i := 0; i < n; i++ {
		fd := 3 + i
		unix.CloseOnExec(fd)
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		out = append(out, os.NewFile(uintptr(fd), name))
	}
	return out
}
