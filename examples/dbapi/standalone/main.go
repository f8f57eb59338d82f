// Command dbapi-standalone serves the users API, the same handler asyncd-dbapi
// mounts, with plain net/http, so the two can be compared side by side.
//
//	DATABASE_URL=... ./dbapi-standalone -b 127.0.0.1:8001 [-debug 127.0.0.1:6061]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"example.com/mycompany/dbapi/profiling"
	"example.com/mycompany/dbapi/users"
)

func main() {
	bind := flag.String("b", "127.0.0.1:8001", "address to serve the API on")
	debug := flag.String("debug", "", "address to serve /debug/pprof/ and /debug/vars on (empty: none); "+
		"a separate server, so the API's handler is exactly asyncd-dbapi's")
	flag.Parse()
	if err := run(*bind, *debug); err != nil {
		fmt.Fprintln(os.Stderr, "dbapi-standalone:", err)
		os.Exit(1)
	}
}

func run(bind, debug string) error {
	log := slog.Default()
	store := users.NewStore()
	defer store.Close()
	srv := &http.Server{Addr: bind, Handler: users.NewMux(store, log), ReadHeaderTimeout: 10 * time.Second}
	if debug != "" {
		dbg := &http.Server{Addr: debug, Handler: profiling.Handler()}
		go func() {
			if err := dbg.ListenAndServe(); err != nil {
				log.Error("debug server", "addr", debug, "err", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("dbapi-standalone listening", "addr", bind)
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", bind, err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
