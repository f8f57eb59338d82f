// Package accesslog is asyncd's access log: Gunicorn's access_log_format
// (every atom: h l u t r m U q H s B b f a T D M L p, {header}i,
// {header}o, {variable}e) or one JSON object per line, written to stdout
// or a file that can be reopened after log rotation.
//
// A Logger is an engine.Observer. Observe runs on the event loop for every
// request, so it never blocks and never allocates: it renders the line
// into a buffer owned by one of a few lock-striped shards and, when the
// buffer fills, hands it to a single writer goroutine through a bounded
// queue. When the writer falls behind (a slow disk, a blocked pipe), whole
// buffers are dropped and counted instead of stalling the loops. The
// writer also flushes every FlushInterval and on Close.
//
// It owns the access log's format and output. It must not touch sockets,
// parse requests or decide when to reopen: the serving process calls
// Reopen on SIGUSR1 and Close at exit.
package accesslog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/asyncd/asyncd/engine"
)

// Tuning. A batch is written with one write(2); the queue bounds the
// memory the log may hold while the writer is behind.
const (
	// BatchSize is the capacity of one buffer of lines.
	BatchSize = 64 << 10
	// QueueBatches is how many full buffers may wait for the writer.
	QueueBatches = 32
	// FlushInterval is the longest a line waits before it is written.
	FlushInterval = 100 * time.Millisecond
)

// handoffAt is the fill level at which a shard hands its batch over, so
// that a line of up to BatchSize-handoffAt bytes never grows the buffer.
const handoffAt = BatchSize * 3 / 4

// batch is a buffer of whole lines.
type batch struct {
	buf   []byte
	lines int
}

// shard is one lock-striped line buffer. The padding keeps two shards'
// locks off one cache line, so loops on different cores do not contend.
type shard struct {
	mu sync.Mutex
	b  *batch
	st state
	ln []byte // the line being rendered
	_  [64]byte
}

// Logger writes the access log. Its methods are safe for concurrent use.
type Logger struct {
	format *Format
	path   string // "" for a Logger over an io.Writer
	errlog *slog.Logger

	shards []shard
	full   chan *batch
	free   chan *batch

	// out and own belong to the writer goroutine (Reopen asks it).
	out io.Writer
	own *os.File // the file opened for path; nil for stdout or a caller's writer

	dropped   atomic.Uint64
	lines     atomic.Uint64
	writeErrs atomic.Uint64
	closed    atomic.Bool
	reopen    chan chan error
	flush     chan chan struct{}
	done      chan struct{}
	exited    chan struct{}
	closeOnce sync.Once
	interval  time.Duration
}

// New opens the access log at path ("-" for stdout; a file is opened for
// appending and created if needed) with Gunicorn's format, or one JSON
// object per line when jsonOut is set (format then only adds {…} fields).
// Errors writing the log go to errlog.
func New(path, format string, jsonOut bool, errlog *slog.Logger) (*Logger, error) {
	if path == "" {
		return nil, errors.New("accesslog: empty path (use - for stdout)")
	}
	f, err := compileFor(format, jsonOut)
	if err != nil {
		return nil, err
	}
	var out io.Writer = os.Stdout
	var own *os.File
	if path != "-" {
		if own, err = openLog(path); err != nil {
			return nil, err
		}
		out = own
	}
	return start(f, path, out, own, errlog, FlushInterval), nil
}

func compileFor(format string, jsonOut bool) (*Format, error) {
	if format == "" {
		format = DefaultFormat
	}
	if jsonOut {
		return CompileJSON(format)
	}
	return Compile(format)
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("accesslog: open %s: %w", path, err)
	}
	return f, nil
}

func start(f *Format, path string, out io.Writer, own *os.File, errlog *slog.Logger, interval time.Duration) *Logger {
	if errlog == nil {
		errlog = slog.Default()
	}
	n := 1
	for n < runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	l := &Logger{
		format: f, path: path, errlog: errlog, out: out, own: own,
		shards:   make([]shard, n),
		full:     make(chan *batch, QueueBatches),
		free:     make(chan *batch, QueueBatches+n+1),
		reopen:   make(chan chan error),
		flush:    make(chan chan struct{}),
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
		interval: interval,
	}
	// Every shard holds one batch, the queue up to QueueBatches, the writer
	// one: with that many in circulation a handoff never finds the free
	// list empty.
	for i := range l.shards {
		l.shards[i].b = newBatch()
	}
	for i := 0; i < QueueBatches+1; i++ {
		l.free <- newBatch()
	}
	go l.writer()
	return l
}

func newBatch() *batch { return &batch{buf: make([]byte, 0, BatchSize)} }

// Format returns the compiled format.
func (l *Logger) Format() *Format { return l.format }

// Observe implements engine.Observer: it renders the request's line into
// a shard's buffer. It runs on the event loop; it does not block on the
// writer and does not allocate.
func (l *Logger) Observe(c *engine.Ctx, took time.Duration) {
	if l.closed.Load() {
		return
	}
	var now time.Time
	if l.format.useTime {
		now = time.Now()
	}
	sh := l.lockShard(c)
	sh.ln = l.format.appendLine(sh.ln[:0], &sh.st, c, took, now)
	if len(sh.b.buf)+len(sh.ln) > handoffAt && len(sh.b.buf) > 0 {
		l.handoff(sh)
	}
	sh.b.buf = append(sh.b.buf, sh.ln...)
	sh.b.lines++
	sh.mu.Unlock()
}

