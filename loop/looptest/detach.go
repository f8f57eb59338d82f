package looptest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/asyncd/asyncd/loop"
)

func testDetach(t *testing.T, b loop.Backend) {
	tests := []struct {
		name   string
		fromOn string // callback that detaches
	}{{"fromOnRead", "read"}, {"fromOnWake", "wake"}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t)
			took := make(chan error, 1)
			takeOver := func(c loop.Conn, drop int) {
				f, unread, err := c.Detach()
				if err != nil {
					took <- err
					return
				}
				if c.Wake() {
					h.t.Errorf("Wake after Detach returned true")
				}
				go func() { // the handler owns the socket now
					defer f.Close()
					nc, err := net.FileConn(f)
					if err != nil {
						took <- err
						return
					}
					defer nc.Close()
					if _, err := fmt.Fprintf(nc, "detached:%s\n", unread[drop:]); err != nil {
						took <- err
						return
					}
					took <- nil
					io.Copy(nc, nc)
				}()
			}
			h.onRead = func(c loop.Conn, in []byte) int {
				if !bytes.HasPrefix(in, []byte("DETACH\n")) {
					if st(c).v != nil {
						return 0
					}
					return echoLines(c, in)
				}
				if tc.fromOn == "read" {
					// During OnRead, unread is all of in: nothing is
					// consumed until OnRead returns.
					takeOver(c, len("DETACH\n"))
					return 0
				}
				st(c).v = true
				c.PauseRead()
				return len("DETACH\n")
			}
			h.onWake = func(c loop.Conn) { takeOver(c, 0) }
			s := start(t, b, h, setup{})
			c := s.dial(t)
			sc := s.nextOpen(t)
			write(t, c, "hi\n")
			expect(t, c, "hi\n")
			write(t, c, "DETACH\nextra")
			if tc.fromOn == "wake" {
				waitFor(t, "the request", func() bool { return st(sc).reads.Load() >= 2 })
				sc.Wake()
			}
			if err := <-took; err != nil {
				t.Fatalf("take-over: %v", err)
			}
			expect(t, c, "detached:extra\n")
			write(t, c, "more")
			expect(t, c, "more")
			waitFor(t, "Conns back to 0", func() bool { return s.totalConns() == 0 })
			c.Close()
			time.Sleep(short)
			if n := h.closes.Load(); n != 0 {
				t.Errorf("OnClose called %d times for a detached connection", n)
			}
		})
	}
}
