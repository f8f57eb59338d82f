package metrics

import (
	"fmt"
	"log/slog"
)

// serve serves m on addr at once (tests).
func serve(addr string, m *Metrics, errlog *slog.Logger) (func(), error) {
	ln, cleanup, err := listen(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_bind %s: %w", addr, err)
	}
	ready := make(chan struct{})
	close(ready)
	return serveOn(ln, cleanup, addr, m, ready, errlog), nil
}
