package metrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/asyncd/asyncd/engine"
	"golang.org/x/sys/unix"
)

// ServeFile exposes Default() at /metrics on the listening socket f
// (metrics_bind, which the supervisor bound and keeps open across
// generations; addr names it in logs), with net/http on its own
// goroutines, so that scrapes never touch the event loops and the metrics
// need not be reachable from the public bind address. It accepts only
// once ready is closed (the process serves: its state is published), so
// that a scrape waiting in the socket's queue is answered by a process
// that can say what it is, the previous generation until then. f is this
// process's copy: stop shuts the server down (waiting up to 5s for scrapes
// in progress) and closes only that copy, so connections queued on the
// socket wait there for the next generation, which serves on it too. The
// old process should stop serving metrics as soon as it is replaced, so
// that scrapes reach the new one.
func ServeFile(f *os.File, addr string, ready <-chan struct{}, errlog *slog.Logger) (stop func(), err error) {
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("metrics_bind %s: %w", addr, err)
	}
	f.Close() // ln holds a duplicate
	return serveOn(ln, func() {}, addr, Default(), ready, errlog), nil
}

// Serve is ServeFile on a socket this process binds itself: a serving
// process whose supervisor passed no socket: one that a binary upgrade
// from an asyncd older than the supervisor-owned metrics_bind started.
// The address is shared with the next generation of serving processes,
// which binds it while this one still runs: a TCP address is bound with
// SO_REUSEPORT, and a unix socket left by another process is replaced.
// Scrapes the kernel queued on this process's socket are reset when it
// closes it; ServeFile has no such loss. stop also removes a unix socket
// it created, unless another process has taken the path over.
func Serve(addr string, ready <-chan struct{}, errlog *slog.Logger) (stop func(), err error) {
	ln, cleanup, err := listen(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_bind %s: %w", addr, err)
	}
	return serveOn(ln, cleanup, addr, Default(), ready, errlog), nil
}

// serveOn serves m on ln from ready until stop; cleanup runs once ln is
// closed.
func serveOn(ln net.Listener, cleanup func(), addr string, m *Metrics, ready <-chan struct{}, errlog *slog.Logger) func() {
	if errlog == nil {
		errlog = slog.Default()
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(errlog.Handler(), slog.LevelWarn),
	}
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-quit:
			ln.Close()
			return
		case <-ready:
		}
		// Serve closes ln when it returns, even after a Shutdown that
		// came first.
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errlog.Error("metrics server stopped", "addr", addr, "error", err.Error())
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close() //nolint:errcheck // forced after the grace period
			}
			<-done
			cleanup()
		})
	}
}

// listen binds addr so that another process can bind it too (see Serve);
// cleanup removes what listen created once the listener is closed.
func listen(addr string) (net.Listener, func(), error) {
	path, isUnix := strings.CutPrefix(addr, "unix:")
	if !isUnix {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}}
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		return ln, func() {}, err
	}
	path = strings.TrimPrefix(path, "//")
	if fi, err := os.Lstat(path); err == nil {
		// Only a socket is replaced (the previous generation's, or one a
		// crashed process left); any other file is an error.
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, nil, err
	}
	// net would unlink the path on Close even when the next generation
	// has replaced it by then: remove it only while it is still ours.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	mine, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return ln, func() {
		if now, err := os.Lstat(path); err == nil && os.SameFile(mine, now) {
			os.Remove(path) //nolint:errcheck // already gone is fine
		}
	}, nil
}

// Multi returns an Observer that tells each non-nil observer in turn (the
// access log and the metrics, say), or nil when there is none, so that
// the engine skips observing altogether.
func Multi(obs ...engine.Observer) engine.Observer {
	var list multi
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return list
}

type multi []engine.Observer

// Observe implements engine.Observer.
func (m multi) Observe(c *engine.Ctx, took time.Duration) {
	for _, o := range m {
		o.Observe(c, took)
	}
}
