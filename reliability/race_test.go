//go:build race

package reliability_test

// raceEnabled reports a build with the race detector, which makes every
// operation several times slower: the heaviest tests scale down with it.
const raceEnabled = true
