package gunicornpy

// The lexer of the Gunicorn .py reader (parser.go): Python's tokens for
// the literal subset asyncd reads, with line numbers, and the resync that
// lets the reader go on after a statement it cannot take.

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokNewline
	tokIndent
	tokName
	tokNumber
	tokString
	tokOp
)

type token struct {
	kind       tokenKind
	text       string // names, operators, number text
	val        any    // numbers and strings
	fstr       bool   // f"..."
	bytes      bool   // b"..."
	line       int
	start, end int // byte offsets in the source
}

// lineError is a problem at a line; Parse returns it as a Problem.
type lineError struct {
	line int
	msg  string
	kind Kind // 0: KindValue
	lex  bool // from the lexer, which must then skip to the next line
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// errExpr reports a value that is not a literal; the statement turns it
// into a message quoting the whole statement.
type errExpr struct{ fstr bool }

func (errExpr) Error() string { return "not a literal" }

type bracket struct {
	ch   byte
	line int
}

type lexer struct {
	src       []byte
	pos, line int
	lineStart bool // at the start of a logical line
	brackets  []bracket
	last      tokenKind
}

func (lx *lexer) errf(line int, format string, a ...any) error {
	return &lineError{line: line, msg: fmt.Sprintf(format, a...), lex: true}
}

// resync moves the lexer to the start of the next line that does not
// continue the statement it failed in (indented lines and lines that
// close a bracket do), forgetting open brackets.
func (lx *lexer) resync() {
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
	lx.last = tokNewline
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }

func (lx *lexer) emit(t token) (token, error) {
	lx.last = t.kind
	return t, nil
}

// next returns the next token. NEWLINE ends a logical line (never inside
// brackets); INDENT marks leading whitespace on a logical line.
func (lx *lexer) next() (token, error) {
	src := lx.src
	for {
		if lx.pos >= len(src) {
			if n := len(lx.brackets); n > 0 {
				b := lx.brackets[n-1]
				return token{}, lx.errf(b.line, "%q is never closed", b.ch)
			}
			if lx.last != tokNewline {
				return lx.emit(token{kind: tokNewline, line: lx.line, start: lx.pos, end: lx.pos})
			}
			return token{kind: tokEOF, line: lx.line, start: lx.pos, end: lx.pos}, nil
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
				t := token{kind: tokIndent, line: lx.line, start: lx.pos, end: j}
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
				return token{}, lx.errf(lx.line, "unexpected \\ (a line continuation must end its line)")
			}
			lx.line++
		case c == '\n':
			lx.pos++
			lx.line++
			if len(lx.brackets) > 0 {
				continue
			}
			lx.lineStart = true
			if lx.last == tokNewline {
				continue
			}
			return lx.emit(token{kind: tokNewline, line: lx.line - 1, start: lx.pos - 1, end: lx.pos - 1})
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
			return lx.emit(token{kind: tokName, text: word, line: lx.line, start: start, end: lx.pos})
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
func (lx *lexer) str(start int, prefix string) (token, error) {
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
			return token{}, lx.errf(startLine, "unterminated string")
		}
		c := src[lx.pos]
		switch {
		case c == q && !triple:
			lx.pos++
			return lx.emit(token{kind: tokString, val: sb.String(), fstr: fstr, bytes: strings.Contains(prefix, "b"),
				line: startLine, start: start, end: lx.pos})
		case c == q && lx.pos+2 < len(src) && src[lx.pos+1] == q && src[lx.pos+2] == q:
			lx.pos += 3
			return lx.emit(token{kind: tokString, val: sb.String(), fstr: fstr, bytes: strings.Contains(prefix, "b"),
				line: startLine, start: start, end: lx.pos})
		case c == '\n' && !triple:
			return token{}, lx.errf(startLine, "unterminated string (the closing quote is missing on this line)")
		case c == '\n':
			lx.line++
			sb.WriteByte(c)
			lx.pos++
		case c == '\r' && lx.pos+1 < len(src) && src[lx.pos+1] == '\n':
			lx.pos++ // newlines read as \n, as Python does
		case c == '\\' && lx.pos+1 < len(src):
			if err := lx.escape(&sb, raw || fstr); err != nil {
				return token{}, err
			}
		default:
			sb.WriteByte(c)
			lx.pos++
		}
	}
}

// escape decodes the backslash escape at lx.pos into sb. In raw strings the
// backslash stays (it still keeps the next character from ending the string).
func (lx *lexer) escape(sb *strings.Builder, raw bool) error {
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
func (lx *lexer) number() (token, error) {
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
	t := token{kind: tokNumber, text: text, line: lx.line, start: start, end: lx.pos}
	digits := text
	if base != 10 {
		digits = strings.TrimPrefix(text[2:], "_")
	}
	if strings.HasSuffix(text, "j") || strings.HasSuffix(text, "J") {
		return token{}, lx.errf(lx.line, "%s: complex numbers are not setting values", text)
	}
	if !underscoresOK(digits) {
		return token{}, lx.errf(lx.line, "invalid number %q", text)
	}
	digits = strings.ReplaceAll(digits, "_", "")
	if isFloat {
		f, err := strconv.ParseFloat(digits, 64)
		if err != nil || !isFloatText(digits) {
			return token{}, lx.errf(lx.line, "invalid number %q", text)
		}
		t.val = f
		return lx.emit(t)
	}
	if base == 10 && len(digits) > 1 && digits[0] == '0' {
		if strings.Trim(digits, "0") != "" {
			return token{}, lx.errf(lx.line, "%s: leading zeros are not allowed in Python 3 (write 0o%s for an octal number)",
				text, strings.TrimLeft(digits, "0"))
		}
	}
	n, err := strconv.ParseInt(digits, base, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return token{}, lx.errf(lx.line, "%s: number too large", text)
		}
		return token{}, lx.errf(lx.line, "invalid number %q", text)
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

var twoCharOps = map[string]bool{
	"**": true, "//": true, "==": true, "!=": true, "<=": true, ">=": true, "->": true, ":=": true,
	"<<": true, ">>": true, "+=": true, "-=": true, "*=": true, "/=": true, "%=": true, "&=": true,
	"|=": true, "^=": true, "@=": true,
}

var closing = map[byte]byte{')': '(', ']': '[', '}': '{'}

func (lx *lexer) op() (token, error) {
	src := lx.src
	start := lx.pos
	c := src[lx.pos]
	if lx.pos+1 < len(src) && twoCharOps[string(src[lx.pos:lx.pos+2])] {
		lx.pos += 2
		return lx.emit(token{kind: tokOp, text: string(src[start:lx.pos]), line: lx.line, start: start, end: lx.pos})
	}
	switch {
	case c == '(' || c == '[' || c == '{':
		lx.brackets = append(lx.brackets, bracket{c, lx.line})
	case closing[c] != 0:
		n := len(lx.brackets)
		if n == 0 {
			return token{}, lx.errf(lx.line, "unmatched %q", c)
		}
		if open := lx.brackets[n-1]; open.ch != closing[c] {
			return token{}, lx.errf(lx.line, "%q does not match %q opened on line %d", c, open.ch, open.line)
		}
		lx.brackets = lx.brackets[:n-1]
	case strings.IndexByte("=+-*/%&|^~<>,:;.@!", c) >= 0:
	default:
		if c >= utf8.RuneSelf {
			r, _ := utf8.DecodeRune(src[lx.pos:])
			return token{}, lx.errf(lx.line, "unexpected character %q", r)
		}
		return token{}, lx.errf(lx.line, "unexpected character %q", c)
	}
	lx.pos++
	return lx.emit(token{kind: tokOp, text: string(c), line: lx.line, start: start, end: lx.pos})
}
