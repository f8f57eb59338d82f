package config

// The Gunicorn .py reader. Gunicorn configs are Python modules, but nearly
// all of them are top-level assignments of literals; asyncd reads exactly
// that subset (strings in every quoting, numbers, True/False/None, lists,
// tuples, dicts, comments, line continuations) and runs no Python. Anything
// else is refused with file:line, the statement, and what to write instead.

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// pyAssign is one top-level `name = literal` of a Gunicorn config file.
type pyAssign struct {
	name string
	val  any // string, int, float64, bool, nil, []any, map[string]any
	line int
}

// pyMaxDepth bounds nesting so that hostile input cannot exhaust the stack.
const pyMaxDepth = 64

// parseGunicornPy reads the assignments of a Gunicorn config file, in file
// order (a later assignment to the same name wins, as in Python). It reads
// past the statements it cannot take, so that one pass finds them all:
// the assignments it could read come back with an Errors of the others,
// each an *Error with Source "file:line", in line order.
func parseGunicornPy(file string, src []byte) ([]pyAssign, error) {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	p := &pyParser{file: file, lx: pyLexer{src: src, line: 1, lineStart: true, last: pyNewline}}
	out := p.parse()
	if len(p.errs) == 0 {
		return out, nil
	}
	errs := make(Errors, len(p.errs))
	for i, pe := range p.errs {
		k := pe.kind
		if k == 0 {
			k = KindValue
		}
		errs[i] = &Error{Source: fmt.Sprintf("%s:%d", file, pe.line), Msg: pe.msg, Kind: k}
	}
	return out, errs
}

type pyParser struct {
	file    string
	lx      pyLexer
	peeked  *pyTok
	lastEnd int // end offset of the last token returned that does not end a statement
	depth   int
	errs    []*pyError
	// last is the kind of the last token returned and lastSemi whether it
	// was ";": together, whether a statement has been read to its end.
	last     pyKind
	lastSemi bool
	// inBlockChain: the last statement was a refused if/try/for/while
	// header, so its elif/else/except/finally clauses go with it.
	inBlockChain bool
}

func (p *pyParser) next() (pyTok, error) {
	t, err := p.advance()
	if err == nil {
		p.last, p.lastSemi = t.kind, isOp(t, ";")
	}
	return t, err
}

func (p *pyParser) advance() (pyTok, error) {
	var t pyTok
	var err error
	if p.peeked != nil {
		t, p.peeked = *p.peeked, nil
	} else if t, err = p.lx.next(); err != nil {
		return t, err
	}
	if t.kind != pyNewline && t.kind != pyEOF && !isOp(t, ";") {
		p.lastEnd = t.end
	}
	return t, nil
}

func (p *pyParser) peek() (pyTok, error) {
	if p.peeked == nil {
		t, err := p.lx.next()
		if err != nil {
			return t, err
		}
		p.peeked = &t
	}
	return *p.peeked, nil
}

func isOp(t pyTok, op string) bool { return t.kind == pyOp && t.text == op }

func (p *pyParser) parse() []pyAssign {
	var out []pyAssign
	for {
		t, err := p.next()
		if err != nil {
			p.fail(err)
			continue
		}
		chain := p.inBlockChain
		p.inBlockChain = false
		switch {
		case t.kind == pyEOF:
			return out
		case t.kind == pyNewline || isOp(t, ";"):
			p.inBlockChain = chain
		case t.kind == pyIndent:
			p.fail(&pyError{line: t.line, msg: "unexpected indentation: asyncd reads top-level assignments only (name = value)"})
			p.skipRest(true)
			p.skipBlock()
		case t.kind == pyString:
			if err := p.docstring(t); err != nil {
				p.fail(err)
				p.recover(false)
			}
		case t.kind == pyName && chain && pyClause[t.text]:
			// elif/else/except/finally of a block already reported.
			p.inBlockChain = true
			p.skipRest(true)
			p.skipBlock()
		case t.kind == pyName:
			a, err := p.statement(t)
			if err != nil {
				header := pyCompound[t.text] || t.text == "def"
				p.fail(err)
				p.recover(header)
				p.inBlockChain = header && t.text != "def" && t.text != "class"
				continue
			}
			out = append(out, a)
		default:
			p.fail(p.notAssignment(t))
			p.recover(false)
		}
	}
}

// pyClause are the keywords that continue a compound statement.
var pyClause = map[string]bool{"elif": true, "else": true, "except": true, "finally": true}

