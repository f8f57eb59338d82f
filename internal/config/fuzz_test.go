package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var pyErrorPrefix = regexp.MustCompile(`^gunicorn\.conf\.py:[1-9][0-9]*: `)

// FuzzGunicornPyLoad: loading a .py config never panics, every problem is
// one line naming the file and a line within it, the problems come in line
// order, and whatever loads prints as YAML that loads back the same. (The
// reader alone is package gunicornpy's FuzzGunicornPy.)
func FuzzGunicornPyLoad(f *testing.F) {
	f.Add(typicalGunicorn)
	// Real-world configs, whose problems span the whole table of settings.
	files, err := filepath.Glob(filepath.Join("testdata", "gunicorn", "*.py"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, _, err := loadPy(src)
		if err != nil {
			checkFuzzError(t, err, pyErrorPrefix)
			return
		}
		checkRoundTrip(t, c)
	})
}

var yamlErrorPrefix = regexp.MustCompile(`^asyncd\.yaml(:[1-9][0-9]*)?: `)

// FuzzYAML: loading arbitrary YAML never panics, every problem is one line
// starting with the file name (and the line of its key), and whatever loads
// prints as YAML that loads back the same.
func FuzzYAML(f *testing.F) {
	for _, seed := range []string{
		"workers: 2\nbind: [':80']\n",
		"worker_clas: sync\n",
		"routes:\n- {path: /, handler: h, methods: [GET], options: {a: [1, {b: null}]}}\n",
		"secure_scheme_headers: {X-A: b}\nlimit_request_body: 10MiB\nkeepalive: 1m30s\nsocket_mode: 0600\n",
		"- a\n",
		"a: &x [1]\nb: *x\n",
		"workers: 1\n---\nworkers: 2\n",
		"{",
		"daemon: false\npreload_app: true\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, _, err := loadMem(yamlFile(src), withFile)
		if err != nil {
			checkFuzzError(t, err, yamlErrorPrefix)
			// After the file name: a line, or the key at fault.
			for _, e := range AllErrors(err) {
				rest := yamlErrorPrefix.ReplaceAllString(e.Error(), "")
				key, _, _ := strings.Cut(rest, ":")
				if !strings.HasPrefix(rest, "line ") && !strings.HasPrefix(rest, "unknown key ") &&
					lookup(key) == nil && !strings.HasPrefix(key, "routes[") {
					t.Fatalf("error names neither a line nor a key: %q", e)
				}
			}
			return
		}
		checkRoundTrip(t, c)
	})
}

func checkFuzzError(t *testing.T, err error, prefix *regexp.Regexp) {
	t.Helper()
	list := AllErrors(err)
	if len(list) == 0 {
		t.Fatalf("error %T is not a config error: %v", err, err)
	}
	last := 0
	for _, e := range list {
		msg := e.Error()
		if !prefix.MatchString(msg) {
			t.Fatalf("error does not name the file (and line): %q", msg)
		}
		if strings.ContainsAny(msg, "\n\r") {
			t.Fatalf("error is not one line: %q", msg)
		}
		if _, line := sourceRank(e.Source); line < last {
			t.Fatalf("errors out of line order:\n%v", err)
		} else {
			last = line
		}
	}
}

func checkRoundTrip(t *testing.T, c *Config) {
	t.Helper()
	out, err := c.YAML()
	if err != nil {
		t.Fatalf("YAML: %v", err)
	}
	back, _, err := loadMem(map[string]string{"p.yaml": string(out)}, []string{"-c", "p.yaml"})
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, out)
	}
	again, err := back.YAML()
	if err != nil {
		t.Fatalf("YAML again: %v", err)
	}
	if stripComments(string(again)) != stripComments(string(out)) {
		t.Fatalf("printed config changes when loaded:\n%s\n---\n%s", out, again)
	}
}
