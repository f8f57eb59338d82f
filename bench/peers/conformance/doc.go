// Package conformance holds the end-to-end check that every benchmark peer
// (built from bench/peers/cmd, plus nginx and Gunicorn from their bench
// configs) answers the benchmark routes exactly as asyncd does, over real
// sockets, and that the wrk scripts report machine-readable results.
//
// It has no code of its own: the checks live in conformance_test.go and
// drive the same probe the runner uses. It must not be imported.
package conformance
