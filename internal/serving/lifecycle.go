package serving

import (
	"context"
	"time"

	"github.com/asyncd/asyncd/internal/procstate"
	"github.com/asyncd/asyncd/plugins"
)

// The plugins' lifecycle in a serving process (plugins.Provisioner, ...):
// Run provisions them before its loops accept, checks their readiness
// while it serves, and cleans them up after its last request.

// provision runs the plugins' Provision steps within the config's timeout
// (none when 0); a stop (ctx, fast) ends it.
func (p *Process) provision(ctx context.Context, fast <-chan struct{}) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if to := p.cfg.Timeout; to > 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, to)
		defer c()
	}
	go func() {
		select {
		case <-fast:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	if err := p.plugins.Provision(ctx, p.log); err != nil {
		return err
	}
	if d := time.Since(start); d >= 100*time.Millisecond {
		p.log.Info("plugins provisioned", "took", d.Round(time.Millisecond))
	}
	return nil
}

// startReadyChecks runs the plugins' readiness checks once now, so that the
// first answer after READY is right, then every plugins.ReadyInterval on a
// goroutine of its own (never on a loop: a check may wait on a network),
// publishing the failing one (procstate.SetFailingCheck). The returned
// function stops it.
func (p *Process) startReadyChecks() (stop func()) {
	if !p.plugins.HasReadyCheck() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	failing := ""
	check := func() {
		name, err := p.plugins.CheckReady(ctx)
		if ctx.Err() != nil {
			return // stopping: the last answer stands
		}
		if name != failing {
			if name != "" {
				p.log.Warn("readiness check failed: not ready", "check", name, "err", err.Error())
			} else {
				p.log.Info("readiness checks pass again", "check", failing)
			}
			failing = name
		}
		procstate.SetFailingCheck(name)
	}
	check()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(plugins.ReadyInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				check()
			}
		}
	}()
	return func() {
		cancel()
		<-done
		procstate.SetFailingCheck("") // the process no longer serves
	}
}

// cleanup runs the plugins' Cleanup steps once the requests still running
// off the loops finished, waiting for them until the drain's deadline
// (stopBy; none after a fast stop).
func (p *Process) cleanup() {
	if time.Now().Before(p.stopBy) && !p.executorIdle() {
		p.log.Info("plugin cleanup waits for the handlers still running", "until", p.stopBy.Format(time.RFC3339))
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for time.Now().Before(p.stopBy) && !p.executorIdle() {
			<-tick.C
		}
	}
	p.plugins.Cleanup(p.log)
}

// executorIdle reports whether no handler runs off the loops.
func (p *Process) executorIdle() bool {
	if p.pool != nil && !p.pool.idle() {
		return false
	}
	return p.async == nil || p.async.idle()
}

// blockLogEvery is how often a route still blocking its loop is logged
// again after its first line.
const blockLogEvery = time.Minute

// blockLog limits the "handler is blocking its event loop" warning to one
// line per route, then one a minute while it keeps blocking, counting the
// reports it left out. The watchdog's goroutine (Run) owns it.
type blockLog struct {
	every time.Duration
	last  map[string]time.Time // route: when it was last logged
	quiet map[string]int       // route: reports since
}

func newBlockLog(every time.Duration) *blockLog {
	return &blockLog{every: every, last: map[string]time.Time{}, quiet: map[string]int{}}
}

// due reports whether a block of route seen at now is logged, and how many
// reports of the route were left out since its last line.
func (b *blockLog) due(route string, now time.Time) (int, bool) {
	if last, ok := b.last[route]; ok && now.Sub(last) < b.every {
		b.quiet[route]++
		return 0, false
	}
	n := b.quiet[route]
	b.last[route], b.quiet[route] = now, 0
	return n, true
}
