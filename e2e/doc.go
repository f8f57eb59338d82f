// Package e2e holds asyncd's binary-level tests: every test that runs the
// real asyncd binary lives here, built once per test process and started
// with a clean environment by internal/testbin. Each test writes its own
// config and drives asyncd the way an operator and a client would, with
// signals, sockets, files, logs, metrics and systemd's notification and
// socket-activation protocols.
//
// The files are grouped by concern: what a client sees of a request
// (serve, paths, forwarded, proxyprotocol, plugins, proxylog), what an
// operator reads (accesslog, metrics, config), and the process model
// (reload, upgrade, stop, drain, handover, recycle, instance, backend, ops,
// socket, files, soak: load with reloads, and the long soak of make soak).
// Two harnesses start asyncd, both on testbin: startServer (harness_test.go:
// stdout and stderr together, a raw HTTP client) and run (proc_test.go:
// stdout, the access log, apart; net/http clients).
//
// In -short mode the tests here are skipped (testbin.Binary).
//
// It owns only tests; it must not be imported, and it does not reach into
// asyncd's packages: what it checks is what a user of the binary sees.
package e2e
