package engine

import "log"

// SetAdapterErrorLog replaces the net/http adapter's error log for a test
// (a fresh one is not rate-limited across runs); the returned func restores it.
func SetAdapterErrorLog(l *log.Logger) (restore func()) {
	prev := adapterErrorLog
	adapterErrorLog = l
	return func() { adapterErrorLog = prev }
}
