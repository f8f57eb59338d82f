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
	"strconv"
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

type pyKind int

const (
	pyEOF pyKind = iota
	pyNewline
	pyIndent
	pyName
	pyNumber
	pyString
	pyOp
)

type pyTok struct {
	kind       pyKind
	text       string // names, operators, number text
	val        any    // numbers and strings
	fstr       bool   // f"..."
	bytes      bool   // b"..."
	line       int
	start, end int // byte offsets in the source
}

// pyError is a problem at a line; parseGunicornPy adds the file name.
type pyError struct {
	line int
	msg  string
	kind Kind // 0: KindValue
	lex  bool // from the lexer, which must then skip to the next line
}

func (e *pyError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// errPyExpr reports a value that is not a literal; the statement turns it
// into a message quoting the whole statement.
type errPyExpr struct{ fstr bool }

func (errPyExpr) Error() string { return "not a literal" }

type pyBracket struct {
	ch   byte
	line int
}

type pyLexer struct {
	src       []byte
	pos, line int
	lineStart bool // at the start of a logical line
	brackets  []pyBracket
	last      pyKind
}

func (lx *pyLexer) errf(line int, format string, a ...any) error {
	return &pyError{line: line, msg: fmt.Sprintf(format, a...), lex: true}
}

// resync moves the lexer to the start of the next line that does not
// continue the statement it failed in (indented lines and lines that
// close a bracket do), forgetting open brackets.
func (lx *pyLexer) resync() {
	toNextLine := func() {
		if i := bytes.IndexByte(lx.src[lx.pos:], '\n'); i >= 0 {
			lx.pos += i + 1
			lx.line++
		} else {
			lx.pos = len(lx.src)
		}
	}
	toNextLine()
	for lx.pos < len(lx.src) && strings.IndexByte(" \t\f)]}", lx.src[lx.pos]) >= 0 {
		toNextLine()
	}
	lx.brackets = nil
	lx.lineStart = true
	lx.last = pyNewline
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }

func (lx *pyLexer) emit(t pyTok) (pyTok, error) {
	lx.last = t.kind
	return t, nil
}

// next returns the next token. NEWLINE ends a logical line (never inside
// brackets); INDENT marks leading whitespace on a logical line.
func (lx *pyLexer) next() (pyTok, error) {
	src := lx.src
	for {
		if lx.pos >= len(src) {
			if n := len(lx.brackets); n > 0 {
				b := lx.brackets[n-1]
				return pyTok{}, lx.errf(b.line, "%q is never closed", b.ch)
			}
			if lx.last != pyNewline {
				return lx.emit(pyTok{kind: pyNewline, line: lx.line, start: lx.pos, end: lx.pos})
			}
			return pyTok{kind: pyEOF, line: lx.line, start: lx.pos, end: lx.pos}, nil
		}
		if lx.lineStart && len(lx.brackets) == 0 {
			j := lx.pos
			for j < len(src) && (src[j] == ' ' || src[j] == '\t' || src[j] == '\f') {
				j++
			}
			switch {
			case j >= len(src):
				lx.pos = j
				continue
			case src[j] == '\n':
				lx.pos = j + 1
				lx.line++
				continue
			case src[j] == '\r':
				lx.pos = j + 1 // CRLF: the \n follows
				continue
			case src[j] == '#':
				for j < len(src) && src[j] != '\n' {
					j++
				}
				lx.pos = j
				continue
			}
			lx.lineStart = false
			if j > lx.pos {
				t := pyTok{kind: pyIndent, line: lx.line, start: lx.pos, end: j}
				lx.pos = j
				return lx.emit(t)
			}
		}
		c := src[lx.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\f' || c == '\r':
			lx.pos++
		case c == '#':
			for lx.pos < len(src) && src[lx.pos] != '\n' {
				lx.pos++
			}
		case c == '\\':
			rest := src[lx.pos+1:]
			switch {
			case bytes.HasPrefix(rest, []byte("\n")):
				lx.pos += 2
			case bytes.HasPrefix(rest, []byte("\r\n")):
				lx.pos += 3
			default:
				return pyTok{}, lx.errf(lx.line, "unexpected \\ (a line continuation must end its line)")
			}
			lx.line++
		case c == '\n':
			lx.pos++
			lx.line++
			if len(lx.brackets) > 0 {
				continue
			}
			lx.lineStart = true
			if lx.last == pyNewline {
				continue
			}
			return lx.emit(pyTok{kind: pyNewline, line: lx.line - 1, start: lx.pos - 1, end: lx.pos - 1})
		case isIdentStart(c):
			start := lx.pos
			for lx.pos < len(src) && isIdentChar(src[lx.pos]) {
				lx.pos++
			}
			word := string(src[start:lx.pos])
			if lx.pos < len(src) && (src[lx.pos] == '"' || src[lx.pos] == '\'') {
				switch strings.ToLower(word) {
				case "r", "u", "f", "b", "br", "rb", "fr", "rf":
					return lx.str(start, strings.ToLower(word))
				}
			}
			return lx.emit(pyTok{kind: pyName, text: word, line: lx.line, start: start, end: lx.pos})
		case c == '"' || c == '\'':
			return lx.str(lx.pos, "")
		case isDigit(c) || (c == '.' && lx.pos+1 < len(src) && isDigit(src[lx.pos+1])):
			return lx.number()
		default:
			return lx.op()
		}
	}
}

// str scans a string literal whose prefix starts at start.
func (lx *pyLexer) str(start int, prefix string) (pyTok, error) {
	src := lx.src
	raw := strings.Contains(prefix, "r")
	fstr := strings.Contains(prefix, "f")
	q := src[lx.pos]
	startLine := lx.line
	triple := lx.pos+2 < len(src) && src[lx.pos+1] == q && src[lx.pos+2] == q
	if triple {
		lx.pos += 3
	} else {
		lx.pos++
	}
	var sb strings.Builder
	for {
		if lx.pos >= len(src) {
			return pyTok{}, lx.errf(startLine, "unterminated string")
		}
		c := src[lx.pos]
		switch {
		case c == q && !triple:
			lx.pos++
			return lx.emit(pyTok{kind: pyString, val: sb.String(), fstr: fstr, bytes: strings.Contains(prefix, "b"),
				line: startLine, start: start, end: lx.pos})
		case c == q && lx.pos+2 < len(src) && src[lx.pos+1] == q && src[lx.pos+2] == q:
			lx.pos += 3
			return lx.emit(pyTok{kind: pyString, val: sb.String(), fstr: fstr, bytes: strings.Contains(prefix, "b"),
				line: startLine, start: start, end: lx.pos})
		case c == '\n' && !triple:
			return pyTok{}, lx.errf(startLine, "unterminated string (the closing quote is missing on this line)")
		case c == '\n':
			lx.line++
			sb.WriteByte(c)
			lx.pos++
		case c == '\r' && lx.pos+1 < len(src) && src[lx.pos+1] == '\n':
			lx.pos++ // newlines read as \n, as Python does
		case c == '\\' && lx.pos+1 < len(src):
			if err := lx.escape(&sb, raw || fstr); err != nil {
				return pyTok{}, err
			}
		default:
			sb.WriteByte(c)
			lx.pos++
		}
	}
}

// escape decodes the backslash escape at lx.pos into sb. In raw strings the
// backslash stays (it still keeps the next character from ending the string).
func (lx *pyLexer) escape(sb *strings.Builder, raw bool) error {
	src := lx.src
	e := src[lx.pos+1]
	if e == '\n' {
		lx.line++
	}
	if raw {
		sb.WriteByte('\\')
		sb.WriteByte(e)
		lx.pos += 2
		return nil
	}
	lx.pos += 2
	simple := map[byte]byte{'\\': '\\', '\'': '\'', '"': '"', 'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}
	if r, ok := simple[e]; ok {
		sb.WriteByte(r)
		return nil
	}
	hex := func(n int) (rune, error) {
		if lx.pos+n > len(src) {
			return 0, lx.errf(lx.line, "truncated \\%c escape", e)
		}
		v, err := strconv.ParseUint(string(src[lx.pos:lx.pos+n]), 16, 32)
		if err != nil {
			return 0, lx.errf(lx.line, "invalid \\%c escape", e)
		}
		lx.pos += n
		return rune(v), nil
	}
	var r rune
	var err error
	switch {
	case e == '\n':
		return nil // backslash-newline: the string continues
	case e == '\r':
		if lx.pos < len(src) && src[lx.pos] == '\n' {
			lx.pos++
			lx.line++
		}
		return nil
	case e >= '0' && e <= '7':
		v := int(e - '0')
		for i := 0; i < 2 && lx.pos < len(src) && src[lx.pos] >= '0' && src[lx.pos] <= '7'; i++ {
			v = v*8 + int(src[lx.pos]-'0')
			lx.pos++
		}
		r = rune(v)
	case e == 'x':
		r, err = hex(2)
	case e == 'u':
		r, err = hex(4)
	case e == 'U':
		r, err = hex(8)
	case e == 'N':
		return lx.errf(lx.line, "\\N{...} escapes are not supported: write the character itself")
	default:
		sb.WriteByte('\\') // unknown escapes stay as written, as in Python
		sb.WriteByte(e)
		return nil
	}
	if err != nil {
		return err
	}
	if !utf8.ValidRune(r) {
		return lx.errf(lx.line, "invalid character escape \\%c", e)
	}
	sb.WriteRune(r)
	return nil
}

// number scans an int or float literal.
func (lx *pyLexer) number() (pyTok, error) {
	src := lx.src
	start := lx.pos
	base := 10
	if src[lx.pos] == '0' && lx.pos+1 < len(src) && strings.IndexByte("xXoObB", src[lx.pos+1]) >= 0 {
		base = map[byte]int{'x': 16, 'o': 8, 'b': 2}[src[lx.pos+1]|0x20]
		lx.pos += 2
	}
	isFloat := false
	for lx.pos < len(src) {
		c := src[lx.pos]
		switch {
		case isIdentChar(c) && !(base == 10 && (c == 'e' || c == 'E')):
			lx.pos++
		case base == 10 && c == '.' && !isFloat:
			isFloat = true
			lx.pos++
		case base == 10 && (c == 'e' || c == 'E'):
			isFloat = true
			lx.pos++
			if lx.pos < len(src) && (src[lx.pos] == '+' || src[lx.pos] == '-') {
				lx.pos++
			}
		default:
			goto done
		}
	}
done:
	text := string(src[start:lx.pos])
	t := pyTok{kind: pyNumber, text: text, line: lx.line, start: start, end: lx.pos}
	digits := text
	if base != 10 {
		digits = strings.TrimPrefix(text[2:], "_")
	}
	if strings.HasSuffix(text, "j") || strings.HasSuffix(text, "J") {
		return pyTok{}, lx.errf(lx.line, "%s: complex numbers are not setting values", text)
	}
	if !underscoresOK(digits) {
		return pyTok{}, lx.errf(lx.line, "invalid number %q", text)
	}
	digits = strings.ReplaceAll(digits, "_", "")
	if isFloat {
		f, err := strconv.ParseFloat(digits, 64)
		if err != nil || !isFloatText(digits) {
			return pyTok{}, lx.errf(lx.line, "invalid number %q", text)
		}
		t.val = f
		return lx.emit(t)
	}
	if base == 10 && len(digits) > 1 && digits[0] == '0' {
		if strings.Trim(digits, "0") != "" {
			return pyTok{}, lx.errf(lx.line, "%s: leading zeros are not allowed in Python 3 (write 0o%s for an octal number)",
				text, strings.TrimLeft(digits, "0"))
		}
	}
	n, err := strconv.ParseInt(digits, base, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return pyTok{}, lx.errf(lx.line, "%s: number too large", text)
		}
		return pyTok{}, lx.errf(lx.line, "invalid number %q", text)
	}
	t.val = int(n)
	return lx.emit(t)
}

// underscoresOK checks Python's rule: an underscore sits between two digits.
func underscoresOK(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && (i == 0 || i == len(s)-1 || !isHexDigit(s[i-1]) || !isHexDigit(s[i+1])) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// isFloatText accepts digits, one dot and an exponent: what ParseFloat also
// takes but Python does not (inf, nan, hex floats) is refused.
func isFloatText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

var pyTwoCharOps = map[string]bool{
	"**": true, "//": true, "==": true, "!=": true, "<=": true, ">=": true, "->": true, ":=": true,
	"<<": true, ">>": true, "+=": true, "-=": true, "*=": true, "/=": true, "%=": true, "&=": true,
	"|=": true, "^=": true, "@=": true,
}

var pyClosing = map[byte]byte{')': '(', ']': '[', '}': '{'}

func (lx *pyLexer) op() (pyTok, error) {
	src := lx.src
	start := lx.pos
	c := src[lx.pos]
	if lx.pos+1 < len(src) && pyTwoCharOps[string(src[lx.pos:lx.pos+2])] {
		lx.pos += 2
		return lx.emit(pyTok{kind: pyOp, text: string(src[start:lx.pos]), line: lx.line, start: start, end: lx.pos})
	}
	switch {
	case c == '(' || c == '[' || c == '{':
		lx.brackets = append(lx.brackets, pyBracket{c, lx.line})
	case pyClosing[c] != 0:
		n := len(lx.brackets)
		if n == 0 {
			return pyTok{}, lx.errf(lx.line, "unmatched %q", c)
		}
		if open := lx.brackets[n-1]; open.ch != pyClosing[c] {
			return pyTok{}, lx.errf(lx.line, "%q does not match %q opened on line %d", c, open.ch, open.line)
		}
		lx.brackets = lx.brackets[:n-1]
	case strings.IndexByte("=+-*/%&|^~<>,:;.@!", c) >= 0:
	default:
		if c >= utf8.RuneSelf {
			r, _ := utf8.DecodeRune(src[lx.pos:])
			return pyTok{}, lx.errf(lx.line, "unexpected character %q", r)
		}
		return pyTok{}, lx.errf(lx.line, "unexpected character %q", c)
	}
	lx.pos++
	return lx.emit(pyTok{kind: pyOp, text: string(c), line: lx.line, start: start, end: lx.pos})
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
