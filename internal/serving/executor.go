package serving

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncd/asyncd/engine"
)

// How off-loop requests run, decided by BenchmarkExecutor (executor_test.go):
// one goroutine submits, as a loop does, never more than 1000 requests in
// flight (worker_connections' default, which the engine enforces), with a
// trivial handler and with one using 16 KiB of stack (more than a new
// goroutine's 8 KiB, as handlers that encode JSON or call a database driver
// do). `go test -run '^$' -bench Executor -benchmem -count 6 ./internal/serving/` on
// the 2-core CI machine, shared and loaded; ns/op min-median-max:
//
//	                     trivial handler        16 KiB of stack        allocs/op
//	go (one per request) 391-457-541            1069-1154-1247         1 (24 B)
//	elastic (async)      390-444-495            638-686-799            0
//	ants (v2, 1000)      684-800-1014           1007-1114-1152         2-3
//	pool (gthread, 64)   135-145-150            288-305-313            0
//
// The elastic pool is level with a goroutine per request for a trivial
// handler (the gap is within this machine's run-to-run noise) and 1.7x
// faster for one that needs a grown stack, which a reused goroutine keeps;
// it never allocates; ants is slower than both. So worker_class async, and sync's
// blocking routes, run on elasticExecutor. gthread keeps its fixed pool:
// `threads` caps concurrent handlers by definition, and its figures come
// from 64 goroutines, not up to 1000 (at 1000 it costs about 500 ns).

// poolExecutor is worker_class gthread: per loop, a fixed pool of `threads`
// goroutines fed by a bounded queue. A full queue refuses the task and the
// engine holds the request back until one completes.
type poolExecutor struct {
	queues []chan engine.Task
	busy   []busyCount // per loop: its goroutines inside a task
	done   chan struct{}
}

// busyCount is a counter on a cache line of its own, so that loops on
// different CPUs do not share one.
type busyCount struct {
	n atomic.Int64
	_ [56]byte
}

func newPoolExecutor(loops, threads, queue int) *poolExecutor {
	p := &poolExecutor{done: make(chan struct{}), busy: make([]busyCount, loops)}
	for i := 0; i < loops; i++ {
		q := make(chan engine.Task, queue)
		p.queues = append(p.queues, q)
		for j := 0; j < threads; j++ {
			go p.work(q, &p.busy[i].n)
		}
	}
	return p
}

func (p *poolExecutor) work(q chan engine.Task, busy *atomic.Int64) {
	for {
		select {
		case t := <-q:
			busy.Add(1)
			t.Run()
			busy.Add(-1)
		case <-p.done:
			return
		}
	}
}

// idle reports whether no task runs or waits (the loops must have
// stopped submitting).
func (p *poolExecutor) idle() bool {
	for i := range p.busy {
		if p.busy[i].n.Load() != 0 || len(p.queues[i]) != 0 {
			return false
		}
	}
	return true
}

// Submit implements engine.Executor.
func (p *poolExecutor) Submit(loop int, t engine.Task) bool {
	select {
	case p.queues[loop] <- t:
		return true
	default:
		return false
	}
}

// Close stops the pool's goroutines once their current task is done.
func (p *poolExecutor) Close() { close(p.done) }

// elasticExecutor runs worker_class async (and sync's blocking routes): per
// loop, an elastic pool of goroutines fed by one channel. A goroutine that
// finishes a task takes the next one, or waits on the channel for the next
// Submit; goroutines the loop has not needed for about idleTimeout exit, so
// an idle server holds few goroutines. A loop's pool never counts more
// goroutines than max, the engine's in-flight bound (worker_connections),
// and Submit never blocks: it puts the task on the channel and, when no
// goroutine is free to take it, starts one below the bound.
//
// The engine stops counting a request it has handed over (Hijack), timed
// out (request_timeout) or lost (client gone) while its handler still runs,
// and then admits another; the pool cannot see that, so the loop may submit
// while every goroutine it counts is inside a handler. The task then waits,
// since normally one of them is just past its response and about to take
// it; if none takes a task for rescueAfter, the pool concludes that the
// longest-busy goroutines hold such released requests: it stops counting
// them (each exits when its handler returns) and starts new ones for the
// waiting tasks. So a pool full of WebSockets never stalls plain requests,
// and goroutines over the bound only ever run requests the engine has let
// go of.
type elasticExecutor struct {
	shards      []*elasticShard
	idleTimeout time.Duration
	rescueAfter time.Duration
}

