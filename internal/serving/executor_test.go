package serving

import (
	"sync"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/panjf2000/ants/v2"
)

// goExecutor runs each request on its own goroutine: the baseline the
// pools have to beat (and what the engine uses without an Executor).
type goExecutor struct{}

// Submit implements engine.Executor.
func (goExecutor) Submit(_ int, t engine.Task) bool {
	go t.Run()
	return true
}

// benchBound is the in-flight bound the benchmark enforces, as the engine
// does per loop (worker_connections' default).
const benchBound = 1000

// benchTask is one request: it releases its in-flight slot at the end of
// Run, as an engine request wakes its loop from the handler's goroutine
// just before Run returns. deep makes it use 16 KiB of stack, as a handler
// that encodes JSON or calls a database driver easily does: more than a
// new goroutine's 8 KiB, so that one grows (copies) its stack first.
type benchTask struct {
	wg    *sync.WaitGroup
	slots chan struct{}
	deep  bool
}

func (t *benchTask) Run() {
	if t.deep {
		deepStack(0)
	} else {
		var x [64]byte // a little stack, like a trivial handler's
		_ = x
	}
	<-t.slots
	t.wg.Done()
}

//go:noinline
func deepStack(i int) byte {
	var frame [16 << 10]byte
	frame[i] = byte(i)
	return frame[(i+1)%len(frame)]
}

// runExecutor submits b.N tasks from one goroutine (the loop), never more
// than benchBound in flight: over it, the loop waits for a completion, as
// the engine holds requests back.
func runExecutor(b *testing.B, deep bool, submit func(engine.Task) bool) {
	// A serving process always has timers (its monitor ticker, the loops'
	// timeouts), which make the scheduler read the clock: so does this one,
	// for every executor alike, not only for the pools that have their own.
	timer := time.AfterFunc(time.Hour, func() {})
	defer timer.Stop()
	var wg sync.WaitGroup
	slots := make(chan struct{}, benchBound)
	t := &benchTask{&wg, slots, deep} // one request's state, reused: the engine's is a pooled *Ctx
	b.ReportAllocs()
	for b.Loop() {
		slots <- struct{}{}
		wg.Add(1)
		for !submit(t) {
		}
	}
	wg.Wait()
}

// BenchmarkExecutor compares the ways to run off-loop requests under the
// engine's in-flight bound: a goroutine per request, asyncd's fixed pool
// (gthread), its elastic pool (async) and github.com/panjf2000/ants, with a
// handler using a little stack and one using 16 KiB (…-stack16k). It
// decided that async runs on the elastic pool (see executor.go).
func BenchmarkExecutor(b *testing.B) {
	for _, shape := range []struct {
		suffix string
		deep   bool
	}{{"", false}, {"-stack16k", true}} {
		deep := shape.deep
		b.Run("go"+shape.suffix, func(b *testing.B) {
			runExecutor(b, deep, func(t engine.Task) bool { return goExecutor{}.Submit(0, t) })
		})
		b.Run("pool"+shape.suffix, func(b *testing.B) {
			p := newPoolExecutor(1, 64, 4096)
			defer p.Close()
			runExecutor(b, deep, func(t engine.Task) bool { return p.Submit(0, t) })
		})
		b.Run("elastic"+shape.suffix, func(b *testing.B) {
			e := newElasticExecutor(1, benchBound)
			defer e.Close()
			runExecutor(b, deep, func(t engine.Task) bool { return e.Submit(0, t) })
		})
		b.Run("ants"+shape.suffix, func(b *testing.B) {
			pool, err := ants.NewPool(benchBound, ants.WithPreAlloc(true), ants.WithNonblocking(true))
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Release()
			runExecutor(b, deep, func(t engine.Task) bool { return pool.Submit(t.Run) == nil })
		})
	}
}
