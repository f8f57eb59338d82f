// Package metrics is the "metrics" handler plugin: it serves the process's
// Prometheus exposition (package metrics, text format 0.0.4) on a route.
// To keep metrics off the public address, use metrics_bind instead (a
// separate net/http listener, metrics.Serve).
//
// It owns only its handler. The handler is neither inline nor blocking: it
// runs where the worker class puts it, since rendering takes microseconds
// and never waits.
package metrics

import (
	"github.com/asyncd/asyncd/engine"
	asyncmetrics "github.com/asyncd/asyncd/internal/metrics"
	"github.com/asyncd/asyncd/plugins"
)

func init() { plugins.Register("metrics", New) }

// New builds a metrics handler; it takes no options.
func New(r plugins.Route) (engine.Handler, error) {
	var o struct{}
	if err := plugins.Decode(r.Options, &o); err != nil {
		return nil, err
	}
	m := r.Context().Metrics
	return engine.HandlerFunc(func(c *engine.Ctx) { serve(c, m) }), nil
}

func serve(c *engine.Ctx, m plugins.Metrics) {
	body := m.AppendText(c.ResponseBody()[:0])
	c.SetContentType(asyncmetrics.ContentType)
	c.SetHeader("Cache-Control", "no-store")
	c.SetBody(body)
}
