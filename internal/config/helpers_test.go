package config

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/knadh/koanf/v2"
)

// memProvider serves one in-memory file to load's opener.
type memProvider struct {
	data []byte
	err  error
}

func (m memProvider) ReadBytes() ([]byte, error) { return m.data, m.err }
func (m memProvider) Read() (map[string]any, error) {
	return nil, errors.New("memProvider: Read unsupported")
}

// memOpen opens files from a map; a missing name fails as os.ReadFile does.
func memOpen(files map[string]string) func(string) koanf.Provider {
	return func(path string) koanf.Provider {
		s, ok := files[path]
		if !ok {
			return memProvider{err: &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}}
		}
		return memProvider{data: []byte(s)}
	}
}

// loadMem runs the whole of Load against in-memory files.
func loadMem(files map[string]string, args []string, environ ...string) (*Config, []string, error) {
	c, w, err := load(NewFlagSet("asyncd"), args, environ, memOpen(files))
	if err != nil {
		return nil, w, err
	}
	return c, w, nil
}

// mustLoad fails the test on a load error.
func mustLoad(t *testing.T, files map[string]string, args []string, environ ...string) (*Config, []string) {
	t.Helper()
	c, w, err := loadMem(files, args, environ...)
	if err != nil {
		t.Fatalf("load %v: %v", args, err)
	}
	return c, w
}

// yamlFile is the usual single config file.
func yamlFile(body string) map[string]string { return map[string]string{"asyncd.yaml": body} }

var withFile = []string{"-c", "asyncd.yaml"}
