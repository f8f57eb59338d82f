//go:build race

package uring

// raceEnabled scales down connection counts where the race detector makes
// each one far slower.
const raceEnabled = true