// fail records err. After an error of the lexer, which stopped inside a
// token, reading resumes at the next line that starts a statement.
func (p *pyParser) fail(err error) {
	var pe *pyError
	if !errors.As(err, &pe) {
		pe = &pyError{line: p.lx.line, msg: err.Error()}
	}
	p.errs = append(p.errs, pe)
	if pe.lex {
		p.peeked = nil
		p.lx.resync()
		p.last, p.lastSemi = pyNewline, false
	}
}

// recover skips what is left of a statement that failed (to the end of its
// line; a block header also to the end of its block).
func (p *pyParser) recover(header bool) {
	ended := p.last == pyNewline || p.last == pyEOF || (p.lastSemi && !header)
	if !ended {
		p.skipRest(header)
	}
	p.skipBlock()
}

// skipRest skips to the end of the logical line, or of the statement
// (the next ";") unless header: a block header's one-line body is all
// its own. Lexer errors on the way are not reported: the statement is
// reported already.
func (p *pyParser) skipRest(header bool) {
	for {
		t, err := p.next()
		if err != nil {
			var pe *pyError
			if errors.As(err, &pe) && pe.lex {
				p.peeked = nil
				p.lx.resync()
			}
			p.last, p.lastSemi = pyNewline, false
			return
		}
		if t.kind == pyNewline || t.kind == pyEOF || (!header && isOp(t, ";")) {
			return
		}
	}
}

// skipBlock skips the indented lines that follow: the body of a refused
// block, or lines indented by mistake under a statement already reported.
func (p *pyParser) skipBlock() {
	for {
		t, err := p.peek()
		if err != nil {
			p.fail(err) // a top-level line (the lexer found no indentation first)
			continue
		}
		if t.kind != pyIndent {
			return
		}
		p.next()
		p.skipRest(true)
	}
}

// docstring accepts a bare string statement (a module docstring).
func (p *pyParser) docstring(first pyTok) error {
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		switch {
		case t.kind == pyString:
		case t.kind == pyNewline || t.kind == pyEOF || isOp(t, ";"):
			return nil
		default:
			return p.notAssignment(first)
		}
	}
}

// stmtText returns the statement starting at start, as written (on one
// line, shortened), consuming the rest of it.
func (p *pyParser) stmtText(start int) string {
	for {
		t, err := p.next()
		if err != nil || t.kind == pyNewline || t.kind == pyEOF || isOp(t, ";") {
			break
		}
	}
	end := max(p.lastEnd, start)
	text := strings.Join(strings.Fields(string(p.lx.src[start:end])), " ")
	if len(text) > 100 {
		cut := 97
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "..."
	}
	return text
}

func (p *pyParser) notAssignment(first pyTok) error {
	return &pyError{line: first.line, kind: KindDelete,
		msg: p.stmtText(first.start) + " is not an assignment; asyncd reads literal assignments only (name = value)"}
}

var pyCompound = map[string]bool{
	"if": true, "elif": true, "else": true, "for": true, "while": true, "with": true, "try": true,
	"except": true, "finally": true, "class": true, "async": true,
}

var pyKeywords = map[string]bool{
	"import": true, "from": true, "def": true, "return": true, "pass": true, "del": true, "global": true,
	"nonlocal": true, "assert": true, "raise": true, "lambda": true, "yield": true, "await": true,
	"break": true, "continue": true, "True": true, "False": true, "None": true, "in": true, "is": true,
	"not": true, "and": true, "or": true, "as": true,
}

// statement parses `name = literal`, name already read.
func (p *pyParser) statement(name pyTok) (pyAssign, error) {
	switch {
	case name.text == "import" || name.text == "from":
		return pyAssign{}, p.importError(name)
	case name.text == "def":
		return pyAssign{}, p.defError(name)
	case pyCompound[name.text]:
		return pyAssign{}, &pyError{line: name.line, kind: KindEnv, msg: fmt.Sprintf("%s%s statements are Python code; asyncd reads literal "+
			"assignments only (name = value): write one literal value per setting, and use ASYNCD_<KEY> "+
			"environment variables for values that differ between environments", label(p.stmtText(name.start)), name.text)}
	case pyKeywords[name.text]:
		return pyAssign{}, p.notAssignment(name)
	}
	eq, err := p.next()
	if err != nil {
		return pyAssign{}, err
	}
	if !isOp(eq, "=") {
		return pyAssign{}, p.notAssignment(name)
	}
	if t, err := p.peek(); err != nil {
		return pyAssign{}, err
	} else if t.kind == pyName && !pyKeywords[t.text] {
		return pyAssign{}, p.nameValue(name)
	}
	v, err := p.value()
	if err == nil {
		var end pyTok
		if end, err = p.next(); err == nil && end.kind != pyNewline && end.kind != pyEOF && !isOp(end, ";") {
			err = errPyExpr{}
		}
	}
	var ex errPyExpr
	if errors.As(err, &ex) {
		return pyAssign{}, p.exprError(name, ex.fstr)
	}
	if err != nil {
		return pyAssign{}, err
	}
	return pyAssign{name: name.text, val: v, line: name.line}, nil
}

