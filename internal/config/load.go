package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// entry is one raw value from one source.
type entry struct {
	key string // setting key as written (may be unknown)
	val any
	src string // for messages: file, file:line, env var, --flag
	o   origin
}

// Load builds the configuration: defaults (Gunicorn's WEB_CONCURRENCY and
// PORT among them), then the config file (-c, or ASYNCD_CONFIG), then
// GUNICORN_CMD_ARGS, then ASYNCD_* variables from environ, then the flags
// in args, each overriding the one before. fs must come from NewFlagSet and
// be used once. It returns ErrHelp or ErrVersion (without reading anything
// else) when those flags are given, and otherwise either a validated Config
// with warnings about settings that have no effect, or the problems it
// found: every one it could find in one pass, as Errors (one *Error each,
// naming the source and the key), with the warnings found so far. Load
// prints nothing.
func Load(fs *pflag.FlagSet, args []string, environ []string) (*Config, []string, error) {
	cfg, warn, err := Check(fs, args, environ)
	if err != nil {
		return nil, warn, err
	}
	return cfg, warn, nil
}

// Check is Load for --check-config: with the problems, it also returns the
// Config as far as it could be read (nil when the file could not be read
// at all), so that the caller can check what depends on it, such as the
// handler plugins' options, in the same pass. A Config returned with an
// error must not be served.
func Check(fs *pflag.FlagSet, args []string, environ []string) (*Config, []string, error) {
	return load(fs, args, environ, func(path string) koanf.Provider { return file.Provider(path) })
}

// load is Check with the file opener injectable, for tests and fuzzing.
func load(fs *pflag.FlagSet, args, environ []string, open func(string) koanf.Provider) (*Config, []string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, nil, flagError(fs, err)
	}
	if on(fs, "help") {
		return nil, nil, ErrHelp
	}
	if on(fs, "version") {
		return nil, nil, ErrVersion
	}
	if fs.NArg() > 0 {
		return nil, nil, &Error{Source: "command line", Msg: fmt.Sprintf(
			"unexpected argument %q: asyncd takes no application argument; name handlers in routes in the config file", fs.Arg(0))}
	}

	envEntries, err := envLayer(environ)
	if err != nil {
		return nil, nil, err
	}
	flagEntries, err := flagLayer(fs)
	if err != nil {
		return nil, nil, err
	}
	var p problems
	cmdEntries := cmdArgsLayer(environ, &p)

	cfg := Default()
	cfg.applyAll(gunicornEnvDefaults(environ), &p)
	// The config file's own name comes from the later sources.
	for _, layer := range [][]entry{cmdEntries, envEntries, flagEntries} {
		for _, e := range layer {
			if e.key == "config" {
				if err := cfg.apply(e, &p); err != nil {
					return nil, p.warnings(), err
				}
			}
		}
	}
	if path := cfg.ConfigFile; path != "" {
		fileEntries, err := fileLayer(path, open, &p)
		if err != nil {
			return nil, p.warnings(), err
		}
		cfg.applyAll(fileEntries, &p)
	}
	for _, layer := range [][]entry{cmdEntries, envEntries, flagEntries} {
		cfg.applyAll(layer, &p)
	}
	cfg.Actions = Actions{CheckConfig: on(fs, "check-config"), PrintConfig: on(fs, "print-config")}
	p.add(cfg.Validate())
	cfg.warnings(&p)
	return cfg, p.warnings(), p.err()
}

func on(fs *pflag.FlagSet, name string) bool {
	v, _ := fs.GetBool(name)
	return v
}

// applyAll applies every entry, recording each problem.
func (c *Config) applyAll(entries []entry, p *problems) {
	for _, e := range entries {
		if e.key == "config" && e.o != fromFile {
			continue // applied first, to find the file
		}
		p.add(c.apply(e, p))
	}
}

