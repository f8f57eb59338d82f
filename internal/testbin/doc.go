// Package testbin runs the real asyncd binary for the binary-level test
// suites (e2e/ and deploy/): it builds the binary once per test process,
// starts it with a clean environment (only what the test passes), collects
// its output while the test reads it, waits for log lines, signals it, and
// stops it when the test ends, showing its output if the test failed.
//
// It also reads the test knobs, the environment variables that shape the
// suites rather than asyncd (ASYNCDTEST_*: see WantBackend), so that every
// suite reads them one way and none of them is in asyncd's own ASYNCD_
// configuration namespace.
//
// In -short mode a test that asks for the binary is skipped: the inner
// loop, go test -short ./..., neither builds nor starts asyncd.
//
// It owns test scaffolding only; production code must not import it.
package testbin
