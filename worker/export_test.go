package worker

// SetAutoBackend sets what `backend: auto` prefers for the test's duration
// and returns the function that restores it.
func SetAutoBackend(name string) (restore func()) {
	old := autoBackend
	autoBackend = name
	return func() { autoBackend = old }
}
