package cli

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/accesslog"
	"github.com/asyncd/asyncd/internal/bind"
	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/metrics"
)

// observability is what a serving process observes requests with, built
// from the config: the access log (accesslog, access_log_format,
// access_log_json), the Prometheus counters when something exposes them
// (metrics_bind or a route of the metrics plugin), StatsD (statsd_host,
// statsd_prefix, dogstatsd_tags) and the metrics_bind listener.
type observability struct {
	log      *slog.Logger
	access   *accesslog.Logger
	statsd   *metrics.Statsd
	stopBind func()
	// serving is closed once the process serves (Serving): metrics_bind
	// accepts from then on.
	serving     chan struct{}
	servingOnce sync.Once
	// observer combines the per-request observers for the engine; nil
	// when there is none, so that the engine skips observing.
	observer engine.Observer
}

// openObservability opens the access log, starts StatsD and the
// metrics_bind listener, and combines the observers. On error nothing is
// left running.
func openObservability(cfg *config.Config, log *slog.Logger) (_ *observability, err error) {
	o := &observability{log: log, serving: make(chan struct{})}
	defer func() {
		if err != nil {
			o.Close()
		}
	}()
	var obs []engine.Observer
	if cfg.AccessLog != "" {
		if o.access, err = accesslog.New(cfg.AccessLog, cfg.AccessLogFormat, cfg.AccessLogJSON, log); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Source.Of("accesslog"), err)
		}
		obs = append(obs, o.access)
		exportDropped(o.access)
	}
	if exposesMetrics(cfg) {
		obs = append(obs, metrics.Default())
	}
	if cfg.StatsdHost != "" {
		if o.statsd, err = metrics.NewStatsd(cfg.StatsdHost, cfg.StatsdPrefix, cfg.DogstatsdTags); err != nil {
			return nil, fmt.Errorf("%s: statsd_host: %w", cfg.Source.Of("statsd_host"), err)
		}
		obs = append(obs, o.statsd)
	}
	if cfg.MetricsBind != "" {
		if o.stopBind, err = serveMetrics(cfg.MetricsBind, o.serving, log); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Source.Of("metrics_bind"), err)
		}
	}
	o.observer = metrics.Multi(obs...)
	return o, nil
}

// serveMetrics serves metrics_bind on the socket the supervisor passed
// (bind.EnvMetrics), which outlives this process; only without one does
// the process bind addr itself (see metrics.Serve).
func serveMetrics(addr string, ready <-chan struct{}, log *slog.Logger) (stop func(), err error) {
	set, err := bind.Inherited(os.Getenv(bind.EnvMetrics))
	if err != nil {
		return nil, err
	}
	if set == nil || len(set.Sockets) == 0 {
		return metrics.Serve(addr, ready, log)
	}
	return metrics.ServeFile(set.Sockets[0].File, addr, ready, log)
}

// Serving starts metrics_bind's accepting: the process serves, and its
// state (generation, readiness, connections) is published. Until then a
// scrape waits in the socket's queue, for the previous generation.
func (o *observability) Serving() {
	o.servingOnce.Do(func() { close(o.serving) })
}

// exposesMetrics reports whether anything serves the Prometheus metrics,
// so that the per-request counting is only paid for when it is read.
func exposesMetrics(cfg *config.Config) bool {
	if cfg.MetricsBind != "" {
		return true
	}
	for _, r := range cfg.Routes {
		if r.Handler == "metrics" {
			return true
		}
	}
	return false
}

var (
	droppedOnce sync.Once
	droppedFrom atomic.Pointer[accesslog.Logger]
)

// exportDropped makes the access log's dropped lines a metric. The metric
// is registered once per process and reads whichever log is current.
func exportDropped(l *accesslog.Logger) {
	droppedFrom.Store(l)
	droppedOnce.Do(func() {
		// The name is valid and registered once, so AddCounter cannot fail.
		metrics.Default().AddCounter("asyncd_accesslog_dropped_lines_total", //nolint:errcheck
			"Access log lines dropped because the writer fell behind.", func() float64 {
				if l := droppedFrom.Load(); l != nil {
					return float64(l.Dropped())
				}
				return 0
			})
	})
}

// Reopen reopens the access log file (SIGUSR1, after logrotate renamed it).
func (o *observability) Reopen() {
	if o.access == nil {
		return
	}
	if err := o.access.Reopen(); err != nil {
		o.log.Error("reopen access log", "error", err.Error())
	}
}

// Replaced stops the metrics_bind listener: the next generation serves
// the metrics now, and scrapes should reach it rather than this process,
// which only drains.
func (o *observability) Replaced() {
	if o.stopBind != nil {
		o.stopBind()
	}
}

// Close flushes and closes the access log and stops StatsD and the
// metrics listener. Call it after the loops stopped.
func (o *observability) Close() {
	o.Replaced()
	if o.access != nil {
		o.access.Close() //nolint:errcheck // Close reports no error
	}
	if o.statsd != nil {
		o.statsd.Close() //nolint:errcheck // a UDP close cannot lose anything
	}
}

// validateAccessLog compiles access_log_format, so that a bad atom is
// found by --check-config and before any serving process starts.
func validateAccessLog(cfg *config.Config) error {
	compile := accesslog.Compile
	if cfg.AccessLogJSON {
		compile = accesslog.CompileJSON
	}
	if _, err := compile(cfg.AccessLogFormat); err != nil {
		return fmt.Errorf("%s: %w", cfg.Source.Of("access_log_format"), err)
	}
	return nil
}
