// Package reliability is asyncd's reliability and security suite: it attacks
// a running server the way the internet will (request smuggling, slow and
// abusive clients, connection resets, descriptor exhaustion, faulty
// handlers) and checks that every attack is answered correctly, that other
// clients keep being served, and that nothing leaks. docs/reliability.md
// lists each attack, the behaviour expected and the test that checks it;
// sustained load with reloads, which runs the real binary, is tested with
// the other binary-level tests in e2e/ (soak_test.go).
//
// The package is test-only: everything lives in _test.go files, run by
// `make test` (short, bounded cases on every backend, under the race
// detector) and `make soak` (the attack cases again at full size without
// it). It owns no production code and must not be imported; it drives the
// engine and the loop backends only through their public APIs and sockets.
package reliability
