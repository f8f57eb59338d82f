package config

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Gunicorn's environment variables, read as Gunicorn reads them:
// WEB_CONCURRENCY is the default of workers and PORT makes the default
// bind 0.0.0.0:$PORT (both below the config file), and GUNICORN_CMD_ARGS
// holds command-line flags applied above the config file and below the
// ASYNCD_* variables and the real command line.
const (
	envWebConcurrency = "WEB_CONCURRENCY"
	envPort           = "PORT"
	envCmdArgs        = "GUNICORN_CMD_ARGS"
)

// GunicornEnv lists the Gunicorn variables Load reads. A serving process
// started by the supervisor gets its whole configuration from it and must
// not apply them again.
var GunicornEnv = []string{envWebConcurrency, envPort, envCmdArgs}

func lookupEnv(environ []string, name string) (string, bool) {
	var val string
	found := false
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			val, found = v, true // the last one wins, as in getenv
		}
	}
	return val, found
}

// gunicornEnvDefaults turns WEB_CONCURRENCY and PORT into default-level
// entries.
func gunicornEnvDefaults(environ []string) []entry {
	var out []entry
	if v, ok := lookupEnv(environ, envWebConcurrency); ok && strings.TrimSpace(v) != "" {
		out = append(out, entry{key: "workers", val: v, src: envWebConcurrency, o: fromEnv})
	}
	if v, ok := lookupEnv(environ, envPort); ok && strings.TrimSpace(v) != "" {
		out = append(out, entry{key: "bind", val: "0.0.0.0:" + strings.TrimSpace(v), src: envPort, o: fromEnv})
	}
	return out
}

// cmdArgsLayer reads GUNICORN_CMD_ARGS: the flags asyncd has become
// entries (source "GUNICORN_CMD_ARGS --flag"); the rest (Gunicorn flags
// asyncd does not know, actions, the application argument) is skipped
// with a warning in p.
func cmdArgsLayer(environ []string, p *problems) []entry {
	v, ok := lookupEnv(environ, envCmdArgs)
	if !ok || strings.TrimSpace(v) == "" {
		return nil
	}
	words, err := splitShell(v)
	if err != nil {
		p.add(&Error{Source: envCmdArgs, Msg: err.Error(), Kind: KindValue})
		return nil
	}
	fs := NewFlagSet(envCmdArgs)
	fs.SetOutput(io.Discard)
	skip := func(what, why string) { p.warnf(envCmdArgs, fmt.Sprintf("%s: ignored: %s", what, why)) }
	var keep []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "--" || !strings.HasPrefix(w, "-") || w == "-" {
			start := i
			if w == "--" {
				start++
			}
			for _, arg := range words[start:] {
				skip(fmt.Sprintf("%q", arg), "asyncd takes no application argument; name handlers in routes in the config file")
			}
			break
		}
		var name, short string
		inline := false // the value is part of w
		if strings.HasPrefix(w, "--") {
			n, _, hasVal := strings.Cut(w[2:], "=")
			name, inline = normalizeFlag(n), hasVal
		} else {
			short, inline = w[1:2], len(w) > 2
		}
		f := fs.Lookup(name)
		if short != "" {
			f = fs.ShorthandLookup(short)
		}
		if f == nil {
			what := w
			// An unknown flag's value cannot be told from the next flag
			// for sure: a word not starting with - is taken as its value.
			if !inline && i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
				what += " " + words[i+1]
				i++
			}
			skip(what, "not a flag asyncd has")
			continue
		}
		if s := settingOfFlag(f.Name); s != nil && s.Support == Action {
			skip(w, "a command-line action; give it on the command line")
			continue
		}
		keep = append(keep, w)
		if !inline && f.NoOptDefVal == "" && i+1 < len(words) {
			keep = append(keep, words[i+1])
			i++
		}
	}
	if err := fs.Parse(keep); err != nil {
		e := flagError(fs, err)
		var ce *Error
		if errors.As(e, &ce) {
			src := envCmdArgs
			if ce.Source != "command line" {
				src += " " + ce.Source
			}
			e = &Error{Source: src, Msg: ce.Msg, Kind: KindValue}
		}
		p.add(e)
		return nil
	}
	entries, err := flagLayer(fs)
	if err != nil {
		p.add(&Error{Source: envCmdArgs, Msg: err.Error(), Kind: KindValue})
		return nil
	}
	for i := range entries {
		entries[i].src = envCmdArgs + " " + entries[i].src
		entries[i].o = fromCmdArgs
	}
	return entries
}

// splitShell splits s into words as a POSIX shell does (Python's
// shlex.split, which Gunicorn uses): blanks separate words, single quotes
// keep everything, double quotes keep all but \" \\ \$ \`, and a
// backslash outside quotes keeps the next character.
func splitShell(s string) ([]string, error) {
	var out []string
	var b strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				out = append(out, b.String())
				b.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				if s[i] != '\n' {
					b.WriteByte(s[i])
				}
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				b.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New(`unterminated " quote`)
			}
		default:
			inWord = true
			b.WriteByte(c)
		}
	}
	if inWord {
		out = append(out, b.String())
	}
	return out, nil
}

// settingOfFlag finds the setting a long flag (normalized) belongs to.
func settingOfFlag(name string) *Setting {
	for i := range settings {
		for _, f := range settings[i].flagNames() {
			if normalizeFlag(f) == name {
				return &settings[i]
			}
		}
	}
	return nil
}
