// Command gendocs writes docs/configuration.md from the settings table
// (config.Describe), so the reference cannot drift from the code:
//
//	go run ./config/gendocs > docs/configuration.md
//
// Its test fails when the committed file differs from what it would write.
// It reads only the table; it must not read the environment or the machine
// (CPU count, paths), so the output is the same everywhere.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/asyncd/asyncd/config"
)

func main() {
	w := bufio.NewWriter(os.Stdout)
	render(w)
	if err := w.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: write: %v\n", err)
		os.Exit(1)
	}
}

func render(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	all := config.Describe()

	p("# asyncd configuration\n\n")
	p("<!-- Generated from the settings table in config/settings.go by\n")
	p("     `go run ./config/gendocs > docs/configuration.md`. Do not edit by hand. -->\n\n")
	p("%s", intro)

	p("## Settings\n\n")
	for _, g := range config.Groups {
		var in []config.Setting
		for _, s := range all {
			if s.Group == g && s.Support == config.Supported {
				in = append(in, s)
			}
		}
		if len(in) == 0 {
			continue
		}
		p("### %s\n\n", g)
		for _, s := range in {
			renderSetting(p, s)
		}
	}

	p("## Command-line actions\n\n")
	p("These are flags, not settings: they cannot appear in a config file or the environment.\n\n")
	p("| Flag | Meaning |\n|---|---|\n")
	for _, s := range all {
		if s.Support == config.Action {
			p("| `%s` | %s |\n", s.FlagText(), s.Help)
		}
	}
	p("\n")

	p("## Gunicorn settings asyncd does not implement\n\n")
	p("Each is recognised, in a config file, the environment (`ASYNCD_<KEY>`) or as Gunicorn's flag, so that\n")
	p("using it explains itself instead of failing as unknown. *Ignored* settings are accepted with a warning\n")
	p("that they have no effect. *Refused unless off* settings are accepted with that warning when they hold\n")
	p("Gunicorn's default (False, None, empty) and stop start-up when turned on, because asyncd would silently\n")
	p("not do what was asked. *Refused* settings always stop start-up.\n\n")
	p("| Setting | Gunicorn flag | asyncd | Why, and what to do instead |\n|---|---|---|---|\n")
	for _, g := range config.Groups {
		for _, s := range all {
			if s.Group != g || s.Support == config.Supported || s.Support == config.Action {
				continue
			}
			flag := s.FlagText()
			if flag != "" {
				flag = "`" + flag + "`"
			}
			p("| `%s` | %s | %s | %s |\n", s.Key, flag, s.Support, s.Reason)
		}
	}
}

func renderSetting(p func(string, ...any), s config.Setting) {
	p("#### `%s`\n\n", s.Key)
	if f := s.FlagText(); f != "" {
		parts := strings.Split(f, ", ")
		rep := ""
		if s.Repeatable {
			rep = " (repeatable)"
		}
		p("- Flag: `%s`%s\n", strings.Join(parts, "`, `"), rep)
	} else {
		p("- Flag: none\n")
	}
	if s.Env != "" {
		p("- Environment: `%s`\n", s.Env)
	} else {
		p("- Environment: none (config file only)\n")
	}
	if s.NoFile {
		p("- Config file: no\n")
	}
	typ := s.Type.String()
	if s.Type == config.TypeEnum {
		typ = "one of " + strings.Join(quoteAll(s.Choices), ", ")
		if len(s.Aliases) > 0 {
			typ += " (also: " + strings.Join(quoteAll(s.Aliases), ", ") + ")"
		}
	}
	p("- Type: %s\n", typ)
	def := s.DefaultText()
	if def == "" {
		def = `""`
	}
	p("- Default: `%s`\n\n", def)
	p("%s\n\n", s.Help)
	if s.Doc != "" {
		p("%s\n\n", s.Doc)
	}
	if s.Gunicorn != "" {
		p("*Gunicorn:* %s\n\n", s.Gunicorn)
	}
}

func quoteAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = "`" + s + "`"
	}
	return out
}

