package supervisor

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// The serving process talks to its supervisor over a pipe (its descriptor
// is named by EnvStatusFD): one line per event.
const (
	msgReady     = "READY"     // the loops accept connections
	msgRecycle   = "RECYCLE"   // max_requests / max_worker_memory: replace me
	msgHeartbeat = "HEARTBEAT" // I am alive (sent every timeout/4)
	msgStuck     = "STUCK"     // a loop stopped answering: replace me
	msgNoAccept  = "NOACCEPT"  // my loops no longer accept (I drain)
)

// Environment variables the supervisor passes to a serving process. They
// use config.InternalEnvPrefix so that the config loader ignores them.
const (
	EnvServe      = "ASYNCD_INTERNAL_SERVE"      // "1": run as a serving process
	EnvStatusFD   = "ASYNCD_INTERNAL_STATUS_FD"  // descriptor of the status pipe
	EnvGeneration = "ASYNCD_INTERNAL_GENERATION" // generation number
	EnvReloads    = "ASYNCD_INTERNAL_RELOADS"
	EnvRestarts   = "ASYNCD_INTERNAL_RESTARTS"
	EnvUpgradeFD  = "ASYNCD_INTERNAL_UPGRADE_FD" // new supervisor tells the old one it is ready
	// EnvExternalFDs lists inherited sockets that systemd owns (a binary
	// upgrade passes it on): their unix socket files are never removed.
	EnvExternalFDs = "ASYNCD_INTERNAL_EXTERNAL_FDS"
)

// Status is the serving process's side of the status pipe.
type Status struct {
	mu sync.Mutex
	w  io.WriteCloser
}

// OpenStatus opens the status pipe named in the environment, or returns
// nil when the process was not started by a supervisor.
func OpenStatus() *Status {
	fd := os.Getenv(EnvStatusFD)
	if fd == "" {
		return nil
	}
	var n int
	if _, err := fmt.Sscanf(fd, "%d", &n); err != nil {
		return nil
	}
	return &Status{w: os.NewFile(uintptr(n), "status")}
}

func (s *Status) send(msg string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	io.WriteString(s.w, strings.ReplaceAll(msg, "\n", " ")+"\n") //nolint:errcheck // supervisor gone: nothing to do
}

// Ready tells the supervisor the loops accept connections.
func (s *Status) Ready() { s.send(msgReady) }

// Recycle asks the supervisor for a replacement (and a drain of this one).
func (s *Status) Recycle(reason string) { s.send(msgRecycle + " " + reason) }

// Stuck reports a loop that stopped answering.
func (s *Status) Stuck(loop int, since time.Duration) {
	s.send(fmt.Sprintf("%s loop %d for %s", msgStuck, loop, since.Round(time.Millisecond)))
}

// NoAccept tells the supervisor that the loops no longer accept
// connections: once every serving process of a stopping instance has said
// so, the supervisor closes the listening sockets for good.
func (s *Status) NoAccept() { s.send(msgNoAccept) }

// Heartbeat runs until stop is closed, sending a heartbeat every interval.
func (s *Status) Heartbeat(interval time.Duration, stop <-chan struct{}) {
	if s == nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.send(msgHeartbeat)
		}
	}
}

// childEvent is one line from a serving process.
type childEvent struct {
	kind string
	arg  string
}

// readStatus reads a child's status lines until EOF.
func readStatus(r io.Reader, events chan<- childEvent) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		kind, arg, _ := strings.Cut(line, " ")
		events <- childEvent{kind: kind, arg: arg}
	}
	close(events)
}