// lockShard locks a shard: the one c hashes to if it is free, else the
// first free one, else it waits for c's own. Ctx values come from a
// per-P pool, so a loop tends to land on the same shard.
func (l *Logger) lockShard(c *engine.Ctx) *shard {
	h := uint64(uintptr(unsafe.Pointer(c)))
	h ^= h >> 17
	h *= 0x9e3779b97f4a7c15
	mask := uint64(len(l.shards) - 1)
	start := h >> 40 & mask
	for i := uint64(0); i <= mask; i++ {
		sh := &l.shards[(start+i)&mask]
		if sh.mu.TryLock() {
			return sh
		}
	}
	sh := &l.shards[start]
	sh.mu.Lock()
	return sh
}

// handoff queues sh's batch for the writer and gives sh an empty one; with
// the queue full, the batch's lines are dropped and counted instead.
// Called with sh locked.
func (l *Logger) handoff(sh *shard) {
	select {
	case l.full <- sh.b:
		select {
		case sh.b = <-l.free:
			return
		default:
			// Cannot happen with the batch accounting in start; losing
			// the lines beats blocking the loop.
			sh.b = newBatch()
			return
		}
	default:
	}
	l.dropped.Add(uint64(sh.b.lines))
	sh.b.buf = sh.b.buf[:0]
	sh.b.lines = 0
}

// Dropped reports how many lines were dropped because the writer was
// behind.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// Lines reports how many lines were written.
func (l *Logger) Lines() uint64 { return l.lines.Load() }

// writer is the goroutine that writes batches.
func (l *Logger) writer() {
	defer close(l.exited)
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	var reported uint64
	lastReport := time.Now()
	report := func() {
		if d := l.dropped.Load(); d != reported {
			l.errlog.Warn("access log: the writer fell behind; lines dropped", "dropped", d-reported,
				"dropped_total", d, "path", l.path)
			reported, lastReport = d, time.Now()
		}
	}
	for {
		select {
		case b := <-l.full:
			l.write(b)
		case <-tick.C:
			l.drainShards()
			if time.Since(lastReport) >= time.Second {
				report() // at most once a second
			}
		case reply := <-l.flush:
			l.drainQueue()
			l.drainShards()
			close(reply)
		case reply := <-l.reopen:
			l.drainQueue()
			l.drainShards()
			reply <- l.reopenFile()
		case <-l.done:
			l.drainQueue()
			l.drainShards()
			report()
			if l.own != nil {
				if err := l.own.Close(); err != nil {
					l.errlog.Error("access log: close", "path", l.path, "err", err)
				}
				l.own = nil
			}
			return
		}
	}
}

// drainQueue writes every batch waiting in the queue.
func (l *Logger) drainQueue() {
	for {
		select {
		case b := <-l.full:
			l.write(b)
		default:
			return
		}
	}
}

// drainShards takes every shard's pending lines and writes them.
func (l *Logger) drainShards() {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		if len(sh.b.buf) == 0 {
			sh.mu.Unlock()
			continue
		}
		var fresh *batch
		select {
		case fresh = <-l.free:
		default:
			sh.mu.Unlock()
			continue // every spare batch is queued: the queue gets written first
		}
		b := sh.b
		sh.b = fresh
		sh.mu.Unlock()
		l.write(b)
	}
}

// write writes one batch and returns it to the free list.
func (l *Logger) write(b *batch) {
	if len(b.buf) > 0 {
		_, err := l.out.Write(b.buf)
		if err != nil {
			if l.writeErrs.Add(1) == 1 || l.writeErrs.Load()%1000 == 0 {
				l.errlog.Error("access log: write failed; lines lost", "path", l.path, "err", err,
					"lines", b.lines, "failures", l.writeErrs.Load())
			}
			l.dropped.Add(uint64(b.lines))
		} else {
			l.lines.Add(uint64(b.lines))
		}
	}
	b.buf = b.buf[:0]
	b.lines = 0
	select {
	case l.free <- b:
	default:
	}
}

func (l *Logger) reopenFile() error {
	if l.path == "" || l.path == "-" {
		return nil
	}
	f, err := openLog(l.path)
	if err != nil {
		return err
	}
	old := l.own
	l.own, l.out = f, f
	if old != nil {
		if err := old.Close(); err != nil {
			return fmt.Errorf("accesslog: close the old %s: %w", l.path, err)
		}
	}
	return nil
}

// Reopen writes every pending line to the current file, then opens the
// path again, so that after logrotate renamed the file new lines go to a
// new one. Lines observed before Reopen was called end up in the old file.
// It does nothing for stdout or a Logger over a writer. SIGUSR1 should
// call it.
func (l *Logger) Reopen() error {
	if l.closed.Load() {
		return errors.New("accesslog: reopen after close")
	}
	reply := make(chan error, 1)
	select {
	case l.reopen <- reply:
	case <-l.exited:
		return errors.New("accesslog: reopen after close")
	}
	return <-reply
}

// Flush writes every line observed so far and returns when they are
// written.
func (l *Logger) Flush() {
	reply := make(chan struct{})
	select {
	case l.flush <- reply:
		<-reply
	case <-l.exited:
	}
}

// Close writes what is pending, closes the file, and stops the writer.
// Lines observed after Close are discarded. It is idempotent.
func (l *Logger) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		close(l.done)
	})
	<-l.exited
	return nil
}
