// Package e2e holds the supervisor's black-box tests: they build the real
// asyncd binary once, run it with a config written per test, and drive it
// the way an operator and a client would, with signals, sockets, files and
// systemd's notification and socket-activation protocols.
//
// It owns only tests; it must not be imported, and it does not reach into
// asyncd's packages: what it checks is what a user of the binary sees.
package e2e
