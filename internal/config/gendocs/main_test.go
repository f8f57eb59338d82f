package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/internal/config"
)

const docsPath = "../../../docs/configuration.md"

// TestDocsUpToDate fails when docs/configuration.md and the settings table
// have drifted apart.
func TestDocsUpToDate(t *testing.T) {
	var want bytes.Buffer
	render(&want)
	got, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatalf("read %s: %v\nGenerate it with: go run ./internal/config/gendocs > docs/configuration.md", docsPath, err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(want.String(), "\n")
		line := 0
		for line < len(gl) && line < len(wl) && gl[line] == wl[line] {
			line++
		}
		t.Fatalf("docs/configuration.md is out of date with the settings table (first difference at line %d).\n"+
			"Regenerate it from the repository root with:\n\tgo run ./internal/config/gendocs > docs/configuration.md", line+1)
	}
}

// TestDocsCoverTable: every setting and every unimplemented Gunicorn
// setting is documented.
func TestDocsCoverTable(t *testing.T) {
	var b bytes.Buffer
	render(&b)
	doc := b.String()
	for _, s := range config.Describe() {
		var want string
		switch s.Support {
		case config.Supported:
			want = "#### `" + s.Key + "`\n"
		case config.Action:
			want = "| `" + s.FlagText() + "` |"
		default:
			want = "| `" + s.Key + "` |"
		}
		if !strings.Contains(doc, want) {
			t.Errorf("docs lack %q", want)
		}
	}
}

// TestDocsExamplesLoad: the YAML and .py examples in the docs load.
func TestDocsExamplesLoad(t *testing.T) {
	var b bytes.Buffer
	render(&b)
	dir := t.TempDir()
	for _, ex := range []struct{ fence, name string }{{"```yaml\n", "example.yaml"}, {"```python\n", "example.conf.py"}} {
		doc := b.String()
		i := strings.Index(doc, ex.fence)
		if i < 0 {
			t.Fatalf("no %q block", ex.fence)
		}
		body := doc[i+len(ex.fence):]
		body = body[:strings.Index(body, "```")]
		path := filepath.Join(dir, ex.name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, _, err := config.Load(config.NewFlagSet("asyncd"), []string{"-c", path}, nil)
		if err != nil {
			t.Fatalf("%s example does not load: %v\n%s", ex.name, err, body)
		}
		if len(c.Bind) != 2 && ex.name == "example.yaml" {
			t.Fatalf("yaml example: bind %q", c.Bind)
		}
	}
}
