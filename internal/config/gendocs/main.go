// Command gendocs writes docs/configuration.md from the settings table
// (config.Describe), so the reference cannot drift from the code:
//
//	go run ./internal/config/gendocs > docs/configuration.md
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

	"github.com/asyncd/asyncd/internal/config"
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
	p("<!-- Generated from the settings table in internal/config/settings.go by\n")
	p("     `go run ./internal/config/gendocs > docs/configuration.md`. Do not edit by hand. -->\n\n")
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
	p("using it explains itself instead of failing as unknown. *Ignored* settings are accepted, with a warning\n")
	p("that they have no effect when their value would change something in Gunicorn (none when it is\n")
	p("Gunicorn's default, such as `spew = False`). *Refused unless off* settings are accepted when off\n")
	p("(silently at Gunicorn's default: False, None, empty) and stop start-up when turned on, because asyncd\n")
	p("would silently not do what was asked. *Refused* settings always stop start-up; a server hook is\n")
	p("reported with what replaces it.\n\n")
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
	"1. built-in defaults; as in Gunicorn, `WEB_CONCURRENCY` (when set) is the default of `workers`, and\n" +
	"   `PORT` (when set) makes the default `bind` `0.0.0.0:$PORT`;\n" +
	"2. the config file named by `-c FILE` / `--config FILE`, or by `ASYNCD_CONFIG` (none by default):\n" +
	"   YAML, or a Gunicorn `.py` file (below);\n" +
	"3. Gunicorn's `GUNICORN_CMD_ARGS`, read as command-line flags (split as a shell would): the flags\n" +
	"   asyncd has apply, the rest (Gunicorn flags asyncd does not implement, an application argument)\n" +
	"   is skipped with a warning naming it;\n" +
	"4. environment variables `ASYNCD_<KEY>`, the key upper-cased (`ASYNCD_WORKER_CLASS=async`);\n" +
	"5. command-line flags.\n\n" +
	"This is Gunicorn's order (defaults, file, `GUNICORN_CMD_ARGS`, command line) with asyncd's own\n" +
	"variables between the last two. A serving process gets its whole configuration from the\n" +
	"supervisor and reads none of these again.\n\n" +
	"An unknown key, a value of the wrong type or an impossible value stops start-up. Every such problem\n" +
	"is reported in one pass, each naming the key and where it came from (the file and line); one\n" +
	"problem is one line, several are grouped by what to do about them:\n\n" +
	"```\n" +
	"$ ASYNCD_TIMEOUT=abc asyncd -c asyncd.yaml\n" +
	"asyncd: asyncd.yaml: 3 errors, 0 warnings\n\n" +
	"Unknown keys:\n" +
	"  asyncd.yaml:2: unknown key \"worker_clas\" (did you mean \"worker_class\"?)\n\n" +
	"Values and lines to correct:\n" +
	"  asyncd.yaml:3: workers: must be >= 0, got -2\n" +
	"  ASYNCD_TIMEOUT: timeout: not a duration: \"abc\"\n" +
	"```\n\n" +
	"Every `ASYNCD_` variable must name a setting, except those starting with `ASYNCD_INTERNAL_`, which\n" +
	"asyncd's own processes use among themselves.\n\n" +
	"`asyncd --check-config` loads and validates the configuration, builds the routes (so each handler\n" +
	"plugin checks its options), and checks on this machine what it can without starting: that `chdir`\n" +
	"is a directory, that `user` and `group` exist, and that the directories of `errorlog`, `accesslog`\n" +
	"and `pidfile` exist and can be written by the process that writes each (the serving process, as\n" +
	"`user`, writes the access log). Run it where asyncd will run: directories that systemd creates at\n" +
	"start (`RuntimeDirectory=`, `LogsDirectory=`) are missing before. It prints every problem at once,\n" +
	"grouped by what to do (lines to delete, values to move into `ASYNCD_*` variables, server hooks and\n" +
	"what replaces each, unknown keys, values to correct, the machine's), each group in line order, then\n" +
	"the warnings, and exits 1; with warnings alone it prints them, then `config OK`, and exits 0.\n" +
	"`asyncd --print-config` prints the effective configuration as YAML, each value not at its default\n" +
	"annotated with its source, in a form `-c` reads back. Values that look like secrets print as\n" +
	"`xxxxx`, so the output can be pasted into a ticket: the password of a URL\n" +
	"(`postgres://app:xxxxx@db/app`), `password=` (also `sslpassword`, `token`, `secret`, `api_key`) in a\n" +
	"libpq `key=value` DSN or a URL query, and the whole value of a `raw_env` variable or a route option\n" +
	"whose name contains PASSWORD, PASSWD, TOKEN, SECRET, API_KEY, APIKEY, ACCESS_KEY, PRIVATE_KEY or\n" +
	"CREDENTIAL (any case); a masked file still loads, with the masks as values.\n\n" +
	"A setting that asyncd ignores gets a warning only when its value would change something in\n" +
	"Gunicorn: `daemon = False`, `spew = False` or `proc_name = None` are Gunicorn's defaults, and\n" +
	"load silently. A config without routes loads with a warning: every request would be answered 404.\n" +
	"When asyncd starts, the supervisor writes each warning once to the error log, in its format\n" +
	"(`error_log_format`), as `config: FILE:LINE: ...`; a reload (`HUP`) does the same.\n\n" +
	"## Value syntax\n\n" +
	"- **Durations**: an integer or decimal number of seconds as Gunicorn writes them (`30`, `\"30\"`,\n" +
	"  `2.5`, `\"2.5\"`), or a Go duration (`1m30s`, `250ms`, `2h`). Handler plugins' duration options\n" +
	"  take the same forms.\n" +
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
	"Route keys are `path` (or `mount`), `handler`, `methods`, `blocking`, `request_buffering` and `options`; any other key is an error\n" +
	"naming it (`asyncd.yaml:14: unknown key \"routes[1].hanlder\" (did you mean \"routes[1].handler\"?)`).\n" +
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
	"preload_app = True             # accepted, with a warning that it has no effect\n" +
	"```\n\n" +
	"and maps each name onto the setting of the same name. Values may be strings in any quoting (single,\n" +
	"double, triple, raw, adjacent strings joined), integers (with `_`, `0x`, `0o`, `0b`), floats,\n" +
	"`True`, `False`, `None`, lists, tuples and dicts, nested; comments and line continuations work as in\n" +
	"Python. Anything else stops start-up with the file, the line, the statement and what to write\n" +
	"instead: imports, expressions (`multiprocessing.cpu_count() * 2 + 1`, `os.environ[\"PORT\"]`),\n" +
	"f-strings, function definitions such as server hooks (`def on_starting(server):`, reported with\n" +
	"what replaces each), and `if`/`for`/`with`/`try` blocks. The reader skips past each such statement\n" +
	"(a block with its body) and goes on, so one run reports them all. An unquoted word\n" +
	"(`worker_class = gevent`) is reported with the quoted form to write. Names that are not settings are\n" +
	"errors too (Gunicorn ignores them), so a misspelled setting cannot pass unnoticed; old and\n" +
	"flag-style names point to the setting (`logfile` and `log_file` to `errorlog`), and `debug` and\n" +
	"`command`, which Gunicorn ignores too, load with a warning. Put values that differ between\n" +
	"environments in `ASYNCD_<KEY>` variables instead of computing them in the file.\n\n"
