package accesslog

import (
	"io"
	"log/slog"
)

// Test-only constructors and listings.

// NewWriter is New over any writer (a pipe, a test buffer). Reopen does
// nothing and Close does not close w.
func NewWriter(w io.Writer, format string, jsonOut bool, errlog *slog.Logger) (*Logger, error) {
	f, err := compileFor(format, jsonOut)
	if err != nil {
		return nil, err
	}
	return start(f, "", w, nil, errlog, FlushInterval), nil
}

// JSONKeys lists the JSON access log's fixed keys with the Gunicorn atom
// each carries, for documentation and tests.
func JSONKeys() map[string]string {
	letter := map[kind]string{}
	for l, k := range letters {
		letter[k] = l
	}
	out := map[string]string{}
	for _, f := range jsonFields {
		out[f.key] = letter[f.kind]
	}
	out["bytes"] = "B, b"
	return out
}
