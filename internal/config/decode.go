package config

import (
	"fmt"
	"math"
	"math/big"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// origin says how a raw value was written, which decides how strings read.
type origin int

const (
	fromFile    origin = iota // YAML or .py: typed values
	fromEnv                   // one string; lists and maps are comma-separated
	fromFlag                  // []string, one element per occurrence
	fromCmdArgs               // a flag in GUNICORN_CMD_ARGS: as fromFlag
)

// decode turns a raw value into the Go value of s's Config field. Errors
// are the detail after "key: ".
func decode(s *Setting, raw any, o origin) (any, error) {
	if o == fromFlag || o == fromCmdArgs {
		vals := raw.([]string)
		if s.Type != TypeStringList {
			// A repeated scalar flag: the last occurrence wins, as in argparse.
			raw = vals[len(vals)-1]
		} else {
			items := make([]any, len(vals))
			for i, v := range vals {
				items[i] = v
			}
			raw = items
		}
	}
	switch s.Type {
	case TypeString:
		return decodeString(raw)
	case TypeBool:
		return decodeBool(raw)
	case TypeInt:
		n, err := decodeInt(raw)
		return int(n), err
	case TypeDuration:
		return DecodeDuration(raw)
	case TypeSize:
		return decodeSize(raw)
	case TypeFileMode:
		m, err := decodeMode(raw)
		if err != nil {
			return nil, err
		}
		if s.Field == "Umask" {
			return int(m), nil
		}
		return os.FileMode(m), nil
	case TypeStringList:
		return decodeList(raw, s.SplitCommas || o == fromEnv)
	case TypeStringMap:
		return decodeMap(raw)
	case TypeEnum:
		return decodeEnum(s, raw)
	case TypeRoutes:
		return decodeRoutes(raw)
	}
	return nil, fmt.Errorf("setting type %v cannot be decoded", s.Type)
}

// describe names a raw value's kind for "got ..." messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x) + " (a boolean)"
	case int, int64, uint64, float64:
		return fmt.Sprint(x) + " (a number)"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

func decodeString(raw any) (string, error) {
	switch x := raw.(type) {
	case nil:
		return "", nil // YAML "key:" and Python None mean "not set"
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil // user: 1000
	case int64:
		return strconv.FormatInt(x, 10), nil
	}
	return "", fmt.Errorf("must be a string, got %s", describe(raw))
}

func decodeBool(raw any) (bool, error) {
	switch x := raw.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "yes", "on", "1":
			return true, nil
		case "false", "no", "off", "0":
			return false, nil
		}
		return false, fmt.Errorf("not a boolean: %q (use true or false)", x)
	}
	return false, fmt.Errorf("must be true or false, got %s", describe(raw))
}

func decodeInt(raw any) (int64, error) {
	switch x := raw.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("too large: %d", x)
		}
		return int64(x), nil
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.Abs(x) > 1<<53 {
			return 0, fmt.Errorf("not an integer: %v", x)
		}
		return int64(x), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("not an integer: %q", x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("must be an integer, got %s", describe(raw))
}

// maxSeconds is the largest whole number of seconds a time.Duration holds.
const maxSeconds = float64(math.MaxInt64 / int64(time.Second))

func secondsToDuration(f float64) (time.Duration, bool) {
	if math.IsNaN(f) || math.Abs(f) > maxSeconds {
		return 0, false
	}
	return time.Duration(math.Round(f * float64(time.Second))), true
}

// DecodeDuration reads a duration as every setting and every plugin option
// takes one: Gunicorn's seconds as a number or a string (30, "30", 2.5,
// "2.5") or a Go duration ("1m30s", "250ms").
func DecodeDuration(raw any) (time.Duration, error) {
	switch x := raw.(type) {
	case time.Duration:
		return x, nil
	case int, int64, uint64:
		n, err := decodeInt(x)
		if err != nil || n > int64(maxSeconds) || n < -int64(maxSeconds) {
			return 0, fmt.Errorf("too large: %v seconds", x)
		}
		return time.Duration(n) * time.Second, nil
	case float64:
		d, ok := secondsToDuration(x)
		if !ok {
			return 0, fmt.Errorf("not a duration: %v", x)
		}
		return d, nil
	case string:
		s := strings.TrimSpace(x)
		if f, err := strconv.ParseFloat(s, 64); err == nil && isDecimal(s) {
			if d, ok := secondsToDuration(f); ok {
				return d, nil
			}
		} else if d, err := time.ParseDuration(s); err == nil {
			return d, nil
		}
		return 0, fmt.Errorf("not a duration: %q", x)
	}
	return 0, fmt.Errorf("must be a duration (seconds, or a Go duration such as 1m30s), got %s", describe(raw))
}

