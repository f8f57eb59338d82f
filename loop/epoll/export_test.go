package epoll

// SetNetpollWait turns parking on the netpoller off or on for loops created
// afterwards, and returns the previous setting.
func SetNetpollWait(on bool) bool {
	old := netpollWait
	netpollWait = on
	return old
}