// nameValue handles `key = some_name` (the value read next is a name):
// a word that should have been quoted (worker_class = gevent), Python's
// constants misspelled (true), or a variable, which is an expression.
func (p *pyParser) nameValue(key pyTok) error {
	var words []string
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		words = append(words, t.text)
		n, err := p.peek()
		if err != nil {
			return err
		}
		if !isOp(n, ".") {
			break
		}
		p.next()
		if n, err = p.peek(); err != nil {
			return err
		} else if n.kind != pyName {
			return p.exprError(key, false)
		}
	}
	if end, err := p.peek(); err != nil {
		return err
	} else if end.kind != pyNewline && end.kind != pyEOF && !isOp(end, ";") {
		return p.exprError(key, false)
	}
	ident := strings.Join(words, ".")
	text := p.stmtText(key.start)
	switch strings.ToLower(ident) {
	case "true", "false", "none":
		want := strings.ToUpper(ident[:1]) + strings.ToLower(ident[1:])
		return &pyError{line: key.line, msg: fmt.Sprintf("%s: %s is not a Python constant: write %s", text, ident, want)}
	}
	if s := lookup(key.text); s != nil && s.Support == Supported && s.Type != TypeRoutes {
		if v, err := decode(s, ident, fromFile); err == nil && (s.check == nil || s.check(reflect.ValueOf(v).Convert(fieldType(s.Field)).Interface()) == nil) {
			return &pyError{line: key.line, msg: fmt.Sprintf("%s: %s is a Python name, not a string: quote it: %s = %q",
				text, ident, key.text, ident)}
		}
	}
	return p.exprErrorText(key, text, false)
}

func (p *pyParser) exprError(name pyTok, fstr bool) error {
	return p.exprErrorText(name, p.stmtText(name.start), fstr)
}

// exprErrorText reports a value that is not a literal: text is the
// statement, as written.
func (p *pyParser) exprErrorText(name pyTok, text string, fstr bool) error {
	what := "is an expression"
	if fstr {
		what = "uses an f-string"
	}
	var hint string
	s := lookup(name.text)
	if s == nil {
		sug := ""
		if k := suggest(name.text, keyNames); k != "" {
			sug = fmt.Sprintf(" (did you mean %q?)", k)
		}
		return &pyError{line: name.line, kind: KindDelete, msg: fmt.Sprintf("%s %s, and %q is not a setting%s; asyncd reads literals only: "+
			"write the final values into the settings that use it", text, what, name.text, sug)}
	}
	kind := KindEnv
	switch {
	case s.Group == GroupServerHooks:
		return &pyError{line: name.line, kind: KindHook, msg: label(text) + s.Reason}
	case s.pyHint != "":
		hint = s.pyHint
	case s.Support == Supported:
		hint = "write the value itself"
		var via []string
		if s.Env != "" {
			via = append(via, s.Env)
		}
		if s.Flag != "" {
			via = append(via, "--"+s.Flag)
		}
		if len(via) > 0 {
			hint += ", or set it with " + strings.Join(via, " or ")
		}
	default:
		kind = KindDelete
		hint = fmt.Sprintf("delete it (%s has no effect in asyncd: %s)", s.Key, s.Reason)
	}
	return &pyError{line: name.line, kind: kind, msg: fmt.Sprintf("%s %s; asyncd reads literals only: %s", text, what, hint)}
}

func (p *pyParser) importError(kw pyTok) error {
	text := p.stmtText(kw.start)
	hint := ""
	switch {
	case strings.Contains(text, "multiprocessing"):
		hint = " (instead of multiprocessing.cpu_count(), set workers = 0: one event loop per CPU)"
	case slices.ContainsFunc(strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == ',' }),
		func(f string) bool { return f == "os" || strings.HasPrefix(f, "os.") }):
		hint = " (instead of reading os.environ, set ASYNCD_<KEY> environment variables)"
	}
	return &pyError{line: kw.line, kind: KindDelete, msg: fmt.Sprintf("%sasyncd reads literal assignments only and runs no Python, "+
		"so imports cannot work; delete it%s", label(text), hint)}
}