const (
	// elasticIdle is how long a goroutine of the async pool may go unneeded
	// before it exits (between 1x and 2x of it, see elasticShard.reap).
	elasticIdle = 5 * time.Second
	// elasticRescue is how long tasks may wait, none taken, with every
	// counted goroutine in a handler, before the pool concludes that some
	// hold released requests. A goroutine past its response takes the next
	// task within microseconds unless the scheduler stalls it.
	elasticRescue = 5 * time.Millisecond
	// maxQueue caps a loop's task channel (16 bytes an entry).
	maxQueue = 1 << 16
)

// elasticShard is one loop's pool; a pointer each, so that loops on
// different CPUs do not share a cache line.
type elasticShard struct {
	e   *elasticExecutor
	max int // the in-flight bound

	// tasks carries tasks, and nil to tell a goroutine to exit. It holds
	// at most the tasks in flight (max) and one nil per goroutine (max),
	// and mostly nothing: an item for a waiting goroutine is handed to it.
	// Its capacity is that, up to maxQueue; past it (a bound in the
	// hundreds of thousands) Submit starts a goroutine instead.
	tasks chan engine.Task
	// slack is the goroutines free to take a task (waiting on tasks or
	// about to) minus the items in tasks: negative means tasks wait for a
	// goroutine to finish its handler. Whoever puts an item on tasks takes
	// one from slack; a goroutine adds one when it is free again.
	slack  atomic.Int64
	low    atomic.Int64  // the lowest slack since the last reap round
	taken  atomic.Uint64 // tasks taken from tasks so far
	epoch  atomic.Uint64 // rescue rounds so far
	closed atomic.Bool

	mu          sync.Mutex
	workers     int              // live goroutines counted against max
	detached    int              // goroutines no longer counted, still in a handler
	highest     int              // most goroutines counted at once (tests)
	all         []*elasticWorker // live goroutines, counted or not
	reapT       *time.Timer
	reaping     bool
	rescueT     *time.Timer
	rescuing    bool
	rescueTaken uint64 // taken when the rescue timer was armed
}

// elasticWorker is one goroutine of a pool.
type elasticWorker struct {
	state atomic.Int32  // workerFree, workerBusy or workerDetached
	start atomic.Uint64 // the shard's epoch when its current task started
	idx   int           // in elasticShard.all, under mu
}

const (
	workerFree     = iota // between tasks
	workerBusy            // in a handler
	workerDetached        // in a handler, no longer counted: exits after it
)

func newElasticExecutor(loops, max int) *elasticExecutor {
	if max <= 0 {
		max = 1000 // engine.Config's default MaxInflight, which then applies
	}
	e := &elasticExecutor{idleTimeout: elasticIdle, rescueAfter: elasticRescue}
	for i := 0; i < loops; i++ {
		e.shards = append(e.shards, &elasticShard{e: e, max: max, tasks: make(chan engine.Task, min(2*max, maxQueue))})
	}
	return e
}

// Submit implements engine.Executor. It always takes the task.
func (e *elasticExecutor) Submit(loop int, t engine.Task) bool {
	s := e.shards[loop]
	if s.closed.Load() {
		go t.Run() // only while the process shuts down
		return true
	}
	select {
	case s.tasks <- t:
	default:
		go t.Run() // full: more in flight than the engine admits
		return true
	}
	n := s.slack.Add(-1)
	if n < s.low.Load() {
		s.low.Store(n)
	}
	if n < 0 {
		s.short()
	}
	return true
}

// short runs when a task waits with no goroutine free to take it: it
// starts goroutines up to the bound, and past it arms the rescue.
func (s *elasticShard) short() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.slack.Load() < 0 && s.workers < s.max {
		s.spawnLocked()
	}
	if s.slack.Load() < 0 {
		s.armRescueLocked()
	}
}

// spawnLocked starts a counted goroutine, free to take a task.
func (s *elasticShard) spawnLocked() {
	s.workers++
	s.highest = max(s.highest, s.workers)
	w := &elasticWorker{idx: len(s.all)}
	s.all = append(s.all, w)
	s.slack.Add(1)
	go s.run(w)
	if !s.reaping {
		s.reaping = true
		s.resetLocked(&s.reapT, s.e.idleTimeout, s.reap)
	}
}

// resetLocked (re)arms one of the shard's timers to call f after d.
func (s *elasticShard) resetLocked(t **time.Timer, d time.Duration, f func()) {
	if *t == nil {
		*t = time.AfterFunc(d, f)
		return
	}
	(*t).Reset(d)
}

