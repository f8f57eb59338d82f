package epoll

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/asyncd/asyncd/loop/internal/server"
	"github.com/asyncd/asyncd/loop/socket"
)

// acceptBatch is the most accepts per listener readiness, so that one busy
// listener cannot starve the loop.
const acceptBatch = 128

// listenerState is one loop's view of one listener; loop goroutine only.
type listenerState struct {
	server.Listener
	tag     int32 // epoll data tag
	armed   bool  // registered in this loop's epoll set
	stopped bool  // StopAccepting: never re-armed
	rearmAt int64 // loop clock (ns) at which a backed-off listener is re-armed
}

// arm adds the listener to the loop's epoll set, level-triggered and not
// EPOLLEXCLUSIVE. The supervisor hands the same listening socket to every
// generation, so a waiter must never keep a connection's wake-up from the
// others: an exclusive epoll entry ends the wake-up when a thread sleeps in
// epoll_wait on its set (fs/eventpoll.c, ep_poll_callback), and a loop
// woken that way that then cannot run (its process stopped between the
// wake-up and the accept) would leave the connection queued with no other
// server woken for it (issue 17). A loop parked on the netpoller (wait.go)
// never sleeps in epoll_wait on its own set, so there the flag never had
// an effect: every loop polling a shared socket is woken anyway.
func (l *eventLoop) arm(ln *listenerState) error {
	l.ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ln.FD), Pad: ln.tag}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ln.FD, &l.ev); err != nil {
		return fmt.Errorf("epoll_ctl add listener %s: %w", ln.Addr, err)
	}
	ln.armed = true
	return nil
}

func (l *eventLoop) disarm(ln *listenerState) {
	if !ln.armed {
		return
	}
	ln.armed = false
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ln.FD, nil); err != nil {
		l.s.Cfg.Logger.Error("epoll_ctl del listener", "loop", l.idx, "listener", ln.Addr, "err", err)
	}
}

func (l *eventLoop) accept(ln *listenerState) {
	for i := 0; i < acceptBatch && ln.armed; i++ {
		if !l.s.Accepting() { // see server.Server.noAccept
			return
		}
		fd, drained, err := socket.AcceptNext(ln.FD, &l.rsa)
		if drained {
			return
		}
		if err != nil {
			// Out of descriptors or memory: the connection stays queued,
			// so level-triggered readiness would spin. Stop listening
			// here for a while; existing connections carry on.
			l.s.LogAcceptError(l.now, l.idx, ln.Addr, err)
			l.disarm(ln)
			ln.rearmAt = l.nowNs + l.backoff
			return
		}
		l.open(fd, ln)
	}
}

func (l *eventLoop) open(fd int, ln *listenerState) {
	c := &conn{l: l, fd: fd, mask: unix.EPOLLIN | unix.EPOLLRDHUP}
	c.local = ln.Local
	if !ln.Unix {
		// Best effort: a failure only costs latency.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c.remote = socket.AddrPortFrom(&l.rsa)
	}
	if l.gen++; l.gen <= 0 {
		l.gen = 1
	}
	c.gen = l.gen
	l.ev = unix.EpollEvent{Events: c.mask, Fd: int32(fd), Pad: c.gen}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &l.ev); err != nil {
		unix.Close(fd)
		l.s.LogAcceptError(l.now, l.idx, ln.Addr, fmt.Errorf("epoll_ctl add conn: %w", err))
		return
	}
	if fd >= len(l.conns) {
		grown := make([]*conn, max(fd+1, 2*len(l.conns), 1024))
		copy(grown, l.conns)
		l.conns = grown
	}
	l.conns[fd] = c
	l.nconns.Add(1)
	l.h.OnOpen(c)
	l.flushClosed()
}
