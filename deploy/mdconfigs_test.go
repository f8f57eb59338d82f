package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/internal/config"
	"go.yaml.in/yaml/v3"
)

// Markers for Markdown code blocks, on the line right before the opening
// fence. Every ```yaml block of README.md, docs/, deploy/ and examples/ is
// either an asyncd config, checked with --check-config, or carries one of
// the two "not a full config" markers, or is a Kubernetes object:
//
//   - configMarker: the block is a complete asyncd config (required for
//     ```python blocks, which are Gunicorn configs; optional for YAML,
//     where a block with asyncd keys is recognised without it).
//   - fragmentMarker: a deliberate excerpt of an asyncd config (a few
//     keys, routes that need files or hosts that exist only in
//     production). Not loaded, but its top-level keys must be asyncd
//     settings, so a misspelled key in an excerpt still fails.
//   - noneMarker: YAML that is not asyncd's at all (a Prometheus scrape
//     config, a CI file). Not checked.
//
// A YAML block without a marker must be a config (it has a top-level key
// that is an asyncd setting) or a Kubernetes object (apiVersion and kind);
// anything else fails and asks for a marker, so a config that is new,
// misspelled or only a fragment cannot slip by unchecked.
const (
	configMarker   = "<!-- asyncd-config -->"
	fragmentMarker = "<!-- asyncd-config: fragment -->"
	noneMarker     = "<!-- asyncd-config: none -->"
)

// block is one code block of a Markdown file that is an asyncd config.
type block struct {
	line int    // line of the opening fence
	ext  string // yaml or py
	text string
}

// fence is one fenced code block of a Markdown document.
type fence struct {
	line   int    // 1-based line of the opening fence
	info   string // the info string's first word, lower case: "yaml", "python", ""
	marker string // the trimmed line before the fence
	text   string // the content, with the fence's indentation removed
}

// fences splits Markdown into its fenced code blocks (backtick fences of
// three or more, possibly indented, as inside list items).
func fences(src string) ([]fence, error) {
	lines := strings.Split(src, "\n")
	var out []fence
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " \t")
		indent := len(lines[i]) - len(trimmed)
		n := len(trimmed) - len(strings.TrimLeft(trimmed, "`"))
		if n < 3 {
			continue
		}
		info := strings.Fields(strings.ToLower(trimmed[n:]))
		f := fence{line: i + 1}
		if len(info) > 0 {
			f.info = info[0]
		}
		if i > 0 {
			f.marker = strings.TrimSpace(lines[i-1])
		}
		var body []string
		end := -1
		for j := i + 1; j < len(lines); j++ {
			t := strings.TrimSpace(lines[j])
			if len(t) >= n && strings.Trim(t, "`") == "" {
				end = j
				break
			}
			l := lines[j]
			// Remove up to the fence's indentation.
			k := 0
			for k < indent && k < len(l) && (l[k] == ' ' || l[k] == '\t') {
				k++
			}
			body = append(body, l[k:])
		}
		if end < 0 {
			return nil, fmt.Errorf("line %d: unterminated code block", i+1)
		}
		f.text = strings.Join(body, "\n") + "\n"
		out = append(out, f)
		i = end
	}
	return out, nil
}

// asyncdKeys are the top-level keys an asyncd config may have.
func asyncdKeys() map[string]bool {
	keys := map[string]bool{}
	for _, s := range config.Describe() {
		keys[s.Key] = true
	}
	return keys
}

