package config

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// NewFlagSet returns the command-line flags: one per setting that has one,
// -h/--help, -v/--version, --check-config and --print-config, plus hidden
// flags for Gunicorn settings asyncd does not implement (so that using them
// explains why instead of failing as unknown). Flags accept _ for - .
// Parse errors are returned, never printed; Usage prints Help.
func NewFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, n string) pflag.NormalizedName {
		return pflag.NormalizedName(normalizeFlag(n))
	})
	fs.Usage = func() { fmt.Fprint(fs.Output(), Help(name)) }
	for i := range settings {
		s := &settings[i]
		if s.Flag == "" {
			continue
		}
		if s.Support == Action {
			fs.BoolP(s.Flag, s.Short, false, s.Help)
			continue
		}
		v := &flagValue{repeat: s.Repeatable}
		f := fs.VarPF(v, s.Flag, s.Short, s.Help)
		switch {
		case s.Key == "proxy_protocol":
			f.NoOptDefVal = string(ProxyAuto) // Gunicorn's store_true flag
		case s.Type == TypeBool:
			f.NoOptDefVal = "true"
		}
		f.Hidden = s.Support != Supported
		for _, a := range s.FlagAliases {
			af := fs.VarPF(v, a, "", s.Help)
			af.NoOptDefVal = f.NoOptDefVal
			af.Hidden = true // Help lists it next to the main flag
		}
	}
	return fs
}

func normalizeFlag(name string) string { return strings.ReplaceAll(name, "_", "-") }

// flagNames lists the long flags of s: the main one, then its aliases.
func (s *Setting) flagNames() []string {
	if s.Flag == "" {
		return nil
	}
	return append([]string{s.Flag}, s.FlagAliases...)
}

// flagValue keeps a flag's raw text; decoding happens in Load with the other
// sources so that every source gets the same rules and messages.
type flagValue struct {
	repeat bool
	vals   []string
}

func (v *flagValue) String() string { return strings.Join(v.vals, ",") }

func (v *flagValue) Set(s string) error {
	if v.repeat {
		v.vals = append(v.vals, s)
	} else {
		v.vals = []string{s}
	}
	return nil
}

func (v *flagValue) Type() string { return "string" }

// flagError turns pflag's parse errors into one-line messages, suggesting
// the closest flag for a misspelled one.
func flagError(fs *pflag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		var names []string
		fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
		m := "unknown flag"
		if s := suggest(name, names); s != "" {
			m += fmt.Sprintf(" (did you mean --%s?)", s)
		}
		return &Error{Source: "--" + name, Msg: m, Err: err}
	}
	return &Error{Source: "command line", Msg: msg, Err: err}
}

// Help renders --help: usage, the source order, then the flags grouped as
// Gunicorn groups its settings, each with its default in brackets.
func Help(prog string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s [OPTIONS]\n\n", prog)
	wrapTo(&b, "", "Settings come from built-in defaults (with Gunicorn's WEB_CONCURRENCY and PORT), "+
		"then the config file (-c), then the flags in GUNICORN_CMD_ARGS, then ASYNCD_<KEY> environment "+
		"variables, then these flags; later sources win. Durations are seconds (30, 2.5) or Go "+
		"durations (1m30s, 250ms); sizes are bytes or 64KiB, 10MB, 1GiB.", 80)
	b.WriteString("\n")
	for _, k := range []string{"help", "version"} {
		writeFlagHelp(&b, lookup(k))
	}
	for _, g := range Groups {
		var in []*Setting
		for i := range settings {
			s := &settings[i]
			if s.Group == g && s.Flag != "" && (s.Support == Supported || s.Support == Action) &&
				s.Key != "help" && s.Key != "version" {
				in = append(in, s)
			}
		}
		if len(in) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", g)
		for _, s := range in {
			writeFlagHelp(&b, s)
		}
	}
	b.WriteString("\n")
	wrapTo(&b, "", "secure_scheme_headers and routes have no flag: set them in the config file "+
		"(or ASYNCD_SECURE_SCHEME_HEADERS). Gunicorn's flags for settings asyncd does not implement "+
		"(--daemon, --preload, --certfile, ...) are refused, or accepted with a warning, with the reason. "+
		"Reference: docs/configuration.md.", 80)
	return b.String()
}

const helpColumn = 24

func writeFlagHelp(b *strings.Builder, s *Setting) {
	flags := "  " + s.FlagText()
	text := s.Help
	if s.Support == Supported {
		if d := s.DefaultText(); d != "" && d != `""` && d != "[]" {
			text += " [" + d + "]"
		}
	}
	if len(flags) <= helpColumn-2 {
		b.WriteString(flags + strings.Repeat(" ", helpColumn-len(flags)))
		wrapTo(b, strings.Repeat(" ", helpColumn), text, 80)
		return
	}
	b.WriteString(flags + "\n" + strings.Repeat(" ", helpColumn))
	wrapTo(b, strings.Repeat(" ", helpColumn), text, 80)
}

// wrapTo writes text wrapped at width; continuation lines start with indent.
// The first line is assumed to start at len(indent) (or 0 without indent).
func wrapTo(w io.StringWriter, indent, text string, width int) {
	col := len(indent)
	first := true
	for _, word := range strings.Fields(text) {
		if !first && col+1+len(word) > width {
			w.WriteString("\n" + indent)
			col = len(indent)
			first = true
		}
		if !first {
			w.WriteString(" ")
			col++
		}
		w.WriteString(word)
		col += len(word)
		first = false
	}
	w.WriteString("\n")
}
