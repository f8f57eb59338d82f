package serving

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/loop"
)

// acceptingServer is a loop.Server of one loop that was inside an accept
// when StopAccepting came, as a loop can be on any backend (it checks the
// flag, then calls accept4): the connection it gets counts in Conns only
// once the loop has opened it, and the loop's next tick comes after that.
// Its client is then answered, and the connection closes.
type acceptingServer struct {
	eng    *engine.Engine
	conns  atomic.Int64
	served atomic.Bool
	// stopOpen is the connections open when Stop came (-1: not yet).
	stopOpen atomic.Int64
	errc     chan error
}

func (s *acceptingServer) Serve() error { return <-s.errc }

func (s *acceptingServer) StopAccepting() {
	go func() {
		time.Sleep(100 * time.Millisecond) // the accept4, then the open
		s.conns.Store(1)
		s.eng.OnTick(0, time.Now())
		time.Sleep(100 * time.Millisecond) // its request, answered
		s.served.Store(true)
		s.conns.Store(0)
		s.eng.OnTick(0, time.Now())
	}()
}

func (s *acceptingServer) Stop() {
	if s.stopOpen.CompareAndSwap(-1, s.conns.Load()) {
		s.errc <- nil
	}
}

func (s *acceptingServer) Conns() []int { return []int{int(s.conns.Load())} }

var _ loop.Server = (*acceptingServer)(nil)

// TestDrainWaitsForAcceptInFlight: a drain that finds no connection open
// stops the loops only once every loop has ticked since it stopped
// accepting. A connection a loop was accepting at that moment is not
// counted yet; stopping then closed it before its first request.
func TestDrainWaitsForAcceptInFlight(t *testing.T) {
	router, err := engine.NewRouter(nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Router: router, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := &acceptingServer{eng: eng, errc: make(chan error, 1)}
	srv.stopOpen.Store(-1)
	p := &Process{cfg: &config.Config{GracefulTimeout: 10 * time.Second}, eng: eng, srv: srv, log: slog.Default(), loops: 1}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	if err := p.drain(errc, nil); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if n := srv.stopOpen.Load(); n != 0 || !srv.served.Load() {
		t.Errorf("the loops were stopped with %d connection(s) open, the one being accepted served: %v; "+
			"want it served first", n, srv.served.Load())
	}
}