// yamlDocsOf decodes every document of a YAML text.
func yamlDocsOf(text string) ([]any, error) {
	var docs []any
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	for {
		var d any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// classifyYAML says what an unmarked or fragment-marked YAML block is:
// "config" (has an asyncd setting at the top level), "kubernetes", or
// "" with the keys that are not asyncd settings.
func classifyYAML(text string, keys map[string]bool) (kind string, unknown []string, err error) {
	docs, err := yamlDocsOf(text)
	if err != nil {
		return "", nil, err
	}
	asyncd := false
	for _, d := range docs {
		m, ok := d.(map[string]any)
		if !ok {
			unknown = append(unknown, fmt.Sprintf("(a top-level %T, not a mapping)", d))
			continue
		}
		if m["apiVersion"] != nil && m["kind"] != nil {
			return "kubernetes", nil, nil
		}
		for k := range m {
			if keys[k] {
				asyncd = true
			} else {
				unknown = append(unknown, k)
			}
		}
	}
	slices.Sort(unknown)
	if asyncd {
		return "config", unknown, nil
	}
	return "", unknown, nil
}

// docBlocks returns the code blocks of a Markdown file that are asyncd
// configs to load, and fails for a YAML block that is neither a config,
// nor a Kubernetes object, nor marked (see configMarker). Every problem of
// the file is reported, not just the first.
func docBlocks(path string) ([]block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	return classifyBlocks(relPath(path), string(b))
}

func classifyBlocks(name, src string) ([]block, error) {
	fs, err := fences(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	keys := asyncdKeys()
	var out []block
	var errs []error
	fail := func(f fence, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, f.line, fmt.Sprintf(format, args...)))
	}
	// A marker must sit right above a fence.
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case configMarker, fragmentMarker, noneMarker:
			if i+1 >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "```") {
				errs = append(errs, fmt.Errorf("%s:%d: %s must be on the line right before a code fence", name, i+1, strings.TrimSpace(l)))
			}
		}
	}
	for _, f := range fs {
		var ext string
		switch f.info {
		case "yaml", "yml":
			ext = "yaml"
		case "python", "py":
			ext = "py"
		}
		switch f.marker {
		case configMarker:
			if ext == "" {
				fail(f, "%s must mark a ```yaml or ```python block, not ```%s", configMarker, f.info)
				continue
			}
			out = append(out, block{line: f.line, ext: ext, text: f.text})
			continue
		case noneMarker:
			if ext != "yaml" {
				fail(f, "%s marks YAML that is not asyncd's, not ```%s", noneMarker, f.info)
			}
			continue
		case fragmentMarker:
			switch ext {
			case "py":
				continue
			case "":
				fail(f, "%s must mark a ```yaml or ```python block, not ```%s", fragmentMarker, f.info)
				continue
			}
			kind, unknown, err := classifyYAML(f.text, keys)
			switch {
			case err != nil:
				fail(f, "fragment is not YAML: %v", err)
			case kind == "kubernetes":
				fail(f, "a Kubernetes object is not an asyncd fragment; drop %s", fragmentMarker)
			case len(unknown) > 0:
				fail(f, "fragment has top-level keys that are not asyncd settings: %s", strings.Join(unknown, ", "))
			}
			continue
		}
		if ext != "yaml" {
			continue // shell, Go, unmarked Python (not a config unless marked)
		}
		kind, unknown, err := classifyYAML(f.text, keys)
		switch {
		case err != nil:
			fail(f, "```yaml block does not parse (%v); if it is deliberately not YAML an asyncd config could be, mark it %s or %s", err, fragmentMarker, noneMarker)
		case kind == "kubernetes":
		case kind == "config":
			// Unknown keys next to asyncd ones are the config's to report:
			// --check-config names them.
			out = append(out, block{line: f.line, ext: ext, text: f.text})
		default:
			fail(f, "```yaml block with no asyncd setting among its top-level keys (%s): if it is not an asyncd config, mark it %s on the line before the fence",
				strings.Join(unknown, ", "), noneMarker)
		}
	}
	return out, errors.Join(errs...)
}

// TestClassifyBlocks checks the rules docBlocks applies, so that the
// configs check cannot pass by recognising nothing.
func TestClassifyBlocks(t *testing.T) {
	tests := []struct {
		name      string
		md        string
		wantLines []int  // blocks to load
		wantErr   string // substring; "" for none
	}{
		{"unmarked config", "x\n```yaml\nbind: [\":8000\"]\n```\n", []int{2}, ""},
		{"unmarked config with a typo next to a real key", "```yaml\nbind: [\":8000\"]\nwrokers: 2\n```\n", []int{1}, ""},
		{"unmarked routes only", "```yaml\nroutes:\n  - {path: /, handler: static}\n```\n", []int{1}, ""},
		{"indented fence in a list item", "- item:\n\n  ```yaml\n  routes:\n    - {path: /, handler: echo}\n  ```\n", []int{3}, ""},
		{"kubernetes", "```yaml\napiVersion: v1\nkind: Service\n```\n", nil, ""},
		{"unmarked foreign yaml", "```yaml\nscrape_configs: []\n```\n", nil, "no asyncd setting"},
		{"unmarked misspelled config", "```yml\nbnid: [\":8000\"]\n```\n", nil, "bnid"},
		{"unmarked list of routes", "```yaml\n- {path: /, handler: static}\n```\n", nil, "not a mapping"},
		{"unmarked unparsable", "```yaml\nbind: [\n```\n", nil, "does not parse"},
		{"none marker", noneMarker + "\n```yaml\nscrape_configs: []\n```\n", nil, ""},
		{"fragment marker", fragmentMarker + "\n```yaml\nroutes:\n  - {path: /static/, handler: files, options: {root: /srv/www}}\n```\n", nil, ""},
		{"fragment with a misspelled key", fragmentMarker + "\n```yaml\nrouts: []\n```\n", nil, "routs"},
		{"config marker on python", configMarker + "\n```python\nbind = \":8000\"\n```\n", []int{2}, ""},
		{"unmarked python", "```python\nimport os\n```\n", nil, ""},
		{"marker not before a fence", configMarker + "\n\n```yaml\nbind: []\n```\n", []int{3}, "right before a code fence"},
		{"marker on a shell block", fragmentMarker + "\n```sh\nls\n```\n", nil, "must mark"},
		{"four-backtick fence holding three", "````yaml\nbind: [\":8000\"]\n```\nworkers: 1\n````\n", nil, "does not parse"},
		{"other languages", "```sh\nbind: x\n```\n```go\nfunc main() {}\n```\n", nil, ""},
		{"unterminated", "```yaml\nbind: []\n", nil, "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := classifyBlocks("x.md", tt.md)
			var lines []int
			for _, b := range blocks {
				lines = append(lines, b.line)
			}
			if !slices.Equal(lines, tt.wantLines) {
				t.Errorf("blocks at lines %v, want %v", lines, tt.wantLines)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	// The indentation of a fence inside a list item is removed.
	blocks, err := classifyBlocks("x.md", "- a\n\n  ```yaml\n  routes:\n    - {path: /, handler: echo}\n  ```\n")
	if err != nil || len(blocks) != 1 || blocks[0].text != "routes:\n  - {path: /, handler: echo}\n" {
		t.Errorf("indented block: %+v, %v", blocks, err)
	}
}
