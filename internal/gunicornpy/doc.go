// Package gunicornpy reads Gunicorn configuration files (gunicorn.conf.py)
// without running Python. Gunicorn configs are Python modules, but nearly
// all of them are top-level assignments of literals; this package reads
// exactly that subset (strings in every quoting, numbers, True/False/None,
// lists, tuples, dicts, comments, line continuations) and refuses anything
// else (imports, expressions, functions, blocks) with the line, the
// statement as written, and what to write instead. It reads past what it
// refuses, so that one pass finds every problem of a file.
//
// It owns Python's syntax: the lexer (lexer.go), the parser and the
// messages about statements (parser.go), behind Parse (gunicornpy.go). It
// must not know asyncd's settings: what a name means, which names are
// server hooks, what to write instead of an expression for a given
// setting, and whether a value is valid all come from the caller through
// Settings (package config, which imports this one and turns each Problem
// into its own error and Kind). It reads bytes and returns values; it
// opens no files and knows no file names: a Problem carries a line, the
// caller adds the file.
package gunicornpy
