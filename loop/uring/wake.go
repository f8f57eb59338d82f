package uring

import (
	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/internal/server"
	"github.com/asyncd/asyncd/loop/uring/internal/giouring"
)

// armWake arms a multishot poll on the eventfd: a write from any goroutine
// completes it and so ends the loop's wait.
func (l *eventLoop) armWake() {
	sqe := l.sqe()
	sqe.PreparePollMultishot(l.wakes.FD(), unix.POLLIN)
	sqe.UserData = userData(kindWake, 0, 0)
	l.wakeArmed = true
	l.inflight++
}

func (l *eventLoop) onWake(res int32, flags uint32) {
	if flags&giouring.CQEFMore == 0 {
		l.wakeArmed = false
		l.inflight--
		// Re-armed at once unless stopping or failing (then at the next
		// tick, so that a persistent error cannot spin the loop).
		if !l.stopping && res >= 0 {
			l.armWake()
		}
	}
	if res > 0 {
		l.wakes.Reset()
	} else if res < 0 && errnoOf(res) != unix.ECANCELED {
		l.s.Cfg.Logger.Error("io_uring eventfd poll failed", "loop", l.idx, "err", errnoOf(res))
	}
}

// drainWakes runs commands first, then OnWake for each connection that
// asked.
func (l *eventLoop) drainWakes() {
	cmds, batch := l.wakes.Take()
	if cmds&server.CmdStopAccepting != 0 {
		l.stopAccepting()
	}
	if cmds&server.CmdStop != 0 && !l.stopping {
		l.beginStop()
	}
	for _, c := range batch {
		// A closed connection is dead, not queued: skipped.
		if c.wake.Claim() {
			l.h.OnWake(c)
		}
	}
	l.wakes.Done(batch)
}

// Command sends cmd to the loop; any goroutine.
func (l *eventLoop) Command(cmd server.Cmd) { l.wakes.Command(cmd) }