func (p *pyParser) defError(kw pyTok) error {
	name := ""
	if t, err := p.peek(); err == nil && t.kind == pyName {
		name = t.text
	}
	text := p.stmtText(kw.start)
	if s := lookup(name); s != nil && s.Group == GroupServerHooks {
		return &pyError{line: kw.line, kind: KindHook, msg: label(text) + s.Reason}
	}
	return &pyError{line: kw.line, kind: KindDelete,
		msg: label(text) + "functions are Python code; asyncd reads literal assignments only (name = value)"}
}

// label introduces a message about the statement text: "def f(): ...",
// "import os: ...".
func label(text string) string {
	if strings.HasSuffix(text, ":") {
		return text + " "
	}
	return text + ": "
}

// value parses one literal.
func (p *pyParser) value() (any, error) {
	p.depth++
	defer func() { p.depth-- }()
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	if p.depth > pyMaxDepth {
		return nil, &pyError{line: t.line, msg: fmt.Sprintf("values nested more than %d deep", pyMaxDepth)}
	}
	switch t.kind {
	case pyString:
		return p.concatStrings(t)
	case pyNumber:
		return t.val, nil
	case pyName:
		switch t.text {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		}
	case pyOp:
		switch t.text {
		case "-", "+":
			n, err := p.next()
			if err != nil {
				return nil, err
			}
			if n.kind != pyNumber {
				return nil, errPyExpr{}
			}
			if t.text == "+" {
				return n.val, nil
			}
			switch v := n.val.(type) {
			case int:
				return -v, nil
			case float64:
				return -v, nil
			}
		case "[":
			return p.sequence("]")
		case "(":
			return p.paren()
		case "{":
			return p.dict(t)
		}
	}
	return nil, errPyExpr{}
}

// concatStrings joins adjacent string literals ("a" "b"), as Python does.
func (p *pyParser) concatStrings(first pyTok) (any, error) {
	s := ""
	for t := first; ; {
		if t.fstr {
			return nil, errPyExpr{fstr: true}
		}
		if t.bytes {
			return nil, &pyError{line: t.line, msg: "bytes literals (b\"...\") are not setting values: drop the b"}
		}
		s += t.val.(string)
		n, err := p.peek()
		if err != nil {
			return nil, err
		}
		if n.kind != pyString {
			return s, nil
		}
		t, _ = p.next()
	}
}

// sequence parses list items up to close (the opening bracket read).
func (p *pyParser) sequence(close string) ([]any, error) {
	items := []any{}
	for {
		t, err := p.peek()
		if err != nil {
			return nil, err
		}
		if isOp(t, close) {
			p.next()
			return items, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		t, err = p.next()
		if err != nil {
			return nil, err
		}
		switch {
		case isOp(t, close):
			return items, nil
		case !isOp(t, ","):
			return nil, errPyExpr{}
		}
	}
}

// paren parses a tuple, or a parenthesized value.
func (p *pyParser) paren() (any, error) {
	t, err := p.peek()
	if err != nil {
		return nil, err
	}
	if isOp(t, ")") {
		p.next()
		return []any{}, nil
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	t, err = p.next()
	if err != nil {
		return nil, err
	}
	switch {
	case isOp(t, ")"):
		return v, nil
	case isOp(t, ","):
		rest, err := p.sequence(")")
		if err != nil {
			return nil, err
		}
		return append([]any{v}, rest...), nil
	}
	return nil, errPyExpr{}
}

// dict parses {key: value, ...}; keys must be strings.
func (p *pyParser) dict(open pyTok) (any, error) {
	m := map[string]any{}
	for {
		t, err := p.peek()
		if err != nil {
			return nil, err
		}
		if isOp(t, "}") {
			p.next()
			return m, nil
		}
		k, err := p.value()
		if err != nil {
			return nil, err
		}
		colon, err := p.next()
		if err != nil {
			return nil, err
		}
		if !isOp(colon, ":") {
			if isOp(colon, ",") || isOp(colon, "}") {
				return nil, &pyError{line: open.line, msg: "sets are not setting values: write a list [...]"}
			}
			return nil, errPyExpr{}
		}
		key, ok := k.(string)
		if !ok {
			return nil, &pyError{line: t.line, msg: fmt.Sprintf("dict keys must be strings, got %s", describe(k))}
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		m[key] = v
		t, err = p.next()
		if err != nil {
			return nil, err
		}
		switch {
		case isOp(t, "}"):
			return m, nil
		case !isOp(t, ","):
			return nil, errPyExpr{}
		}
	}
}