// apply decodes one entry onto c, or returns the error naming it; warnings
// go to p.
func (c *Config) apply(e entry, p *problems) error {
	s := lookup(e.key)
	if s == nil {
		if why, ok := ignoredByGunicorn[e.key]; ok && e.o == fromFile {
			p.warnf(e.src, fmt.Sprintf("%s is not a setting, and Gunicorn ignores it too (%s): delete the line", e.key, why))
			return nil
		}
		return unknownKey(e)
	}
	if s.Support != Supported && e.o == fromCmdArgs {
		// GUNICORN_CMD_ARGS is Gunicorn's: what asyncd cannot honour there
		// is reported, not fatal.
		if s.Support == Action || !isGunicornDefault(s.Key, e.val) {
			p.warnf(e.src, fmt.Sprintf("%s: ignored: %s", s.Key, unsupportedReason(s)))
		}
		return nil
	}
	switch s.Support {
	case Ignored:
		if !isGunicornDefault(s.Key, e.val) {
			p.warnf(e.src, fmt.Sprintf("%s has no effect in asyncd: %s", s.Key, s.Reason))
		}
		return nil
	case RejectedIfSet:
		switch {
		case isGunicornDefault(s.Key, e.val):
			return nil // what Gunicorn would do too
		case !truthy(e.val):
			p.warnf(e.src, fmt.Sprintf("%s has no effect in asyncd: %s", s.Key, s.Reason))
			return nil
		}
		return kindError(keyError(e.src, s.Key, "not supported: "+s.Reason), KindDelete)
	case Rejected:
		if s.Group == GroupServerHooks {
			return kindError(keyError(e.src, s.Key, s.Reason), KindHook)
		}
		return kindError(keyError(e.src, s.Key, "not supported: "+s.Reason), KindDelete)
	case Action:
		return kindError(keyError(e.src, s.Key, fmt.Sprintf("is a command-line action, not a setting: run asyncd --%s", s.Flag)), KindDelete)
	}
	switch {
	case e.o == fromFile && s.NoFile:
		return kindError(keyError(e.src, s.Key, "cannot be set in a config file: use -c/--config or ASYNCD_CONFIG"), KindDelete)
	case e.o == fromEnv && s.Env == "":
		return keyError(e.src, s.Key, "can only be set in the config file")
	}
	v, err := decode(s, e.val, e.o)
	if err != nil {
		var re *routeError
		if errors.As(err, &re) {
			return &Error{Source: e.src, Key: "routes", Msg: re.msg, Kind: KindValue}
		}
		ke := keyError(e.src, s.Key, err.Error())
		ke.Err = err
		return ke
	}
	reflect.ValueOf(c).Elem().FieldByName(s.Field).Set(reflect.ValueOf(v).Convert(fieldType(s.Field)))
	c.Source[s.Key] = e.src
	return nil
}

// kindError sets e's Kind.
func kindError(e *Error, k Kind) *Error {
	e.Kind = k
	return e
}

// unsupportedReason is why asyncd does not implement s, for messages.
func unsupportedReason(s *Setting) string {
	if s.Support == Action {
		return "a command-line action, not a setting"
	}
	return s.Reason
}

// truthy is Python's truth for the values Gunicorn's unset settings hold:
// False, None, "", 0, [] and {} are off; from the environment or a flag,
// so are "false", "no", "off", "0" and "none".
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "", "false", "no", "off", "0", "none":
			return false
		}
		return true
	case []string:
		for _, s := range x {
			if truthy(s) {
				return true
			}
		}
		return false
	case int:
		return x != 0
	case float64:
		return x != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

func unknownKey(e entry) error {
	key := e.key
	if e.o == fromEnv {
		msg := fmt.Sprintf("unknown setting %q", key)
		if s := suggest(key, keyNames); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", env(s))
		}
		return &Error{Source: e.src, Key: key, Msg: msg, Kind: KindUnknown}
	}
	if to, ok := oldNames[key]; ok {
		return &Error{Source: e.src, Key: key, Kind: KindUnknown,
			Msg: fmt.Sprintf("unknown key %q: write %s (%s)", key, to.key, to.why)}
	}
	return &Error{Source: e.src, Key: key, Msg: unknownKeyMsg(key, suggest(key, keyNames)), Kind: KindUnknown}
}

func unknownKeyMsg(key, suggestion string) string {
	msg := fmt.Sprintf("unknown key %q", key)
	if suggestion != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", suggestion)
	}
	return msg
}

