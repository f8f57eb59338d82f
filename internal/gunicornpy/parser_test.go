package gunicornpy

import (
	"reflect"
	"testing"
)

// testSettings stands in for config's table of settings: a few settings,
// one server hook, one setting that takes a bare word quoted.
type testSettings struct{}

var testTable = map[string]Setting{
	"workers":      {ExprHint: "set workers = 0", ExprKind: KindEnv},
	"worker_class": {ExprHint: "write the class", ExprKind: KindEnv},
	"proc_name":    {ExprHint: "delete it", ExprKind: KindDelete},
	"on_exit":      {Hook: "a server hook: use ExecStopPost="},
}

func (testSettings) Lookup(name string) (Setting, bool) { s, ok := testTable[name]; return s, ok }

func (testSettings) Suggest(name string) string {
	if name == "worker" {
		return "workers"
	}
	return ""
}

func (testSettings) TakesString(name, v string) bool { return name == "worker_class" && v == "gevent" }

// TestGunicornLiterals covers every literal form the reader accepts.
func TestGunicornLiterals(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want map[string]any
	}{
		{"quotes", `a = 'x'` + "\n" + `b = "y"`, map[string]any{"a": "x", "b": "y"}},
		{"triple quotes", "a = '''one\ntwo'''\nb = \"\"\"it's \"ok\" \"\"\"\nc = '''x''' '''y'''\n",
			map[string]any{"a": "one\ntwo", "b": `it's "ok" `, "c": "xy"}},
		{"escapes", `a = "t\tn\n\\q\"x\x41\u00e9\101\z"`, map[string]any{"a": "t\tn\n\\q\"xAé" + "A" + `\z`}},
		{"raw string", `a = r"C:\new\"q"`, map[string]any{"a": `C:\new\"q`}},
		{"u prefix", `a = u"x"`, map[string]any{"a": "x"}},
		{"adjacent strings", `a = ("%(h)s "` + "\n" + `     '%(r)s')`, map[string]any{"a": "%(h)s %(r)s"}},
		{"utf-8", `a = "héllo, 世界"`, map[string]any{"a": "héllo, 世界"}},
		{"ints", "a = 10\nb = 1_000\nc = 0x1F\nd = 0o22\ne = 0b101\nf = -3\ng = +4\nh = 0\ni = 00",
			map[string]any{"a": 10, "b": 1000, "c": 31, "d": 18, "e": 5, "f": -3, "g": 4, "h": 0, "i": 0}},
		{"floats", "a = 2.5\nb = .5\nc = 1e3\nd = -0.25\ne = 1_0.5", map[string]any{"a": 2.5, "b": 0.5, "c": 1000.0, "d": -0.25, "e": 10.5}},
		{"constants", "a = True\nb = False\nc = None", map[string]any{"a": true, "b": false, "c": nil}},
		{"list and tuple", "a = [1, 'x', [2]]\nb = (1, 2,)\nc = ('one',)\nd = ()\ne = []\nf = (3)",
			map[string]any{"a": []any{1, "x", []any{2}}, "b": []any{1, 2}, "c": []any{"one"}, "d": []any{}, "e": []any{}, "f": 3}},
		{"dict", "a = {'k': 1, \"n\": {'x': [True, None]},}\nb = {}",
			map[string]any{"a": map[string]any{"k": 1, "n": map[string]any{"x": []any{true, nil}}}, "b": map[string]any{}}},
		{"multi-line brackets with comments", "a = [\n  'x',  # first\n\n  # between\n  'y'\n]\nb = 1",
			map[string]any{"a": []any{"x", "y"}, "b": 1}},
		{"backslash continuation", "a = \\\n  5\nb = 'x' \\\n    'y'", map[string]any{"a": 5, "b": "xy"}},
		{"docstring and comments", "\"\"\"Module doc.\"\"\"\n# comment\n\n   # indented comment\na = 1  # trailing\n",
			map[string]any{"a": 1}},
		{"semicolons", "a = 1; b = 2;\n", map[string]any{"a": 1, "b": 2}},
		{"crlf and bom", "\ufeffa = 1\r\nb = [\r\n 2]\r\n", map[string]any{"a": 1, "b": []any{2}}},
		{"no final newline", "a = 'x'", map[string]any{"a": "x"}},
		{"reassignment: last wins", "a = 1\na = 2", map[string]any{"a": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := Parse([]byte(tt.src), testSettings{})
			if problems != nil {
				t.Fatal(problems)
			}
			m := map[string]any{}
			for _, a := range got {
				m[a.Name] = a.Value
			}
			if !reflect.DeepEqual(m, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", m, tt.want)
			}
		})
	}
}

