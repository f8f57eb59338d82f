package gunicornpy

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

var kindNames = map[tokenKind]string{tokEOF: "eof", tokNewline: "newline", tokIndent: "indent", tokName: "name",
	tokNumber: "number", tokString: "string", tokOp: "op"}

// tokens lexes src to its end, each token as "line kind text-or-value".
func tokens(t *testing.T, src string) []string {
	t.Helper()
	lx := lexer{src: []byte(src), line: 1, lineStart: true, last: tokNewline}
	var out []string
	for {
		tok, err := lx.next()
		if err != nil {
			t.Fatalf("lexing %q: %v", src, err)
		}
		s := fmt.Sprintf("%d %s", tok.line, kindNames[tok.kind])
		switch {
		case tok.kind == tokString:
			s += fmt.Sprintf(" %q", tok.val)
			if tok.fstr {
				s += " f"
			}
			if tok.bytes {
				s += " b"
			}
		case tok.kind == tokNumber:
			s += fmt.Sprintf(" %#v", tok.val)
		case tok.text != "":
			s += " " + tok.text
		}
		if string(lx.src[tok.start:tok.end]) != tok.text && tok.kind != tokString && tok.kind != tokIndent {
			t.Errorf("token %s spans %q", s, lx.src[tok.start:tok.end])
		}
		out = append(out, s)
		if tok.kind == tokEOF {
			return out
		}
	}
}

// TestGunicornTokens: the lexer's tokens and their lines: NEWLINE ends a
// logical line (never inside brackets, never after a continuation),
// INDENT marks a line's leading whitespace, comments and blank lines
// are no tokens.
func TestGunicornTokens(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"brackets span lines", "a = [\n 1,  # c\n\n]\n  b\n",
			[]string{"1 name a", "1 op =", "1 op [", "2 number 1", "2 op ,", "4 op ]", "4 newline", "5 indent", "5 name b", "5 newline", "6 eof"}},
		{"strings", "s = r'\\d' b'x' f\"{a}\" '''x\ny''' u'\\t'\n",
			[]string{"1 name s", "1 op =", `1 string "\\d"`, `1 string "x" b`, `1 string "{a}" f`, `1 string "x\ny"`, `2 string "\t"`,
				"2 newline", "3 eof"}},
		{"numbers", "n = 0x1F 0o17 0b11 1_000 2.5e3 .5 00\n",
			[]string{"1 name n", "1 op =", "1 number 31", "1 number 15", "1 number 3", "1 number 1000", "1 number 2500",
				"1 number 0.5", "1 number 0", "1 newline", "2 eof"}},
		{"continuation and CRLF", "a = \\\r\n 1\r\n# c\r\nb=2",
			[]string{"1 name a", "1 op =", "2 number 1", "2 newline", "4 name b", "4 op =", "4 number 2", "4 newline", "4 eof"}},
		{"two-character operators", "a += b ** 2 // 3\n",
			[]string{"1 name a", "1 op +=", "1 name b", "1 op **", "1 number 2", "1 op //", "1 number 3", "1 newline", "2 eof"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tokens(t, tt.src); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tokens\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

// TestGunicornLexErrors: what the lexer refuses, at which line; after
// resync, lexing goes on at the next line that starts a statement.
func TestGunicornLexErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		msg       string
		after     string // the first token after resync
	}{
		{"unterminated", "a = 'x\nb = 1\n", 1, "unterminated string (the closing quote is missing on this line)", "2 name b"},
		{"unterminated triple", "a = '''x\n\n", 1, "unterminated string", "3 eof"},
		{"truncated escape", `a = "\x4"` + "\nb = 1\n", 1, `invalid \x escape`, "2 name b"},
		{"escape past Unicode", `a = "\U00110000"`, 1, `invalid character escape \U`, "1 eof"},
		{"leading zeros", "umask = 022\n", 1, "022: leading zeros are not allowed in Python 3 (write 0o22 for an octal number)", "2 eof"},
		{"underscores", "a = 1__0\n", 1, `invalid number "1__0"`, "2 eof"},
		{"hex float", "a = 0x1p3\n", 1, `invalid number "0x1p3"`, "2 eof"},
		{"unmatched", "a = 1)\n", 1, `unmatched ')'`, "2 eof"},
		{"mismatched, in a bracket over lines", "a = [1,\n  2)\n  3]\nb = 1\n", 2, `')' does not match '[' opened on line 1`, "4 name b"},
		{"never closed", "a = 1\nb = (\n", 2, `'(' is never closed`, "3 eof"},
		{"stray backslash", "a = \\ 1\n", 1, `unexpected \ (a line continuation must end its line)`, "2 eof"},
		{"non-ASCII", "a = é\n", 1, `unexpected character 'é'`, "2 eof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lx := lexer{src: []byte(tt.src), line: 1, lineStart: true, last: tokNewline}
			var err error
			for err == nil {
				var tok token
				if tok, err = lx.next(); err == nil && tok.kind == tokEOF {
					t.Fatal("no error")
				}
			}
			var le *lineError
			if !errors.As(err, &le) || le.line != tt.line || le.msg != tt.msg || !le.lex {
				t.Fatalf("error %#v, want line %d: %s", err, tt.line, tt.msg)
			}
			lx.resync()
			tok, err := lx.next()
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%d %s", tok.line, kindNames[tok.kind]) + map[bool]string{true: " " + tok.text}[tok.text != ""]; got != tt.after {
				t.Errorf("after resync: %s, want %s", got, tt.after)
			}
		})
	}
}
