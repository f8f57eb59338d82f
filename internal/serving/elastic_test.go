package serving

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// taskFunc is an engine.Task.
type taskFunc func()

func (f taskFunc) Run() { f() }

// eventually polls cond for up to 20s (a loaded machine is slow, never
// this slow), failing with what.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestElasticReusesIdleWorkers: one request after another runs on one
// goroutine, parked between them.
func TestElasticReusesIdleWorkers(t *testing.T) {
	e := newElasticExecutor(1, 8)
	defer e.Close()
	for i := 0; i < 100; i++ {
		done := make(chan struct{})
		if !e.Submit(0, taskFunc(func() { close(done) })) {
			t.Fatal("Submit refused a task")
		}
		<-done
		// the worker is back (idle) before the next request comes
		eventually(t, "the worker did not park", func() bool { return e.stats(0).Free == 1 })
	}
	if st := e.stats(0); st.Highest != 1 || st.Workers != 1 {
		t.Fatalf("%+v: want one goroutine reused for 100 sequential requests", st)
	}
}

// TestElasticNeverExceedsTheBound drives the pool as the engine does: at
// most max tasks in flight per loop, each freeing its slot from its own
// goroutine just before it returns (so the loop often submits while every
// goroutine is still busy). The pool never counts more goroutines than
// max, and every task runs without a rescue: with rescueAfter at an hour, a
// queued task that no finishing goroutine took would hang the test.
func TestElasticNeverExceedsTheBound(t *testing.T) {
	const loops, bound, perLoop = 2, 4, 20000
	e := newElasticExecutor(loops, bound)
	e.rescueAfter = time.Hour
	defer e.Close()
	var ran atomic.Int64
	var wg sync.WaitGroup
	for l := 0; l < loops; l++ {
		wg.Add(1)
		go func() { // one loop
			defer wg.Done()
			slots := make(chan struct{}, bound)
			var tasks sync.WaitGroup
			for i := 0; i < perLoop; i++ {
				slots <- struct{}{}
				tasks.Add(1)
				yield := i%7 == 0
				if !e.Submit(l, taskFunc(func() {
					if yield {
						runtime.Gosched() // some handlers take a while
					}
					ran.Add(1)
					<-slots // the engine's completion: the loop may submit again
					tasks.Done()
				})) {
					t.Error("Submit refused a task")
				}
			}
			tasks.Wait()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("tasks stalled: %d of %d ran; %+v %+v", ran.Load(), loops*perLoop, e.stats(0), e.stats(1))
	}
	for l := 0; l < loops; l++ {
		st := e.stats(l)
		if st.Highest > bound || st.Workers > bound {
			t.Errorf("loop %d: %+v: more goroutines than the bound %d", l, st, bound)
		}
		if st.Detached != 0 || st.Waiting != 0 {
			t.Errorf("loop %d: %+v: nothing was released, nothing may be left queued", l, st)
		}
	}
}

// TestElasticReleasedTasksDoNotStall: tasks the engine stopped counting
// (hijacked connections) hold every goroutine the pool counts; the next
// task still runs, on a goroutine that replaces one of them in the count,
// and Submit never blocks meanwhile.
func TestElasticReleasedTasksDoNotStall(t *testing.T) {
	const bound = 2
	e := newElasticExecutor(1, bound)
	defer e.Close()
	hold := make(chan struct{})
	var held sync.WaitGroup
	for i := 0; i < bound; i++ {
		held.Add(1)
		e.Submit(0, taskFunc(func() { held.Done(); <-hold })) // a WebSocket handler
	}
	held.Wait()
	ran := make(chan struct{})
	submitted := make(chan struct{})
	go func() {
		e.Submit(0, taskFunc(func() { close(ran) }))
		close(submitted)
	}()
	select {
	case <-submitted:
	case <-time.After(10 * time.Second):
		t.Fatal("Submit blocked with every goroutine busy")
	}
	select {
	case <-ran:
	case <-time.After(20 * time.Second):
		t.Fatalf("a task admitted while released tasks hold the pool never ran: %+v", e.stats(0))
	}
	st := e.stats(0)
	if st.Detached != 1 || st.Workers != bound || st.Highest > bound {
		t.Fatalf("%+v: want 1 goroutine no longer counted, %d counted at most", st, bound)
	}
	close(hold)
	// the goroutine that was let go exits when its handler returns
	eventually(t, "the detached goroutine did not exit", func() bool { return e.stats(0).Detached == 0 })
	if st := e.stats(0); st.Workers > bound {
		t.Fatalf("%+v: over the bound", st)
	}
}

// TestElasticIdleWorkersExit: goroutines that find no work for idleTimeout
// exit, so an idle server holds none.
func TestElasticIdleWorkersExit(t *testing.T) {
	before := runtime.NumGoroutine()
	e := newElasticExecutor(1, 16)
	e.idleTimeout = 20 * time.Millisecond
	defer e.Close()
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	for i := 0; i < 10; i++ {
		started.Add(1)
		finished.Add(1)
		e.Submit(0, taskFunc(func() { started.Done(); <-release; finished.Done() }))
	}
	started.Wait()
	if st := e.stats(0); st.Workers != 10 {
		t.Fatalf("%+v: want 10 goroutines for 10 concurrent tasks", st)
	}
	close(release)
	finished.Wait()
	eventually(t, "idle goroutines did not exit", func() bool { return e.stats(0).Workers == 0 })
	eventually(t, "goroutines left behind", func() bool { return runtime.NumGoroutine() <= before })
	// and it grows again on demand
	done := make(chan struct{})
	e.Submit(0, taskFunc(func() { close(done) }))
	<-done
}

// TestElasticClose: Close ends the free goroutines at once and a busy one
// when its task is done, leaving none behind; a task submitted after it
// still runs.
func TestElasticClose(t *testing.T) {
	before := runtime.NumGoroutine()
	e := newElasticExecutor(1, 4)
	release := make(chan struct{})
	busy := make(chan struct{})
	e.Submit(0, taskFunc(func() { close(busy); <-release }))
	<-busy
	done := make(chan struct{})
	e.Submit(0, taskFunc(func() { close(done) }))
	<-done
	eventually(t, "the second goroutine is not free", func() bool { return e.stats(0).Free == 1 })
	e.Close()
	eventually(t, "the free goroutine survived Close", func() bool { return e.stats(0).Workers == 1 })
	close(release)
	eventually(t, "the busy goroutine survived its task after Close", func() bool { return e.stats(0).Workers == 0 })
	eventually(t, "goroutines left behind", func() bool { return runtime.NumGoroutine() <= before })
	after := make(chan struct{})
	e.Submit(0, taskFunc(func() { close(after) }))
	<-after
}