func TestGunicornLines(t *testing.T) {
	got, problems := Parse([]byte("\"\"\"doc\nstring\"\"\"\na = [\n 1,\n]\n\nb = 'x' \\\n  'y'\nc = 3\n"), testSettings{})
	if problems != nil {
		t.Fatal(problems)
	}
	lines := map[string]int{}
	for _, a := range got {
		lines[a.Name] = a.Line
	}
	if want := map[string]int{"a": 3, "b": 7, "c": 9}; !reflect.DeepEqual(lines, want) {
		t.Fatalf("lines %v, want %v", lines, want)
	}
}

// TestGunicornProblems: each statement the reader refuses gives one
// Problem at its line, whose message and Kind come from what Settings says
// about the name assigned.
func TestGunicornProblems(t *testing.T) {
	const reads = "literals only: "
	tests := []struct {
		name, src string
		want      []Problem
		assigned  []string
	}{
		{"expression", "workers = a + 1\n",
			[]Problem{{1, "workers = a + 1 is an expression; asyncd reads " + reads + "set workers = 0", KindEnv}}, nil},
		{"f-string", "\nworkers = f'{a}'\n",
			[]Problem{{2, "workers = f'{a}' uses an f-string; asyncd reads " + reads + "set workers = 0", KindEnv}}, nil},
		{"refused setting", "proc_name = NAME\n",
			[]Problem{{1, "proc_name = NAME is an expression; asyncd reads " + reads + "delete it", KindDelete}}, nil},
		{"no setting, suggested", "worker = w\n",
			[]Problem{{1, `worker = w is an expression, and "worker" is not a setting (did you mean "workers"?); asyncd reads ` +
				reads + "write the final values into the settings that use it", KindDelete}}, nil},
		{"no setting", "port = 1 + 2\n",
			[]Problem{{1, `port = 1 + 2 is an expression, and "port" is not a setting; asyncd reads ` +
				reads + "write the final values into the settings that use it", KindDelete}}, nil},
		{"hook def", "a = 1\ndef on_exit(server):\n    pass\nb = 2\n",
			[]Problem{{2, "def on_exit(server): a server hook: use ExecStopPost=", KindHook}}, []string{"a", "b"}},
		{"hook assigned", "on_exit = lambda s: None\n",
			[]Problem{{1, "on_exit = lambda s: None: a server hook: use ExecStopPost=", KindHook}}, nil},
		{"function", "def f():\n    pass\n",
			[]Problem{{1, "def f(): functions are Python code; asyncd reads literal assignments only (name = value)", KindDelete}}, nil},
		{"word to quote", "worker_class = gevent\n",
			[]Problem{{1, `worker_class = gevent: gevent is a Python name, not a string: quote it: worker_class = "gevent"`, KindValue}}, nil},
		{"word that is no value", "workers = gevent\n",
			[]Problem{{1, "workers = gevent is an expression; asyncd reads " + reads + "set workers = 0", KindEnv}}, nil},
		{"block", "if x:\n    workers = 1\nelse:\n    workers = 2\n",
			[]Problem{{1, "if x: if statements are Python code; asyncd reads literal assignments only (name = value): " +
				"write one literal value per setting, and use ASYNCD_<KEY> environment variables for values that differ between environments",
				KindEnv}}, nil},
		{"dict keys", "a = {None: 1}\nb = {True: 1}\nc = {1.5: 1}\nd = {(1,): 1}\ne = {{}: 1}\n",
			[]Problem{{1, "dict keys must be strings, got null", KindValue}, {2, "dict keys must be strings, got true (a boolean)", KindValue},
				{3, "dict keys must be strings, got 1.5 (a number)", KindValue}, {4, "dict keys must be strings, got a list", KindValue},
				{5, "dict keys must be strings, got a mapping", KindValue}}, nil},
		{"lexer problem, then more", "a = 'x\nb = 1\n",
			[]Problem{{1, "unterminated string (the closing quote is missing on this line)", KindValue}}, []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assigns, problems := Parse([]byte(tt.src), testSettings{})
			if !reflect.DeepEqual(problems, tt.want) {
				t.Errorf("problems\n got: %+v\nwant: %+v", problems, tt.want)
			}
			var names []string
			for _, a := range assigns {
				names = append(names, a.Name)
			}
			if !reflect.DeepEqual(names, tt.assigned) {
				t.Errorf("read %v, want %v", names, tt.assigned)
			}
		})
	}
}
