package supervisor

import (
	"fmt"
	"os"

	"github.com/asyncd/asyncd/internal/bind"
	"github.com/asyncd/asyncd/internal/config"
)

// The metrics_bind socket is the supervisor's, as bind's sockets are, and
// every generation serves metrics on a copy of it. A serving process used
// to bind it itself with SO_REUSEPORT: each generation then had a socket
// of its own in the group, and when the replaced one closed its socket,
// the kernel reset the scrapes it had queued there (hashed to it, not yet
// accepted). One socket that stays open across generations keeps its
// queue; whichever generation accepts first answers.

// openMetrics binds cfg's metrics_bind (nil without one), a unix socket
// with socket_mode and socket_owner as bind's get. Only one socket: the
// generations share its queue, so nothing is gained by SO_REUSEPORT, and
// without it another process cannot join it unnoticed.
func openMetrics(cfg *config.Config) (*bind.Set, error) {
	if cfg.MetricsBind == "" {
		return nil, nil
	}
	o, err := bindOptions(cfg, nil)
	if err != nil {
		return nil, err
	}
	o.Loops, o.ReusePort = 1, false
	set, err := bind.Open([]string{cfg.MetricsBind}, o)
	if err != nil {
		return nil, fmt.Errorf("%s: metrics_bind: %w", cfg.Source.Of("metrics_bind"), err)
	}
	return set, nil
}

// rebindMetrics adapts the metrics socket to a reloaded config whose
// metrics_bind was from before: kept while the address stays, otherwise
// the new address is bound and the old socket retired (closed, its unix
// socket file removed, once a generation without it serves).
func (s *Supervisor) rebindMetrics(from string, cfg *config.Config) error {
	if cfg.MetricsBind == from {
		return nil
	}
	next, err := openMetrics(cfg)
	if err != nil {
		return err
	}
	if s.metrics != nil {
		s.retired = append(s.retired, s.metrics.Sockets...)
	}
	s.metrics = next
	return nil
}

// inheritMetrics takes over the metrics socket the old supervisor of a
// binary upgrade passed on, and adapts it to cfg. An old supervisor from
// before the supervisor owned it passes none (not even an empty entry):
// its serving processes still hold their own SO_REUSEPORT sockets on the
// address, which this one cannot bind, so its serving processes bind it
// the old way, until a restart.
func (s *Supervisor) inheritMetrics(cfg *config.Config) error {
	env, passed := os.LookupEnv(bind.EnvMetrics)
	if !passed {
		if cfg.MetricsBind != "" {
			s.log.Warn("upgraded from an asyncd whose serving processes bind metrics_bind themselves: "+
				"these do too until the next restart", "metrics_bind", cfg.MetricsBind)
		}
		return nil
	}
	set, err := bind.Inherited(env)
	if err != nil {
		return err
	}
	s.metrics = set
	from := ""
	if set != nil && len(set.Sockets) > 0 {
		from = set.Sockets[0].Addr.Spec
	}
	return s.rebindMetrics(from, cfg)
}

// metricsSockets is the metrics socket, if any, as a list.
func (s *Supervisor) metricsSockets() []bind.Socket {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.Sockets
}
