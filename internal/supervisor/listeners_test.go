package supervisor

import (
	"errors"
	"net"
	"os/exec"
	"syscall"
	"testing"
)

// sleeper is a generation whose process is a sleep, for signal tests.
func sleeper(t *testing.T, draining bool) *generation {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
	return &generation{cmd: cmd, draining: draining, cfg: testSupervisor(t).cfg}
}

// TestStopSignalsReplacedGenerations: SIGTERM reaches every serving
// process, those a reload already replaced included (they answered
// readiness for the instance; now it stops).
func TestStopSignalsReplacedGenerations(t *testing.T) {
	s := testSupervisor(t)
	cur, old := sleeper(t, false), sleeper(t, true)
	s.cur, s.draining = cur, []*generation{old}
	s.stop(false)
	for name, g := range map[string]*generation{"current": cur, "replaced": old} {
		err := g.cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("%s generation: %v, want killed by SIGTERM", name, err)
		}
	}
}

// TestCloseListeners: a stopping supervisor shuts its sockets down once
// every serving process stopped accepting, not before, and never sockets
// from systemd or after handing over to an upgraded supervisor.
func TestCloseListeners(t *testing.T) {
	for _, tc := range []struct {
		name       string
		noAccept   bool
		handedOver bool
		external   bool
		refused    bool
	}{
		{"every process stopped accepting", true, false, false, true},
		{"a process still accepts", false, false, false, false},
		{"handed over", true, true, false, false},
		{"systemd's socket", true, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSupervisor(t, "127.0.0.1:0")
			g := sleeper(t, true)
			g.noAccept = tc.noAccept
			s.draining = []*generation{g}
			s.stopping, s.handedOver = true, tc.handedOver
			if tc.external {
				s.external[s.sockets.Sockets[0].File] = true
			}
			s.closeListeners()
			c, err := net.Dial("tcp", s.sockets.Addrs()[0])
			if err == nil {
				c.Close()
			}
			if refused := errors.Is(err, syscall.ECONNREFUSED); refused != tc.refused {
				t.Errorf("refused = %v (%v), want %v", refused, err, tc.refused)
			}
		})
	}
}
