//go:build race

package e2e

// raceEnabled: the tests run with -race, so the asyncd binary is built
// with it too (the supervisor's code runs there, not in the test process).
const raceEnabled = true
