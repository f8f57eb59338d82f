// Package profiling is the example's measurement hook: Go's CPU, heap and
// allocation profiles (net/http/pprof) and runtime.MemStats (expvar's
// memstats, whose Mallocs over requests served is allocations per
// request), on one http.Handler under /debug/. It is for measuring on a
// private address, never for a public route: see ../README.md.
package profiling

import (
	"expvar"
	"net/http"
	"net/http/pprof"
)

// Handler serves /debug/pprof/... and /debug/vars.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	return mux
}
