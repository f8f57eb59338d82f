package config

import (
	"errors"
	"sort"
	"strconv"
	"strings"
)

// Kind says what an operator does about a configuration problem. Load
// reports every problem it finds in one pass, and --check-config groups
// them by Kind so that a converted Gunicorn file is fixed in one sitting.
type Kind int

// Problem kinds, in report order.
const (
	// KindDelete: a line to delete: Python code asyncd cannot run, or a
	// setting asyncd refuses.
	KindDelete Kind = iota + 1
	// KindEnv: a value computed in Python: write the value itself, or set
	// it in an ASYNCD_<KEY> variable.
	KindEnv
	// KindHook: a Gunicorn server hook, with what replaces it.
	KindHook
	// KindUnknown: a key that is no setting.
	KindUnknown
	// KindValue: a value or a line to correct (type, range, syntax).
	KindValue
	// KindHost: something the configuration names that this machine
	// lacks (a directory, a user); found by --check-config only.
	KindHost
)

// Kinds lists the kinds in report order.
var Kinds = []Kind{KindDelete, KindEnv, KindHook, KindUnknown, KindValue, KindHost}

// Title heads the kind's group in the --check-config report.
func (k Kind) Title() string {
	switch k {
	case KindDelete:
		return "Delete these lines (Python code asyncd cannot run, or settings it refuses)"
	case KindEnv:
		return "Values computed in Python: write the value itself, or move it into an ASYNCD_<KEY> environment variable"
	case KindHook:
		return "Server hooks: delete each function; this is what replaces it"
	case KindUnknown:
		return "Unknown keys"
	case KindValue:
		return "Values and lines to correct"
	case KindHost:
		return "Paths, users and groups, checked on this machine"
	}
	return "Problems"
}

// Errors is every problem Load found, in report order: the config file's
// by line, then those of GUNICORN_CMD_ARGS, the ASYNCD_* variables and the
// flags. errors.As finds the first *Error.
type Errors []*Error

// Error returns one problem per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (e Errors) Unwrap() []error {
	out := make([]error, len(e))
	for i, p := range e {
		out[i] = p
	}
	return out
}

// Sort orders the problems by where they came from, as Load does: the
// config file's by line, then GUNICORN_CMD_ARGS, the ASYNCD_* variables
// and the flags; problems from one place keep their order.
func (e Errors) Sort() { sortBySource(e) }

// AllErrors returns the configuration problems in err: each of an Errors,
// or the one *Error; nil if err holds none.
func AllErrors(err error) []*Error {
	var list Errors
	if errors.As(err, &list) {
		return list
	}
	var one *Error
	if errors.As(err, &one) {
		return []*Error{one}
	}
	return nil
}

// problems collects errors and warnings during a load.
type problems struct {
	errs Errors
	warn []*Error
}

// add records err: each *Error it holds, or err itself as a value problem.
func (p *problems) add(err error) {
	if err == nil {
		return
	}
	if list := AllErrors(err); list != nil {
		for _, e := range list {
			if e.Kind == 0 {
				e.Kind = KindValue
			}
			p.errs = append(p.errs, e)
		}
		return
	}
	p.errs = append(p.errs, &Error{Msg: err.Error(), Err: err, Kind: KindValue})
}

func (p *problems) warnf(src, msg string) {
	p.warn = append(p.warn, &Error{Source: src, Msg: msg})
}

// err returns the errors in report order, or nil.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	sortBySource(p.errs)
	return p.errs
}

// warnings returns the warnings in report order, as text.
func (p *problems) warnings() []string {
	sortBySource(p.warn)
	out := make([]string, len(p.warn))
	for i, w := range p.warn {
		out[i] = w.Error()
	}
	return out
}

// sortBySource orders problems by where they came from, the file by
// line, keeping the order of problems from one place.
func sortBySource(list []*Error) {
	sort.SliceStable(list, func(a, b int) bool {
		ra, la := sourceRank(list[a].Source)
		rb, lb := sourceRank(list[b].Source)
		if ra != rb {
			return ra < rb
		}
		return la < lb
	})
}

// sourceRank places a Source in precedence order (defaults taken from
// WEB_CONCURRENCY and PORT, the file, GUNICORN_CMD_ARGS, ASYNCD_*, flags)
// and returns its line, 0 if it has none.
func sourceRank(src string) (rank, line int) {
	switch {
	case src == "" || src == "default":
		return 5, 0
	case src == envWebConcurrency || src == envPort:
		return 0, 0
	case strings.HasPrefix(src, envCmdArgs):
		return 2, 0
	case strings.HasPrefix(src, "ASYNCD_"):
		return 3, 0
	case strings.HasPrefix(src, "-") || src == "command line":
		return 4, 0
	}
	if i := strings.LastIndexByte(src, ':'); i >= 0 {
		if n, err := strconv.Atoi(src[i+1:]); err == nil && n > 0 {
			return 1, n
		}
	}
	return 1, 0
}