const intro = "asyncd takes Gunicorn's setting names wherever Gunicorn has the setting, so most Gunicorn\n" +
	"configurations carry over. This page lists every setting, where it can be set, its default and\n" +
	"what it means; the last section lists the Gunicorn settings asyncd does not implement and why.\n\n" +
	"## Where settings come from\n\n" +
	"Later sources override earlier ones, key by key:\n\n" +
	"1. built-in defaults;\n" +
	"2. the config file named by `-c FILE` / `--config FILE`, or by `ASYNCD_CONFIG` (none by default):\n" +
	"   YAML, or a Gunicorn `.py` file (below);\n" +
	"3. environment variables `ASYNCD_<KEY>`, the key upper-cased (`ASYNCD_WORKER_CLASS=async`);\n" +
	"4. command-line flags.\n\n" +
	"An unknown key, a value of the wrong type or an impossible value stops start-up with one message\n" +
	"naming the key and where it came from:\n\n" +
	"```\n" +
	"asyncd.yaml: unknown key \"worker_clas\" (did you mean \"worker_class\"?)\n" +
	"asyncd.yaml: workers: must be >= 0, got -2\n" +
	"ASYNCD_TIMEOUT: timeout: not a duration: \"abc\"\n" +
	"gunicorn.conf.py:3: workers = multiprocessing.cpu_count()*2+1 is an expression; asyncd reads literals only: set workers = 0 for one event loop per CPU\n" +
	"```\n\n" +
	"Every `ASYNCD_` variable must name a setting, except those starting with `ASYNCD_INTERNAL_`, which\n" +
	"asyncd's own processes use among themselves. `asyncd --check-config` loads and validates the\n" +
	"configuration and exits 0 or 1; `asyncd --print-config` prints the effective configuration as YAML,\n" +
	"each value not at its default annotated with its source, in a form `-c` reads back.\n\n" +
	"## Value syntax\n\n" +
	"- **Durations**: an integer or decimal number of seconds as Gunicorn writes them (`30`, `\"30\"`,\n" +
	"  `2.5`), or a Go duration (`1m30s`, `250ms`, `2h`).\n" +
	"- **Sizes** (bytes): an integer, or a number with a unit: `KB` `MB` `GB` `TB` (powers of 1000) or\n" +
	"  `KiB` `MiB` `GiB` `TiB` (powers of 1024), case-insensitive, e.g. `64KiB`, `10MB`, `1.5GiB`.\n" +
	"  A bare `K`, `M` or `G` is refused as ambiguous.\n" +
	"- **Octal modes** (`socket_mode`, `umask`): a string is always octal (`\"0660\"`, `\"660\"`,\n" +
	"  `\"0o660\"`), as chmod reads it; an integer is taken as it is (YAML reads an unquoted `0660` as\n" +
	"  octal, Python needs `0o660`).\n" +
	"- **Booleans**: `true`/`false`; in the environment and flags also `yes`/`no`, `on`/`off`, `1`/`0`.\n" +
	"  A boolean flag alone means true: `--reuse-port=false` turns one off.\n" +
	"- **Lists**: a YAML or Python list. In the environment, comma-separated\n" +
	"  (`ASYNCD_BIND=\"0.0.0.0:80,unix:/run/asyncd.sock\"`). Flags marked repeatable are given once per\n" +
	"  item (`-b :80 -b :81`); a list given by a later source replaces the earlier list whole.\n" +
	"- **Maps**: a YAML or Python mapping; in the environment `NAME=VALUE,NAME=VALUE`.\n" +
	"- **Null** (`key:` or `~` in YAML, `None` in Python) means an empty string, list or map, and is\n" +
	"  refused for other types.\n\n" +
	"Flags accept `_` for `-` (`--worker_class`, `--limit-request-field-size`).\n\n" +
	"## Example\n\n" +
	"```yaml\n" +
	"bind:\n" +
	"  - 0.0.0.0:8000\n" +
	"  - unix:/run/asyncd.sock\n" +
	"workers: 0                # one event loop per CPU\n" +
	"worker_class: sync\n" +
	"keepalive: 90s\n" +
	"timeout: 30               # Gunicorn-style seconds work too\n" +
	"limit_request_body: 10MiB\n" +
	"accesslog: \"-\"\n" +
	"forwarded_allow_ips: [10.0.0.0/8]\n" +
	"routes:\n" +
	"  - path: /\n" +
	"    handler: static       # a handler plugin's name: built in, or your own\n" +
	"    methods: [GET, HEAD]\n" +
	"    options: {body: \"Hello, World!\", content_type: text/plain}\n" +
	"  - path: /readyz\n" +
	"    handler: health       # 503 while asyncd starts or drains\n" +
	"  - path: /report\n" +
	"    handler: static\n" +
	"    blocking: true        # may block: never runs on the event loop\n" +
	"    options: {body: \"done\", delay: 2s}\n" +
	"```\n\n" +
	"Route keys are `path`, `handler`, `methods`, `blocking` and `options`; any other key is an error\n" +
	"naming it (`asyncd.yaml: unknown key \"routes[1].hanlder\" (did you mean \"routes[1].handler\"?)`).\n" +
	"Handler names and options are checked by the plugin that owns them, after this file is read.\n\n" +
	"## Gunicorn .py files\n\n" +
	"A config file whose name ends in `.py` is read as a Gunicorn config. asyncd runs no Python: it reads\n" +
	"the top-level assignments of literals that Gunicorn configs are nearly always made of,\n\n" +
	"```python\n" +
	"\"\"\"A docstring is fine.\"\"\"\n" +
	"bind = \"0.0.0.0:8000\"          # or a list: [\"0.0.0.0:8000\", \"unix:/run/app.sock\"]\n" +
	"workers = 0                    # one event loop per CPU\n" +
	"worker_class = \"gevent\"        # runs as asyncd's async class\n" +
	"timeout = 30\n" +
	"secure_scheme_headers = {\n" +
	"    \"X-FORWARDED-PROTO\": \"https\",  # brackets may span lines\n" +
	"}\n" +
	"umask = 0o022\n" +
	"preload_app = False            # accepted, with a warning that it has no effect\n" +
	"```\n\n" +
	"and maps each name onto the setting of the same name. Values may be strings in any quoting (single,\n" +
	"double, triple, raw, adjacent strings joined), integers (with `_`, `0x`, `0o`, `0b`), floats,\n" +
	"`True`, `False`, `None`, lists, tuples and dicts, nested; comments and line continuations work as in\n" +
	"Python. Anything else stops start-up with the file, the line, the statement and what to write\n" +
	"instead: imports, expressions (`multiprocessing.cpu_count() * 2 + 1`, `os.environ[\"PORT\"]`),\n" +
	"f-strings, function definitions such as server hooks (`def on_starting(server):`), and `if`/`for`/\n" +
	"`with`/`try` blocks. Names that are not settings are errors too (Gunicorn ignores them), so a\n" +
	"misspelled setting cannot pass unnoticed. Put values that differ between environments in\n" +
	"`ASYNCD_<KEY>` variables instead of computing them in the file.\n\n"
