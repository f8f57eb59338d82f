package config

// What a setting is: its type, support level, group, and the table's
// lookups. The table itself is in settings.go.

import (
	"fmt"
	"sort"
	"strings"
)

// Type is the value syntax of a setting.
type Type int

// Setting types.
const (
	TypeString     Type = iota + 1
	TypeBool            // true/false (env and flags also take yes/no, on/off, 1/0)
	TypeInt             // integer
	TypeDuration        // seconds (30, "30", 2.5) or a Go duration ("1m30s")
	TypeSize            // bytes (65536) or with a unit ("64KiB", "10MB")
	TypeFileMode        // octal permission bits: "0660" (always octal) or an integer
	TypeStringList      // list of strings
	TypeStringMap       // mapping of string to string
	TypeEnum            // one of Choices
	TypeRoutes          // list of route mappings (config file only)
	TypeAny             // a Gunicorn setting asyncd does not implement
)

// String names the type for --help and the docs.
func (t Type) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeBool:
		return "bool"
	case TypeInt:
		return "int"
	case TypeDuration:
		return "duration"
	case TypeSize:
		return "size"
	case TypeFileMode:
		return "octal mode"
	case TypeStringList:
		return "list of strings"
	case TypeStringMap:
		return "map of strings"
	case TypeEnum:
		return "enum"
	case TypeRoutes:
		return "list of routes"
	case TypeAny:
		return "any"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Support says what asyncd does with a setting.
type Support int

// Support levels.
const (
	// Supported settings are implemented.
	Supported Support = iota
	// Ignored Gunicorn settings are accepted with a warning: no effect.
	Ignored
	// RejectedIfSet Gunicorn settings are accepted with a warning when off
	// (False, None, empty: Gunicorn's default), and refused when turned on,
	// because asyncd would silently not do what was asked.
	RejectedIfSet
	// Rejected Gunicorn settings are always refused.
	Rejected
	// Action marks command-line actions (--help, --check-config...), which
	// are not settings and cannot be set in a file or the environment.
	Action
)

// String names the support level for the docs.
func (s Support) String() string {
	switch s {
	case Supported:
		return "supported"
	case Ignored:
		return "ignored with a warning"
	case RejectedIfSet:
		return "refused unless off"
	case Rejected:
		return "refused"
	case Action:
		return "command-line action"
	}
	return fmt.Sprintf("Support(%d)", int(s))
}

// Group is a --help section, as Gunicorn groups its settings.
type Group string

// Groups, in --help order.
const (
	GroupConfigFile      Group = "Config File"
	GroupServerSocket    Group = "Server Socket"
	GroupWorkerProcesses Group = "Worker Processes"
	GroupSecurity        Group = "Security"
	GroupDebugging       Group = "Debugging"
	GroupServerMechanics Group = "Server Mechanics"
	GroupLogging         Group = "Logging"
	GroupProcessNaming   Group = "Process Naming"
	GroupSSL             Group = "SSL"
	GroupServerHooks     Group = "Server Hooks"
)

// Groups lists the groups in --help and docs order.
var Groups = []Group{
	GroupConfigFile, GroupServerSocket, GroupWorkerProcesses, GroupSecurity,
	GroupDebugging, GroupServerMechanics, GroupLogging, GroupProcessNaming,
	GroupSSL, GroupServerHooks,
}

// Setting describes one setting. The table of them (Describe) is the single
// source of defaults, flags, environment variables, validation, --help and
// docs/configuration.md.
type Setting struct {
	Key         string   // YAML/.py key: Gunicorn's name where Gunicorn has it
	Field       string   // Config field; "" for actions and unimplemented Gunicorn settings
	Type        Type     // value syntax
	Choices     []string // TypeEnum: the accepted values
	Aliases     []string // TypeEnum: other accepted names (Gunicorn's), for docs
	Default     any      // typed like the Config field
	Flag        string   // long flag without "--"; "" if none
	FlagAliases []string // more long flags for the same setting
	Short       string   // one-letter flag; "" if none
	Env         string   // environment variable; "" if none
	Group       Group    // --help section
	Meta        string   // flag argument name in --help
	Help        string   // one sentence for --help
	Doc         string   // more detail for docs/configuration.md
	Gunicorn    string   // how it relates to Gunicorn's setting of that name
	Support     Support  // what asyncd does with it
	Reason      string   // Ignored/Rejected*: why, and what to do instead
	NoFile      bool     // cannot be set in a config file (config itself)
	Repeatable  bool     // the flag may be given several times
	SplitCommas bool     // a single string is a comma-separated list

	check  func(v any) error // range/format validation of the field value
	pyHint string            // .py reader: what to write instead of an expression
}

// DefaultText renders the default for --help and docs.
func (s Setting) DefaultText() string {
	if s.Support != Supported {
		return ""
	}
	return formatValue(s.Type, s.Default)
}

// FlagText renders the flags as --help shows them: "-b ADDRESS, --bind ADDRESS".
func (s Setting) FlagText() string {
	arg := ""
	if s.Meta != "" {
		arg = " " + s.Meta
	}
	var parts []string
	if s.Short != "" {
		parts = append(parts, "-"+s.Short+arg)
	}
	if s.Flag != "" {
		parts = append(parts, "--"+s.Flag+arg)
	}
	for _, a := range s.FlagAliases {
		parts = append(parts, "--"+a+arg)
	}
	return strings.Join(parts, ", ")
}

// Describe returns the settings table: every setting asyncd implements, the
// command-line actions, and the Gunicorn settings it does not implement.
func Describe() []Setting {
	out := make([]Setting, len(settings))
	copy(out, settings)
	return out
}

// lookup finds a setting by key.
func lookup(key string) *Setting {
	i, ok := settingIndex[key]
	if !ok {
		return nil
	}
	return &settings[i]
}

var settingIndex = func() map[string]int {
	m := make(map[string]int, len(settings))
	for i, s := range settings {
		m[s.Key] = i
	}
	return m
}()

// keyNames lists all keys, for suggestions.
var keyNames = func() []string {
	out := make([]string, 0, len(settings))
	for _, s := range settings {
		out = append(out, s.Key)
	}
	sort.Strings(out)
	return out
}()

// env derives the environment variable name of a key.
func env(key string) string { return "ASYNCD_" + strings.ToUpper(key) }
