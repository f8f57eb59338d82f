//go:build race

package testbin

// Race reports that the test binary was built with -race:
// Build{Race: Race} builds asyncd the way the tests themselves are built.
const Race = true
