package cli

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/safefile"
	"github.com/asyncd/asyncd/internal/supervisor"
)

// reopenFile is an append-only log file that can be reopened in place
// (logrotate moves the old file away, then sends SIGUSR1).
type reopenFile struct {
	mu   sync.Mutex
	path string
	// user is the unprivileged serving user when this process is the root
	// supervisor: the file is opened without following what that user
	// could have planted (package safefile).
	user *safefile.User
	f    *os.File
}

func openReopenFile(path string, u *safefile.User) (*reopenFile, error) {
	f, err := safefile.OpenAppend(path, 0o644, u)
	if err != nil {
		return nil, err
	}
	return &reopenFile{path: path, user: u, f: f}, nil
}

// servingUser is the user whose planted links the error log must not
// follow: the serving user, in a root supervisor that switches to one.
// A user that does not resolve is reported later, where the switch fails.
func servingUser(cfg *config.Config) *safefile.User {
	u, _ := supervisor.ServingUser(cfg)
	return u
}

// Write implements io.Writer.
func (r *reopenFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Write(p)
}

// Reopen opens the path again and swaps the file; on error the old file
// stays in use.
func (r *reopenFile) Reopen() error {
	f, err := safefile.OpenAppend(r.path, 0o644, r.user)
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

// fatal logs the error that ends asyncd. When the error log is a file it
// also goes to stderr: whoever started asyncd (a terminal, a service
// manager's journal) sees why it exited, and where to read more.
func (l *errorLog) fatal(stderr io.Writer, msg string, err error) {
	l.Logger.Error(msg, "error", err.Error())
	if l.file != nil {
		fmt.Fprintf(stderr, "asyncd: %s: %v (error log: %s)\n", msg, err, l.file.path)
	}
}
