package reliability_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/loop"
	"github.com/asyncd/asyncd/loop/epoll"
	"github.com/asyncd/asyncd/loop/looptest"
	"github.com/asyncd/asyncd/loop/socket"
	"github.com/asyncd/asyncd/loop/uring"
)

// serverChildEnv makes the re-executed test binary play a server instead
// of running tests: its value names the backend. The EMFILE test runs the
// server in a child so that the low descriptor limit applies to the server
// only, not to the test's clients.
const serverChildEnv = "ASYNCDTEST_RELIABILITY_SERVER"

// childRoomEnv is how many descriptors the child server keeps free for
// connections once it set its limit.
const childRoomEnv = "ASYNCDTEST_RELIABILITY_FD_ROOM"

func TestMain(m *testing.M) {
	if name := os.Getenv(serverChildEnv); name != "" {
		if err := serveChild(name); err != nil {
			fmt.Fprintf(os.Stderr, "child server: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveChild runs an HTTP server (the engine on the named backend) on a
// fresh loopback port, prints "ADDR <addr>" on stdout once it accepts
// with RLIMIT_NOFILE lowered to leave room descriptors free, and serves
// until its stdin closes.
func serveChild(backend string) error {
	var b loop.Backend
	switch backend {
	case "epoll":
		b = epoll.Backend{}
	case "io_uring":
		b = uring.Backend{}
	default:
		return fmt.Errorf("unknown backend %q", backend)
	}
	room, err := strconv.Atoi(os.Getenv(childRoomEnv))
	if err != nil || room <= 0 {
		return fmt.Errorf("%s: want a positive number, got %q", childRoomEnv, os.Getenv(childRoomEnv))
	}
	r, err := engine.NewRouter([]*engine.Route{{Path: "/", Handler: engine.HandlerFunc(func(c *engine.Ctx) {
		c.WriteString("ok") //nolint:errcheck
	})}})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	e, err := engine.New(engine.Config{Router: r, Loops: 2, KeepAlive: time.Minute, Logger: log})
	if err != nil {
		return err
	}
	f, err := socket.Listen("tcp4", "127.0.0.1:0", false, 1024)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer f.Close()
	ap, err := socket.FileAddrPort(f)
	if err != nil {
		return err
	}
	srv, err := b.New(loop.Config{Loops: 2, Handler: e, Logger: log,
		Listeners: []loop.Listener{{File: f, Addr: ap.String(), Loop: -1}}})
	if err != nil {
		return fmt.Errorf("backend %s: %w", backend, err)
	}
	// The limit is lowered before Serve, as for a server started with it
	// (ulimit -n, LimitNOFILE=): a standing io_uring multishot accept keeps
	// the limit in force when it was armed, so lowering it while the loops
	// start would race with that (docs/reliability.md).
	if err := looptest.LowerFDLimit(room); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	fmt.Printf("ADDR %s\n", ap)
	io.Copy(io.Discard, os.Stdin) //nolint:errcheck // until the parent is done
	srv.Stop()
	return <-done
}
