package supervisor

import (
	"github.com/asyncd/asyncd/internal/bind"
	"golang.org/x/sys/unix"
)

// closeListeners closes the listening sockets for good once the instance
// stops and no serving process accepts any more (each said NOACCEPT, or
// exited), as Gunicorn closes its listeners on a graceful stop: a new
// connection is then refused at once (ECONNREFUSED), and a load balancer
// or client retries elsewhere, instead of waiting in an accept queue no
// one reads until the last request drained and being reset then.
//
// The supervisor, each serving process and its loops hold copies of every
// socket (one per SO_REUSEPORT group member), and draining processes keep
// theirs until they exit: shutdown(2) acts on the socket itself, whatever
// holds it. A TCP listener then refuses new connections and resets those
// still queued; a unix one refuses new connections, and the ones queued
// before the shutdown are accepted here and closed. Sockets from systemd
// are left listening: systemd holds them for the next start (stop the
// .socket unit to refuse connections). Never after handing over to an
// upgraded supervisor, which serves on the same sockets, nor while an
// upgrade this one started runs (that supervisor closes them itself when
// it stops).
func (s *Supervisor) closeListeners() {
	if !s.stopping || s.handedOver || s.listenersClosed || s.upgrader != nil {
		return
	}
	for _, g := range s.live() {
		if !g.noAccept {
			return
		}
	}
	s.listenersClosed = true
	var closed []string
	for _, k := range append(append([]bind.Socket{}, s.sockets.Sockets...), s.retired...) {
		if s.external[k.File] {
			continue
		}
		fd := int(k.File.Fd())
		if err := unix.Shutdown(fd, unix.SHUT_RDWR); err != nil {
			s.log.Warn("cannot close the listening socket", "bind", k.Addr.Spec, "error", err.Error())
			continue
		}
		if k.Addr.Kind == bind.Unix {
			refuseQueued(fd)
		}
		if len(closed) == 0 || closed[len(closed)-1] != k.Addr.Spec {
			closed = append(closed, k.Addr.Spec)
		}
	}
	if len(closed) > 0 {
		s.log.Info("listening sockets closed: new connections are refused", "bind", closed)
	}
}

// refuseQueued closes the connections queued on a unix listener that was
// shut down (shutdown(2) does not reset them, as it does for TCP).
func refuseQueued(fd int) {
	if unix.SetNonblock(fd, true) != nil {
		return
	}
	for {
		c, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		unix.Close(c)
	}
}