// isDecimal reports whether s is a plain decimal number (ParseFloat also
// takes "inf", "0x1p3" and "1_0", which no one means as seconds).
func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	digits := false
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.' || ((c == '-' || c == '+') && i == 0):
		default:
			return false
		}
	}
	return digits
}

// sizeUnits are the accepted size suffixes, lower-cased.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// decodeSize reads bytes: an integer, or a number with a unit (64KiB, 10MB).
func decodeSize(raw any) (int64, error) {
	switch x := raw.(type) {
	case int, int64, uint64:
		return decodeInt(x)
	case float64:
		n, err := decodeInt(x)
		if err != nil {
			return 0, fmt.Errorf("not a whole number of bytes: %v", x)
		}
		return n, nil
	case string:
		return parseSize(x)
	}
	return 0, fmt.Errorf("must be a size (bytes, or a number with a unit such as 64KiB or 10MB), got %s", describe(raw))
}

func parseSize(x string) (int64, error) {
	s := strings.TrimSpace(x)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || (i == 0 && (s[i] == '-' || s[i] == '+'))) {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnits[unit]
	if !ok {
		switch unit {
		case "k", "m", "g", "t":
			u := strings.ToUpper(unit)
			return 0, fmt.Errorf("not a size: %q (ambiguous unit: write %sB for powers of 1000 or %siB for powers of 1024)", x, u, u)
		}
		return 0, fmt.Errorf("not a size: %q (use bytes, or a unit: KB MB GB TB, KiB MiB GiB TiB)", x)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok || !isDecimal(num) {
		return 0, fmt.Errorf("not a size: %q", x)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("not a whole number of bytes: %q", x)
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("too large: %q", x)
	}
	return n.Int64(), nil
}

// decodeMode reads permission bits: strings are octal (as chmod and umask
// read them), integers are taken as they are (YAML's 0660 and Python's
// 0o660 are octal already). The range is checked here too, because the
// value is converted to os.FileMode, which would wrap.
func decodeMode(raw any) (uint32, error) {
	var n int64
	switch x := raw.(type) {
	case int, int64, uint64, float64:
		v, err := decodeInt(x)
		if err != nil {
			return 0, err
		}
		n = v
	case string:
		s := strings.TrimSpace(x)
		s = strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
		v, err := strconv.ParseInt(s, 8, 64)
		if err != nil || s == "" || s[0] == '-' || s[0] == '+' {
			return 0, fmt.Errorf("not an octal mode: %q", x)
		}
		n = v
	default:
		return 0, fmt.Errorf("must be an octal mode such as \"0660\", got %s", describe(raw))
	}
	if n < 0 || n > 0o777 {
		if _, isText := raw.(string); !isText && n > 0 {
			return 0, fmt.Errorf("must be between 0000 and 0777, got %s (the number %d: write octal modes as a string such as \"0%d\")",
				formatMode(n), n, n)
		}
		return 0, fmt.Errorf("must be between 0000 and 0777, got %s", formatMode(n))
	}
	return uint32(n), nil
}

// formatMode renders permission bits in octal with a leading 0: 0660.
func formatMode(n int64) string {
	if n < 0 {
		return "-" + formatMode(-n)
	}
	return fmt.Sprintf("0%03o", n)
}

// splitList splits a comma-separated list, trimming blanks and dropping
// empty items.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func decodeList(raw any, split bool) ([]string, error) {
	switch x := raw.(type) {
	case nil:
		return []string{}, nil
	case string:
		if split {
			return splitList(x), nil
		}
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for i, item := range x {
			s, ok := item.(string)
			if !ok {
				return nil, fmt.Errorf("item %d must be a string, got %s", i, describe(item))
			}
			if split {
				out = append(out, splitList(s)...)
			} else {
				out = append(out, s)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("must be a list of strings, got %s", describe(raw))
}

func decodeMap(raw any) (map[string]string, error) {
	out := map[string]string{}
	switch x := raw.(type) {
	case nil:
		return out, nil
	case string:
		for _, item := range splitList(x) {
			k, v, ok := strings.Cut(item, "=")
			if !ok {
				return nil, fmt.Errorf("item %q must be NAME=VALUE", item)
			}
			out[strings.ToUpper(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s, ok := x[k].(string)
			if !ok {
				return nil, fmt.Errorf("%s: must be a string, got %s", k, describe(x[k]))
			}
			out[strings.ToUpper(k)] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("must be a mapping of header name to value, got %s", describe(raw))
}

func decodeEnum(s *Setting, raw any) (any, error) {
	var str string
	switch x := raw.(type) {
	case string:
		str = strings.TrimSpace(x)
	case bool:
		if s.Field != "ProxyProtocol" {
			return nil, fmt.Errorf("must be one of %s, got %s", strings.Join(s.Choices, ", "), describe(raw))
		}
		str = strconv.FormatBool(x)
	default:
		return nil, fmt.Errorf("must be one of %s, got %s", strings.Join(s.Choices, ", "), describe(raw))
	}
	low := strings.ToLower(str)
	switch s.Field {
	case "Backend":
		if err := checkBackend(Backend(low)); err != nil {
			return nil, err
		}
		return Backend(low), nil
	case "WorkerClass":
		if WorkerClass(str).Normalized() == "" {
			return nil, fmt.Errorf("must be one of sync, async, gthread (or Gunicorn's gevent, eventlet, tornado, uvicorn), got %q", str)
		}
		return WorkerClass(str), nil // kept as given
	case "ProxyProtocol":
		switch low {
		case "true", "yes", "on":
			low = string(ProxyAuto)
		case "false", "no", "":
			low = string(ProxyOff)
		}
	}
	for _, c := range s.Choices {
		if low == c {
			return reflect.ValueOf(c).Convert(fieldType(s.Field)).Interface(), nil
		}
	}
	return nil, fmt.Errorf("must be one of %s, got %q", strings.Join(s.Choices, ", "), str)
}

var configType = reflect.TypeOf(Config{})

func fieldType(name string) reflect.Type {
	f, _ := configType.FieldByName(name)
	return f.Type
}

// routeKeys are the keys a route mapping may hold.
var routeKeys = []string{"path", "mount", "handler", "methods", "blocking", "request_buffering", "options"}

// decodeRoutes reads the routes list. Errors name the route element
// ("routes[2].handler: ..."), so they are returned whole, not as a detail.
func decodeRoutes(raw any) (any, error) {
	if raw == nil {
		return []Route{}, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("must be a list of mappings (path, handler, ...), got %s", describe(raw))
	}
	out := make([]Route, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, &routeError{fmt.Sprintf("routes[%d]: must be a mapping (path, handler, ...), got %s", i, describe(item))}
		}
		r := Route{Index: i}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := m[k]
			at := fmt.Sprintf("routes[%d].%s", i, k)
			var err error
			switch k {
			case "path":
				r.Path, err = routeString(v)
				if _, both := m["mount"]; both {
					err = fmt.Errorf("a route has path: or mount:, not both")
				}
			case "mount":
				r.Path, err = routeString(v)
				r.Mount = true
			case "handler":
				r.Handler, err = routeString(v)
			case "methods":
				r.Methods, err = decodeList(v, true)
				if len(r.Methods) == 0 {
					r.Methods = nil // every method, however written
				}
			case "blocking":
				r.Blocking, err = decodeBool(v)
			case "request_buffering":
				var buffered bool
				buffered, err = decodeBool(v)
				r.StreamBody = !buffered
			case "options":
				switch o := v.(type) {
				case nil:
				case map[string]any:
					if len(o) > 0 {
						r.Options = o
					}
				default:
					err = fmt.Errorf("must be a mapping, got %s", describe(v))
				}
			default:
				return nil, &routeError{unknownKeyMsg(at, suggestRouteKey(i, k))}
			}
			if err != nil {
				return nil, &routeError{at + ": " + err.Error()}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// routeError carries a complete message about routes[i].
type routeError struct{ msg string }

func (e *routeError) Error() string { return e.msg }

func routeString(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", fmt.Errorf("must be a string, got %s", describe(v))
}

func suggestRouteKey(i int, k string) string {
	if s := suggest(k, routeKeys); s != "" {
		return fmt.Sprintf("routes[%d].%s", i, s)
	}
	return ""
}

// formatDuration renders d compactly and loadably: 30s, 90s, 1m, 250ms.
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < 0:
		return d.String()
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0 && d < time.Second:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}

// formatSize renders n with the largest unit that divides it exactly.
func formatSize(n int64) string {
	if n > 0 {
		for _, u := range []struct {
			name string
			v    int64
		}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
			{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
			if n%u.v == 0 {
				return strconv.FormatInt(n/u.v, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// formatValue renders a field value for --help, docs and messages.
func formatValue(t Type, v any) string {
	switch t {
	case TypeDuration:
		return formatDuration(v.(time.Duration))
	case TypeSize:
		return formatSize(v.(int64))
	case TypeFileMode:
		return formatMode(reflect.ValueOf(v).Convert(reflect.TypeOf(int64(0))).Int())
	case TypeStringList:
		l := v.([]string)
		if len(l) == 0 {
			return "[]"
		}
		return strings.Join(l, ",")
	case TypeStringMap:
		m := v.(map[string]string)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + m[k]
		}
		return strings.Join(parts, ",")
	case TypeRoutes:
		return "[]"
	case TypeString:
		if v.(string) == "" {
			return `""`
		}
	}
	return fmt.Sprint(v)
}
