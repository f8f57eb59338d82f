package gunicornpy

// What the package offers: Parse, what it returns, and Settings, through
// which the caller says what the reader must know about settings.

import "bytes"

// Assign is one top-level `name = literal` of a Gunicorn config file.
type Assign struct {
	Name  string
	Value any // string, int, float64, bool, nil, []any, map[string]any
	Line  int
}

// Problem is a statement the reader cannot take, at a line of the file.
type Problem struct {
	Line int
	Msg  string // one line, quoting the statement and saying what to write instead
	Kind Kind
}

// Kind says what an operator does about a Problem.
type Kind int

const (
	// KindValue: a value or a line to correct (syntax, a literal that is
	// no setting value).
	KindValue Kind = iota
	// KindDelete: Python code asyncd cannot run, or a setting it refuses.
	KindDelete
	// KindEnv: a value computed in Python: write the value itself, or set
	// it in the environment.
	KindEnv
	// KindHook: a Gunicorn server hook.
	KindHook
)

// Settings is what the reader needs to know about the settings that
// statements name, to say what to write instead of a statement it cannot
// take. The caller (package config) owns the table of settings.
type Settings interface {
	// Lookup describes setting name; ok is false when name is no setting.
	Lookup(name string) (s Setting, ok bool)
	// Suggest returns the setting a name that is no setting is probably a
	// misspelling of, or "".
	Suggest(name string) string
	// TakesString reports whether the string v is a valid value of
	// setting name: then `name = v`, unquoted, was meant as a string.
	TakesString(name, v string) bool
}

// Setting is what Settings.Lookup says about one setting.
type Setting struct {
	// Hook, for a Gunicorn server hook, says why it cannot work in asyncd
	// and what replaces it; "" for other settings.
	Hook string
	// ExprHint says what to write instead of an expression assigned to
	// the setting, and ExprKind what kind of problem that expression is.
	ExprHint string
	ExprKind Kind
}

// Parse reads the assignments of a Gunicorn config file, in file order (a
// later assignment to the same name wins, as in Python). It reads past the
// statements it cannot take, so that one pass finds them all: the
// assignments it could read come back with a Problem for each of the
// others, in line order. A UTF-8 byte order mark is skipped.
func Parse(src []byte, settings Settings) ([]Assign, []Problem) {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	p := &parser{settings: settings, lx: lexer{src: src, line: 1, lineStart: true, last: tokNewline}}
	out := p.parse()
	var problems []Problem
	for _, e := range p.errs {
		problems = append(problems, Problem{Line: e.line, Msg: e.msg, Kind: e.kind})
	}
	return out, problems
}
