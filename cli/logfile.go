package cli

import (
	"os"
	"sync"
)

// reopenFile is an append-only log file that can be reopened in place
// (logrotate moves the old file away, then sends SIGUSR1).
type reopenFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

func openReopenFile(path string) (*reopenFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &reopenFile{path: path, f: f}, nil
}

// Write implements io.Writer.
func (r *reopenFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Write(p)
}

// Reopen opens the path again and swaps the file.
func (r *reopenFile) Reopen() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (r *reopenFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
