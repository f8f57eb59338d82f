//go:build race

package engine

// raceEnabled skips allocation counts: under the race detector sync.Pool
// drops items on purpose, so a pooled Ctx is sometimes allocated anew.
const raceEnabled = true
