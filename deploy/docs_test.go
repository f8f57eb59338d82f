package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/internal/config"
)

// TestGunicornGuideComplete checks that docs/gunicorn.md accounts for
// everything a Gunicorn user may have configured: every setting of the
// settings table (Gunicorn's and asyncd's own), every worker class name the
// config accepts, Gunicorn's signals and its access log atoms. A setting
// added to the table without a word in the guide fails here.
func TestGunicornGuideComplete(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "gunicorn.md"))
	if err != nil {
		t.Fatal(err)
	}
	guide := string(b)
	mentions := func(s string) bool { return strings.Contains(guide, "`"+s+"`") }
	for _, s := range config.Describe() {
		if s.Key == "help" || s.Key == "version" {
			continue
		}
		if !mentions(s.Key) {
			t.Errorf("docs/gunicorn.md does not mention the setting `%s` (%s)", s.Key, s.Support)
		}
		if s.Key == "worker_class" {
			for _, name := range append(append([]string{}, s.Choices...), s.Aliases...) {
				if !mentions(name) {
					t.Errorf("docs/gunicorn.md does not say what worker_class `%s` runs as", name)
				}
			}
		}
	}
	for _, sig := range []string{"HUP", "TERM", "INT", "QUIT", "USR1", "USR2", "TTIN", "TTOU", "WINCH", "ABRT"} {
		if !mentions(sig) {
			t.Errorf("docs/gunicorn.md does not cover the signal %s", sig)
		}
	}
	// Gunicorn's access log atoms, as its documentation lists them.
	for _, atom := range []string{"h", "l", "u", "t", "r", "m", "U", "q", "H", "s", "B", "b", "f", "a", "T", "M", "D", "L", "p",
		"{header}i", "{header}o", "{variable}e"} {
		if !regexp.MustCompile("`" + regexp.QuoteMeta(atom) + "`").MatchString(guide) {
			t.Errorf("docs/gunicorn.md does not cover the access log atom %s", atom)
		}
	}
}
