package gunicornpy

// The parser: top-level `name = literal` statements, and for every other
// statement a message that quotes it and says what to write instead.

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 64

type parser struct {
	settings Settings
	lx       lexer
	peeked   *token
	lastEnd  int // end offset of the last token returned that does not end a statement
	depth    int
	errs     []*lineError
	// last is the kind of the last token returned and lastSemi whether it
	// was ";": together, whether a statement has been read to its end.
	last     tokenKind
	lastSemi bool
	// inBlockChain: the last statement was a refused if/try/for/while
	// header, so its elif/else/except/finally clauses go with it.
	inBlockChain bool
}

func (p *parser) next() (token, error) {
	t, err := p.advance()
	if err == nil {
		p.last, p.lastSemi = t.kind, isOp(t, ";")
	}
	return t, err
}

func (p *parser) advance() (token, error) {
	var t token
	var err error
	if p.peeked != nil {
		t, p.peeked = *p.peeked, nil
	} else if t, err = p.lx.next(); err != nil {
		return t, err
	}
	if t.kind != tokNewline && t.kind != tokEOF && !isOp(t, ";") {
		p.lastEnd = t.end
	}
	return t, nil
}

func (p *parser) peek() (token, error) {
	if p.peeked == nil {
		t, err := p.lx.next()
		if err != nil {
			return t, err
		}
		p.peeked = &t
	}
	return *p.peeked, nil
}

func isOp(t token, op string) bool { return t.kind == tokOp && t.text == op }

