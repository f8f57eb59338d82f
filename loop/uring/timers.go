package uring

import "github.com/asyncd/asyncd/loop"

func (l *eventLoop) addTimed(c *conn) {
	if !c.timed {
		c.timed = true
		l.timed = append(l.timed, c)
	}
}

// timers runs what is due: OnTick and the closing-connection deadlines at
// each tick, and listener re-arms after an accept back-off.
func (l *eventLoop) timers() {
	if l.nowNs >= l.nextTick {
		l.nextTick = l.nowNs + l.tick
		l.h.OnTick(l.idx, l.now)
		l.expire()
		if !l.wakeArmed && !l.stopping {
			l.armWake()
		}
	}
	for _, ln := range l.listeners {
		if ln.rearmAt != 0 && ln.rearmAt <= l.nowNs && !ln.armed {
			ln.rearmAt = 0
			if !ln.stopped && !l.stopping {
				l.armAccept(ln)
			}
		}
	}
}

// expire closes connections whose drain or linger deadline passed.
func (l *eventLoop) expire() {
	j := 0
	for _, c := range l.timed {
		switch {
		case c.state != stClosing && c.state != stLinger:
			c.timed = false
		case l.nowNs >= c.deadline:
			c.timed = false
			if c.state == stClosing && c.err == nil {
				c.err = loop.ErrDrainTimeout
			}
			l.finish(c) // lingering: the response was sent, the peer just kept talking
		default:
			l.timed[j] = c
			j++
		}
	}
	clear(l.timed[j:])
	l.timed = l.timed[:j]
}
