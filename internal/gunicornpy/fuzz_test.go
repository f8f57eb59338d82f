package gunicornpy

import (
	"regexp"
	"strings"
	"testing"
)

var ident = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// FuzzGunicornPy: the .py reader never panics, reads identifiers at lines
// of the file, and reports every problem as one line, at a line of the
// file, in line order. (That whatever loads prints as YAML that loads back
// the same is config's FuzzGunicornPyLoad.)
func FuzzGunicornPy(f *testing.F) {
	for _, seed := range []string{
		"bind = \"0.0.0.0:8000\"\nworkers = 3\nworker_class = \"gevent\"\ntimeout = 30\npreload_app = False\n",
		"import multiprocessing\nworkers = multiprocessing.cpu_count() * 2 + 1\n",
		"bind = ['0.0.0.0:80', \"unix:/run/a.sock\"]\nsecure_scheme_headers = {'X-A': 'b',}\numask = 0o22\n",
		"\"\"\"doc\"\"\"\ntimeout = 2.5  # c\nraw_env = ('A=1',\n  'B=2')\nkeepalive = \\\n 5\n",
		"def on_exit(server):\n    pass\n",
		"a = '''x\ny'''\nb = r'\\d' 'e'\n",
		"x = {1: [None, True, -3, 0x1f, 1_0.5e-3]}\n",
		"if True:\n  workers = 1\nelse:\n  worker_class = gevent\n",
		"routes = [{'path': '/', 'handler': 'h', 'options': {'a': [1, {'b': None}]}}]\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		lines := strings.Count(src, "\n") + 1
		assigns, problems := Parse([]byte(src), testSettings{})
		for _, a := range assigns {
			if a.Line < 1 || a.Line > lines || !ident.MatchString(a.Name) {
				t.Fatalf("assignment %q at line %d of %d", a.Name, a.Line, lines)
			}
		}
		last := 1
		for _, p := range problems {
			if p.Line < last || p.Line > lines {
				t.Fatalf("problem at line %d of %d, after line %d: %q", p.Line, lines, last, p.Msg)
			}
			last = p.Line
			if p.Msg == "" || strings.ContainsAny(p.Msg, "\n\r") {
				t.Fatalf("problem is not one line: %q", p.Msg)
			}
			if p.Kind < KindValue || p.Kind > KindHook {
				t.Fatalf("problem of kind %d: %q", p.Kind, p.Msg)
			}
		}
	})
}
