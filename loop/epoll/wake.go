package epoll

import "github.com/asyncd/asyncd/loop/internal/server"

// drainWakes handles the eventfd: commands first, then OnWake for each
// connection that asked.
func (l *eventLoop) drainWakes() {
	l.wakes.Reset()
	cmds, batch := l.wakes.Take()
	if cmds&server.CmdStopAccepting != 0 {
		for _, ln := range l.listeners {
			ln.stopped = true
			l.disarm(ln)
		}
	}
	if cmds&server.CmdStop != 0 {
		l.stopping = true
	}
	for _, c := range batch {
		// A closed connection is dead, not queued: skipped.
		if c.wake.Claim() {
			l.h.OnWake(c)
			l.flushClosed()
		}
	}
	l.wakes.Done(batch)
}

// Command sends cmd to the loop; any goroutine.
func (l *eventLoop) Command(cmd server.Cmd) { l.wakes.Command(cmd) }
