package config

// A Gunicorn .py config file, read by package gunicornpy with this
// package's knowledge of the settings; its problems become Errors.

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/asyncd/asyncd/internal/gunicornpy"
)

// parseGunicornPy reads the assignments of a Gunicorn config file, in file
// order, and the statements it cannot take as an Errors, each an *Error
// with Source "file:line", in line order.
func parseGunicornPy(file string, src []byte) ([]gunicornpy.Assign, error) {
	assigns, problems := gunicornpy.Parse(src, pySettings{})
	if len(problems) == 0 {
		return assigns, nil
	}
	errs := make(Errors, len(problems))
	for i, pr := range problems {
		errs[i] = &Error{Source: fmt.Sprintf("%s:%d", file, pr.Line), Msg: pr.Msg, Kind: pyKinds[pr.Kind]}
	}
	return assigns, errs
}

var pyKinds = map[gunicornpy.Kind]Kind{
	gunicornpy.KindValue:  KindValue,
	gunicornpy.KindDelete: KindDelete,
	gunicornpy.KindEnv:    KindEnv,
	gunicornpy.KindHook:   KindHook,
}

// pySettings tells the .py reader what the settings table says.
type pySettings struct{}

func (pySettings) Lookup(name string) (gunicornpy.Setting, bool) {
	s := lookup(name)
	switch {
	case s == nil:
		return gunicornpy.Setting{}, false
	case s.Group == GroupServerHooks:
		return gunicornpy.Setting{Hook: s.Reason}, true
	case s.pyHint != "":
		return gunicornpy.Setting{ExprHint: s.pyHint, ExprKind: gunicornpy.KindEnv}, true
	case s.Support != Supported:
		return gunicornpy.Setting{ExprKind: gunicornpy.KindDelete,
			ExprHint: fmt.Sprintf("delete it (%s has no effect in asyncd: %s)", s.Key, s.Reason)}, true
	}
	hint := "write the value itself"
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
	return gunicornpy.Setting{ExprHint: hint, ExprKind: gunicornpy.KindEnv}, true
}

func (pySettings) Suggest(name string) string { return suggest(name, keyNames) }

func (pySettings) TakesString(name, v string) bool {
	s := lookup(name)
	if s == nil || s.Support != Supported || s.Type == TypeRoutes {
		return false
	}
	val, err := decode(s, v, fromFile)
	return err == nil && (s.check == nil || s.check(reflect.ValueOf(val).Convert(fieldType(s.Field)).Interface()) == nil)
}