func (p *parser) parse() []Assign {
	var out []Assign
	for {
		t, err := p.next()
		if err != nil {
			p.fail(err)
			continue
		}
		chain := p.inBlockChain
		p.inBlockChain = false
		switch {
		case t.kind == tokEOF:
			return out
		case t.kind == tokNewline || isOp(t, ";"):
			p.inBlockChain = chain
		case t.kind == tokIndent:
			p.fail(&lineError{line: t.line, msg: "unexpected indentation: asyncd reads top-level assignments only (name = value)"})
			p.skipRest(true)
			p.skipBlock()
		case t.kind == tokString:
			if err := p.docstring(t); err != nil {
				p.fail(err)
				p.recover(false)
			}
		case t.kind == tokName && chain && clauseKeywords[t.text]:
			// elif/else/except/finally of a block already reported.
			p.inBlockChain = true
			p.skipRest(true)
			p.skipBlock()
		case t.kind == tokName:
			a, err := p.statement(t)
			if err != nil {
				header := compoundKeywords[t.text] || t.text == "def"
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

// clauseKeywords are the keywords that continue a compound statement.
var clauseKeywords = map[string]bool{"elif": true, "else": true, "except": true, "finally": true}

// fail records err. After an error of the lexer, which stopped inside a
// token, reading resumes at the next line that starts a statement.
func (p *parser) fail(err error) {
	var pe *lineError
	if !errors.As(err, &pe) {
		pe = &lineError{line: p.lx.line, msg: err.Error()}
	}
	p.errs = append(p.errs, pe)
	if pe.lex {
		p.peeked = nil
		p.lx.resync()
		p.last, p.lastSemi = tokNewline, false
	}
}

// recover skips what is left of a statement that failed (to the end of its
// line; a block header also to the end of its block).
func (p *parser) recover(header bool) {
	ended := p.last == tokNewline || p.last == tokEOF || (p.lastSemi && !header)
	if !ended {
		p.skipRest(header)
	}
	p.skipBlock()
}

// skipRest skips to the end of the logical line, or of the statement
// (the next ";") unless header: a block header's one-line body is all
// its own. Lexer errors on the way are not reported: the statement is
// reported already.
func (p *parser) skipRest(header bool) {
	for {
		t, err := p.next()
		if err != nil {
			var pe *lineError
			if errors.As(err, &pe) && pe.lex {
				p.peeked = nil
				p.lx.resync()
			}
			p.last, p.lastSemi = tokNewline, false
			return
		}
		if t.kind == tokNewline || t.kind == tokEOF || (!header && isOp(t, ";")) {
			return
		}
	}
}

// skipBlock skips the indented lines that follow: the body of a refused
// block, or lines indented by mistake under a statement already reported.
func (p *parser) skipBlock() {
	for {
		t, err := p.peek()
		if err != nil {
			p.fail(err) // a top-level line (the lexer found no indentation first)
			continue
		}
		if t.kind != tokIndent {
			return
		}
		p.next()
		p.skipRest(true)
	}
}

// docstring accepts a bare string statement (a module docstring).
func (p *parser) docstring(first token) error {
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		switch {
		case t.kind == tokString:
		case t.kind == tokNewline || t.kind == tokEOF || isOp(t, ";"):
			return nil
		default:
			return p.notAssignment(first)
		}
	}
}

// stmtText returns the statement starting at start, as written (on one
// line, shortened), consuming the rest of it.
func (p *parser) stmtText(start int) string {
	for {
		t, err := p.next()
		if err != nil || t.kind == tokNewline || t.kind == tokEOF || isOp(t, ";") {
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

func (p *parser) notAssignment(first token) error {
	return &lineError{line: first.line, kind: KindDelete,
		msg: p.stmtText(first.start) + " is not an assignment; asyncd reads literal assignments only (name = value)"}
}

var compoundKeywords = map[string]bool{
	"if": true, "elif": true, "else": true, "for": true, "while": true, "with": true, "try": true,
	"except": true, "finally": true, "class": true, "async": true,
}

var keywords = map[string]bool{
	"import": true, "from": true, "def": true, "return": true, "pass": true, "del": true, "global": true,
	"nonlocal": true, "assert": true, "raise": true, "lambda": true, "yield": true, "await": true,
	"break": true, "continue": true, "True": true, "False": true, "None": true, "in": true, "is": true,
	"not": true, "and": true, "or": true, "as": true,
}

// statement parses `name = literal`, name already read.
func (p *parser) statement(name token) (Assign, error) {
	switch {
	case name.text == "import" || name.text == "from":
		return Assign{}, p.importError(name)
	case name.text == "def":
		return Assign{}, p.defError(name)
	case compoundKeywords[name.text]:
		return Assign{}, &lineError{line: name.line, kind: KindEnv, msg: fmt.Sprintf("%s%s statements are Python code; asyncd reads literal "+
			"assignments only (name = value): write one literal value per setting, and use ASYNCD_<KEY> "+
			"environment variables for values that differ between environments", label(p.stmtText(name.start)), name.text)}
	case keywords[name.text]:
		return Assign{}, p.notAssignment(name)
	}
	eq, err := p.next()
	if err != nil {
		return Assign{}, err
	}
	if !isOp(eq, "=") {
		return Assign{}, p.notAssignment(name)
	}
	if t, err := p.peek(); err != nil {
		return Assign{}, err
	} else if t.kind == tokName && !keywords[t.text] {
		return Assign{}, p.nameValue(name)
	}
	v, err := p.value()
	if err == nil {
		var end token
		if end, err = p.next(); err == nil && end.kind != tokNewline && end.kind != tokEOF && !isOp(end, ";") {
			err = errExpr{}
		}
	}
	var ex errExpr
	if errors.As(err, &ex) {
		return Assign{}, p.exprError(name, ex.fstr)
	}
	if err != nil {
		return Assign{}, err
	}
	return Assign{Name: name.text, Value: v, Line: name.line}, nil
}

// nameValue handles `key = some_name` (the value read next is a name):
// a word that should have been quoted (worker_class = gevent), Python's
// constants misspelled (true), or a variable, which is an expression.
func (p *parser) nameValue(key token) error {
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
		} else if n.kind != tokName {
			return p.exprError(key, false)
		}
	}
	if end, err := p.peek(); err != nil {
		return err
	} else if end.kind != tokNewline && end.kind != tokEOF && !isOp(end, ";") {
		return p.exprError(key, false)
	}
	ident := strings.Join(words, ".")
	text := p.stmtText(key.start)
	switch strings.ToLower(ident) {
	case "true", "false", "none":
		want := strings.ToUpper(ident[:1]) + strings.ToLower(ident[1:])
		return &lineError{line: key.line, msg: fmt.Sprintf("%s: %s is not a Python constant: write %s", text, ident, want)}
	}
	if p.settings.TakesString(key.text, ident) {
		return &lineError{line: key.line, msg: fmt.Sprintf("%s: %s is a Python name, not a string: quote it: %s = %q",
			text, ident, key.text, ident)}
	}
	return p.exprErrorText(key, text, false)
}

func (p *parser) exprError(name token, fstr bool) error {
	return p.exprErrorText(name, p.stmtText(name.start), fstr)
}

// exprErrorText reports a value that is not a literal: text is the
// statement, as written.
func (p *parser) exprErrorText(name token, text string, fstr bool) error {
	what := "is an expression"
	if fstr {
		what = "uses an f-string"
	}
	s, ok := p.settings.Lookup(name.text)
	switch {
	case !ok:
		sug := ""
		if k := p.settings.Suggest(name.text); k != "" {
			sug = fmt.Sprintf(" (did you mean %q?)", k)
		}
		return &lineError{line: name.line, kind: KindDelete, msg: fmt.Sprintf("%s %s, and %q is not a setting%s; asyncd reads literals only: "+
			"write the final values into the settings that use it", text, what, name.text, sug)}
	case s.Hook != "":
		return &lineError{line: name.line, kind: KindHook, msg: label(text) + s.Hook}
	}
	return &lineError{line: name.line, kind: s.ExprKind, msg: fmt.Sprintf("%s %s; asyncd reads literals only: %s", text, what, s.ExprHint)}
}

func (p *parser) importError(kw token) error {
	text := p.stmtText(kw.start)
	hint := ""
	switch {
	case strings.Contains(text, "multiprocessing"):
		hint = " (instead of multiprocessing.cpu_count(), set workers = 0: one event loop per CPU)"
	case slices.ContainsFunc(strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == ',' }),
		func(f string) bool { return f == "os" || strings.HasPrefix(f, "os.") }):
		hint = " (instead of reading os.environ, set ASYNCD_<KEY> environment variables)"
	}
	return &lineError{line: kw.line, kind: KindDelete, msg: fmt.Sprintf("%sasyncd reads literal assignments only and runs no Python, "+
		"so imports cannot work; delete it%s", label(text), hint)}
}

func (p *parser) defError(kw token) error {
	name := ""
	if t, err := p.peek(); err == nil && t.kind == tokName {
		name = t.text
	}
	text := p.stmtText(kw.start)
	if s, ok := p.settings.Lookup(name); ok && s.Hook != "" {
		return &lineError{line: kw.line, kind: KindHook, msg: label(text) + s.Hook}
	}
	return &lineError{line: kw.line, kind: KindDelete,
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
func (p *parser) value() (any, error) {
	p.depth++
	defer func() { p.depth-- }()
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	if p.depth > maxDepth {
		return nil, &lineError{line: t.line, msg: fmt.Sprintf("values nested more than %d deep", maxDepth)}
	}
	switch t.kind {
	case tokString:
		return p.concatStrings(t)
	case tokNumber:
		return t.val, nil
	case tokName:
		switch t.text {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		}
	case tokOp:
		switch t.text {
		case "-", "+":
			n, err := p.next()
			if err != nil {
				return nil, err
			}
			if n.kind != tokNumber {
				return nil, errExpr{}
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
	return nil, errExpr{}
}

// concatStrings joins adjacent string literals ("a" "b"), as Python does.
func (p *parser) concatStrings(first token) (any, error) {
	s := ""
	for t := first; ; {
		if t.fstr {
			return nil, errExpr{fstr: true}
		}
		if t.bytes {
			return nil, &lineError{line: t.line, msg: "bytes literals (b\"...\") are not setting values: drop the b"}
		}
		s += t.val.(string)
		n, err := p.peek()
		if err != nil {
			return nil, err
		}
		if n.kind != tokString {
			return s, nil
		}
		t, _ = p.next()
	}
}

// sequence parses list items up to close (the opening bracket read).
func (p *parser) sequence(close string) ([]any, error) {
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
			return nil, errExpr{}
		}
	}
}

// paren parses a tuple, or a parenthesized value.
func (p *parser) paren() (any, error) {
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
	return nil, errExpr{}
}

// dict parses {key: value, ...}; keys must be strings.
func (p *parser) dict(open token) (any, error) {
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
				return nil, &lineError{line: open.line, msg: "sets are not setting values: write a list [...]"}
			}
			return nil, errExpr{}
		}
		key, ok := k.(string)
		if !ok {
			return nil, &lineError{line: t.line, msg: "dict keys must be strings, got " + describeKey(k)}
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
			return nil, errExpr{}
		}
	}
}

// describeKey names a dict key that is not a string, in the words of
// config's "got ..." messages about values.
func describeKey(k any) string {
	switch x := k.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x) + " (a boolean)"
	case int, float64:
		return fmt.Sprint(x) + " (a number)"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", k)
}
