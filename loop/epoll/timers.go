package epoll

import "github.com/asyncd/asyncd/loop"

// timers runs what is due: OnTick and the closing-connection deadlines at
// each tick, and listener re-arms after an accept back-off.
func (l *eventLoop) timers() {
	if l.nowNs >= l.nextTick {
		l.nextTick = l.nowNs + l.tick
		l.h.OnTick(l.idx, l.now)
		l.flushClosed()
		l.expire()
	}
	for _, ln := range l.listeners {
		if !ln.armed && !ln.stopped && ln.rearmAt <= l.nowNs {
			if err := l.arm(ln); err != nil {
				l.s.LogAcceptError(l.now, l.idx, ln.Addr, err)
				ln.rearmAt = l.nowNs + l.backoff
			}
		}
	}
}

// expire closes connections whose drain or linger deadline passed.
func (l *eventLoop) expire() {
	j := 0
	for _, c := range l.timed {
		switch {
		case c.flags&fClosed != 0:
			c.flags &^= fTimed
		case l.nowNs >= c.deadline:
			c.flags &^= fTimed
			if c.flags&fLinger != 0 {
				l.closeNow(c, nil) // response sent; the peer just kept talking
			} else {
				l.closeNow(c, loop.ErrDrainTimeout)
			}
		default:
			l.timed[j] = c
			j++
		}
	}
	clear(l.timed[j:])
	l.timed = l.timed[:j]
	l.flushClosed()
}

func (l *eventLoop) addTimed(c *conn) {
	if c.flags&fTimed == 0 {
		c.flags |= fTimed
		l.timed = append(l.timed, c)
	}
}
