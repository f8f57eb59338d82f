package loop

// SetAutoOrder sets what `backend: auto` tries, in order, for the test's
// duration and returns the function that restores it.
func SetAutoOrder(names ...string) (restore func()) {
	old := autoOrder
	autoOrder = names
	return func() { autoOrder = old }
}