// run runs tasks from the shard's channel until it takes a nil (reaped,
// closed) or is detached.
func (s *elasticShard) run(w *elasticWorker) {
	for {
		t := <-s.tasks
		if t == nil {
			s.exit(w, true) // its slack went with the nil
			return
		}
		s.taken.Add(1)
		w.start.Store(s.epoch.Load())
		w.state.Store(workerBusy)
		t.Run()
		if !w.state.CompareAndSwap(workerBusy, workerFree) {
			s.exit(w, false) // detached by a rescue while in the handler
			return
		}
		// Free again, then look at closed: Close either sees this slack
		// (and sends a nil for it) or has set closed before we look.
		s.slack.Add(1)
		if s.closed.Load() {
			s.exit(w, true)
			return
		}
	}
}

// exit forgets a goroutine that is about to return.
func (s *elasticShard) exit(w *elasticWorker, counted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if counted {
		s.workers--
	} else {
		s.detached--
	}
	last := len(s.all) - 1
	s.all[w.idx] = s.all[last]
	s.all[w.idx].idx = w.idx
	s.all[last] = nil
	s.all = s.all[:last]
}

// reap runs every idleTimeout while the shard has goroutines: as many as
// stayed free through the whole round (the lowest slack since the last
// one) are told to exit. The channel hands items to the goroutines that
// have waited longest, so those are the ones that go.
func (s *elasticShard) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := min(s.low.Load(), s.slack.Load()); k > 0; k-- {
		if !s.sendNilLocked() {
			break
		}
	}
	s.low.Store(s.slack.Load())
	if len(s.all) == 0 || s.closed.Load() {
		s.reaping = false
		return
	}
	s.reapT.Reset(s.e.idleTimeout)
}

// sendNilLocked tells one free goroutine to exit, if one is free.
func (s *elasticShard) sendNilLocked() bool {
	if s.slack.Add(-1) < 0 {
		s.slack.Add(1)
		return false
	}
	select {
	case s.tasks <- nil:
		return true
	default:
		s.slack.Add(1)
		return false
	}
}

func (s *elasticShard) armRescueLocked() {
	if s.rescuing {
		return
	}
	s.rescuing = true
	s.rescueTaken = s.taken.Load()
	s.resetLocked(&s.rescueT, s.e.rescueAfter, s.rescue)
}

// rescue runs rescueAfter after a task found every counted goroutine in a
// handler. If tasks still wait and none was taken meanwhile, counted
// goroutines hold requests the engine released (see elasticExecutor): the
// longest-busy are no longer counted, and new goroutines take the tasks.
func (s *elasticShard) rescue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rescuing = false
	epoch := s.epoch.Add(1)
	if s.slack.Load() >= 0 {
		return // every waiting task has a goroutine
	}
	if s.taken.Load() != s.rescueTaken {
		s.armRescueLocked() // goroutines are taking tasks: look again
		return
	}
	for s.slack.Load() < 0 {
		if s.workers < s.max {
			s.spawnLocked()
			continue
		}
		// No task was taken during the wait, so every busy goroutine has
		// been in one handler all along; the oldest task is likeliest a
		// released one (a WebSocket lives long). A goroutine started by
		// this loop takes its task at the new epoch: never a candidate.
		var old *elasticWorker
		for _, w := range s.all {
			if w.state.Load() == workerBusy && w.start.Load() < epoch &&
				(old == nil || w.start.Load() < old.start.Load()) {
				old = w
			}
		}
		if old == nil || !old.state.CompareAndSwap(workerBusy, workerDetached) {
			break // none stuck after all (one just finished): look again
		}
		s.workers--
		s.detached++
		s.spawnLocked()
	}
	if s.slack.Load() < 0 {
		s.armRescueLocked()
	}
}

// Close makes free goroutines exit, and busy ones when their task is done.
// The loops must have stopped submitting.
func (e *elasticExecutor) Close() {
	for _, s := range e.shards {
		s.mu.Lock()
		s.closed.Store(true)
		for s.sendNilLocked() {
		}
		if s.reapT != nil {
			s.reapT.Stop()
		}
		s.mu.Unlock()
	}
}

// idle reports whether no goroutine of the pool is inside a task and none
// waits (the loops must have stopped submitting). A task started on a
// goroutine of its own (a full channel, a closed pool) is not seen.
func (e *elasticExecutor) idle() bool {
	for _, s := range e.shards {
		if len(s.tasks) != 0 && s.slack.Load() < 0 {
			return false
		}
		s.mu.Lock()
		busy := s.detached > 0
		for _, w := range s.all {
			busy = busy || w.state.Load() == workerBusy
		}
		s.mu.Unlock()
		if busy {
			return false
		}
	}
	return true
}