// suggest returns the candidate closest to key, if it is close enough to be
// a typo (same letters ignoring case and -/_, or a small edit distance).
func suggest(key string, candidates []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	k := norm(key)
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := editDistance(k, norm(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= 2 || bestD <= len(k)/3 {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20 // not worth comparing: no key is that long
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// fileLayer reads the config file: Gunicorn Python if it ends in .py,
// otherwise YAML. The entries are in line order, each with its file:line.
// A .py file's statements that cannot be read are recorded in p and the
// rest is read; an unreadable file or broken YAML is the error returned.
func fileLayer(path string, open func(string) koanf.Provider, p *problems) ([]entry, error) {
	if strings.HasPrefix(path, "python:") {
		return nil, &Error{Source: path, Msg: "python:MODULE configs cannot be read: pass the file's path to -c"}
	}
	name := strings.TrimPrefix(path, "file:") // Gunicorn's file:PATH form
	prov := open(name)
	if strings.HasSuffix(name, ".py") {
		data, err := prov.ReadBytes()
		if err != nil {
			return nil, readError(name, err)
		}
		assigns, err := parseGunicornPy(name, data)
		p.add(err)
		// As in Python, the last assignment to a name is the one that
		// counts: earlier ones are neither applied nor reported.
		last := map[string]int{}
		for i, a := range assigns {
			last[a.Name] = i
		}
		var out []entry
		for i, a := range assigns {
			if last[a.Name] == i {
				out = append(out, entry{key: a.Name, val: a.Value, src: fmt.Sprintf("%s:%d", name, a.Line), o: fromFile})
			}
		}
		return out, nil
	}
	k := koanf.New(".")
	lines := map[string]int{}
	if err := k.Load(prov, yamlParser{lines: lines}); err != nil {
		var ye *yamlError
		if errors.As(err, &ye) {
			return nil, &Error{Source: name, Msg: ye.msg}
		}
		return nil, readError(name, err)
	}
	raw := k.Raw()
	keys := make([]string, 0, len(raw))
	for key := range raw {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(a, b int) bool {
		if la, lb := lines[keys[a]], lines[keys[b]]; la != lb {
			return la < lb
		}
		return keys[a] < keys[b]
	})
	out := make([]entry, len(keys))
	for i, key := range keys {
		src := name
		if l := lines[key]; l > 0 {
			src = fmt.Sprintf("%s:%d", name, l)
		}
		out[i] = entry{key: key, val: raw[key], src: src, o: fromFile}
	}
	return out, nil
}

// sortKeys orders environment variables deterministically: unknown names
// first (most likely typos), then the table's order.
func sortKeys(keys []string) {
	rank := func(k string) int {
		if i, ok := settingIndex[k]; ok {
			return i
		}
		return -1
	}
	sort.Slice(keys, func(a, b int) bool {
		ra, rb := rank(keys[a]), rank(keys[b])
		if ra != rb {
			return ra < rb
		}
		return keys[a] < keys[b]
	})
}

func readError(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Error{Source: name, Msg: "cannot read the config file: " + err.Error(), Err: err}
}

// yamlParser is koanf's YAML parser with messages fit for users: one line,
// the top level checked to be a mapping, a second document refused. It
// records the line of each top-level key in lines, when that is not nil.
type yamlParser struct{ lines map[string]int }

type yamlError struct{ msg string }

func (e *yamlError) Error() string { return e.msg }

func (y yamlParser) Unmarshal(b []byte) (map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return map[string]any{}, nil // empty file: all defaults
		}
		return nil, &yamlError{yamlMessage(err, b)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		line := extra.Line
		if err != nil {
			return nil, &yamlError{yamlMessage(err, b)}
		}
		return nil, &yamlError{fmt.Sprintf("line %d: a second YAML document; asyncd reads one", line)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	switch {
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
		return map[string]any{}, nil
	case root.Kind != yaml.MappingNode:
		return nil, &yamlError{fmt.Sprintf("line %d: the top level must be a mapping of settings (key: value)", root.Line)}
	}
	if y.lines != nil {
		for i := 0; i+1 < len(root.Content); i += 2 {
			y.lines[root.Content[i].Value] = root.Content[i].Line
		}
	}
	var out map[string]any
	if err := root.Decode(&out); err != nil {
		return nil, &yamlError{yamlMessage(err, b)}
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

func (yamlParser) Marshal(m map[string]any) ([]byte, error) { return yaml.Marshal(m) }

// yamlMessage flattens yaml.v3's (sometimes multi-line) errors into one
// line, and adds the line number to the few that lack one.
func yamlMessage(err error, src []byte) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.Join(strings.Fields(msg), " ")
	if strings.HasPrefix(msg, "line ") {
		return msg
	}
	if strings.Contains(msg, "end of stream") {
		return fmt.Sprintf("line %d: %s", bytes.Count(src, []byte("\n"))+1, msg)
	}
	if off := badYAMLByte(src); off >= 0 {
		return fmt.Sprintf("line %d: %s", bytes.Count(src[:off], []byte("\n"))+1, msg)
	}
	// yaml.v3 omits the line when its (0-based) mark is on the first line.
	return "line 1: " + msg
}

// badYAMLByte finds the first byte yaml.v3 rejects as input: invalid UTF-8
// or a control character YAML does not allow; -1 if none.
func badYAMLByte(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return i
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f,
			r >= 0x80 && r <= 0x9f && r != 0x85, r == 0xfffe, r == 0xffff:
			return i
		}
		i += size
	}
	return -1
}

// envProvider is a koanf.Provider over an injected environment (koanf's own
// env provider reads os.Environ). Keys are the variable names.
type envProvider []string

func (p envProvider) ReadBytes() ([]byte, error) {
	return nil, errors.New("env provider does not support ReadBytes")
}

func (p envProvider) Read() (map[string]any, error) {
	m := map[string]any{}
	for _, kv := range p {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "ASYNCD_") || strings.HasPrefix(k, InternalEnvPrefix) || k == "ASYNCD_" {
			continue
		}
		m[k] = v
	}
	return m, nil
}

func envLayer(environ []string) ([]entry, error) {
	k := koanf.New(".")
	if err := k.Load(envProvider(environ), nil); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	raw := k.Raw()
	names := make([]string, 0, len(raw))
	byKey := map[string]string{}
	for name := range raw {
		key := strings.ToLower(strings.TrimPrefix(name, "ASYNCD_"))
		byKey[key] = name
		names = append(names, key)
	}
	sortKeys(names)
	out := make([]entry, len(names))
	for i, key := range names {
		name := byKey[key]
		out[i] = entry{key: key, val: raw[name], src: name, o: fromEnv}
	}
	return out, nil
}

// flagLayer collects the flags given on the command line through koanf's
// posflag provider; flags left at their default are skipped.
func flagLayer(fs *pflag.FlagSet) ([]entry, error) {
	k := koanf.New(".")
	p := posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
		v, ok := f.Value.(*flagValue)
		if !ok || !f.Changed {
			return "", nil
		}
		return f.Name, append([]string(nil), v.vals...)
	})
	if err := k.Load(p, nil); err != nil {
		return nil, fmt.Errorf("command line: %w", err)
	}
	raw := k.Raw()
	seen := map[string]bool{}
	var out []entry
	// Table order, so that the first error is deterministic.
	for i := range settings {
		s := &settings[i]
		for _, name := range s.flagNames() {
			v, ok := raw[normalizeFlag(name)]
			if !ok || seen[s.Key] {
				continue
			}
			seen[s.Key] = true
			out = append(out, entry{key: s.Key, val: v, src: "--" + name, o: fromFlag})
		}
	}
	return out, nil
}

// warnings records valid settings that probably do not do what was meant.
func (c *Config) warnings(p *problems) {
	src := func(key string) string { return c.Source.Of(key) }
	if n := runtime.GOMAXPROCS(0); c.Workers > n {
		p.warnf(src("workers"), fmt.Sprintf("workers: %d event loops on %d CPUs only adds contention "+
			"(asyncd's loops never block, unlike Gunicorn's processes): use workers = 0 for one per CPU", c.Workers, n))
	}
	if given, n := c.WorkerClass, c.WorkerClass.Normalized(); string(given) != string(n) && n != "" {
		msg := fmt.Sprintf("worker_class: %q runs as asyncd's %q class (handlers are Go code; nothing is monkey-patched)",
			string(given), string(n))
		if note := workerNotes[strings.ToLower(strings.TrimSpace(string(given)))]; note != "" {
			msg += "; " + note
		}
		p.warnf(src("worker_class"), msg)
	}
	if c.Threads > 1 && c.WorkerClass.Normalized() == WorkerAsync {
		p.warnf(src("threads"), fmt.Sprintf("threads has no effect with worker_class %s", c.WorkerClass))
	}
	if c.Keepalive > 0 && c.Keepalive < 5*time.Second {
		p.warnf(src("keepalive"), fmt.Sprintf("keepalive: %s is shorter than the idle timeouts of most proxies "+
			"and load balancers (nginx, AWS ALB: 60s); behind one, expect 502s on reused connections "+
			"(asyncd's default is 90s)", formatDuration(c.Keepalive)))
	}
	for _, a := range c.ForwardedAllowIPs {
		if strings.TrimSpace(a) == "*" {
			p.warnf(src("forwarded_allow_ips"), "forwarded_allow_ips: '*' trusts the X-Forwarded-For, Forwarded and "+
				"scheme headers of every peer, so any client that reaches asyncd directly sets its own address "+
				"and scheme; list the proxies' addresses instead")
			break
		}
	}
	if c.MaxRequestsJitter > 0 && c.MaxRequests == 0 {
		p.warnf(src("max_requests_jitter"), "max_requests_jitter has no effect while max_requests is 0")
	}
	if len(c.Routes) == 0 {
		where := c.Source["routes"]
		if where == "" {
			where = c.ConfigFile
		}
		p.warnf(where, "routes: none are configured, so every request is answered 404 Not Found: "+
			"add routes (path and handler) to the config file")
	}
	for _, r := range c.Routes {
		for j, m := range r.Methods {
			if up := strings.ToUpper(m); up != m {
				p.warnf(src("routes"), fmt.Sprintf("routes[%d].methods[%d]: %q is not %q: HTTP methods are case-sensitive",
					r.Index, j, m, up))
			}
		}
	}
}
