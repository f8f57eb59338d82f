package config

import (
	"strings"
)

// What asyncd knows about Gunicorn's names beyond its settings table:
// the defaults of the settings it does not implement (a value equal to
// Gunicorn's default changes nothing, so it earns no warning), old and
// flag-derived names people write as keys, and names Gunicorn itself
// ignores.

// anyOf lists several values that all mean Gunicorn's default.
type anyOf []any

// gunicornDefaults holds Gunicorn's default for each setting asyncd does
// not implement; a key not listed defaults to None (any Python false
// value then means the default).
var gunicornDefaults = map[string]any{
	"preload_app":                        false,
	"sendfile":                           anyOf{nil, true}, // None: use sendfile; False turns it off
	"daemon":                             false,
	"initgroups":                         false,
	"strip_header_spaces":                false,
	"permit_obsolete_folding":            false,
	"permit_unconventional_http_method":  false,
	"permit_unconventional_http_version": false,
	"casefold_http_method":               false,
	"header_map":                         "drop",
	"forwarder_headers":                  "SCRIPT_NAME,PATH_INFO",
	"disable_redirect_access_to_syslog":  false,
	"capture_output":                     false,
	"logger_class":                       anyOf{"gunicorn.glogging.Logger", "simple"},
	"syslog_addr":                        "udp://localhost:514",
	"syslog":                             false,
	"syslog_facility":                    "user",
	"enable_stdio_inheritance":           false,
	"default_proc_name":                  "gunicorn",
	// ssl.PROTOCOL_TLS (2) before Gunicorn 21, ssl.PROTOCOL_TLS_SERVER (17) since.
	"ssl_version":             anyOf{2, 17, "TLS", "TLS_SERVER", "SSLv23"},
	"cert_reqs":               anyOf{0, "CERT_NONE"},
	"suppress_ragged_eofs":    true,
	"do_handshake_on_connect": false,
	"reload":                  false,
	"reload_engine":           "auto",
	"spew":                    false,
}

// isGunicornDefault reports whether v, as written for the unimplemented
// setting key, is Gunicorn's default: setting it changes nothing in
// Gunicorn either.
func isGunicornDefault(key string, v any) bool {
	if l, ok := v.([]string); ok { // a flag: its last occurrence
		if len(l) == 0 {
			return false
		}
		v = l[len(l)-1]
	}
	d, ok := gunicornDefaults[key]
	if !ok {
		return !truthy(v)
	}
	return matchesDefault(v, d)
}

func matchesDefault(v, d any) bool {
	switch d := d.(type) {
	case anyOf:
		for _, alt := range d {
			if matchesDefault(v, alt) {
				return true
			}
		}
		return false
	case nil:
		return v == nil
	case bool:
		if v == nil {
			return !d
		}
		b, err := decodeBool(v)
		return err == nil && b == d
	case int:
		n, err := decodeInt(v)
		return err == nil && n == int64(d)
	case string:
		return normalizeWord(v) == normalizeWord(d)
	}
	return false
}

// normalizeWord renders a string or a list of strings for comparison:
// lower case, without blanks, list items joined with commas.
func normalizeWord(v any) string {
	switch x := v.(type) {
	case string:
		return strings.ToLower(strings.Join(strings.Fields(x), ""))
	case []any:
		parts := make([]string, len(x))
		for i, item := range x {
			s, ok := item.(string)
			if !ok {
				return "\x00" // matches no default
			}
			parts[i] = normalizeWord(s)
		}
		return strings.Join(parts, ",")
	}
	return "\x00"
}

// oldName points a key that is no setting to the setting meant.
type oldName struct {
	key string // the setting
	why string // where the name comes from
}

// oldNames are keys Gunicorn configs carry that are not Gunicorn settings
// (Gunicorn ignores them in a config file): old names and flag spellings.
var oldNames = map[string]oldName{
	"logfile":          {"errorlog", "logfile is Gunicorn's old name, which Gunicorn ignores in a config file too"},
	"log_file":         {"errorlog", "log_file is Gunicorn's --log-file flag; in a config file Gunicorn ignores it too"},
	"error_logfile":    {"errorlog", "error_logfile is Gunicorn's --error-logfile flag, not the setting's name"},
	"access_logfile":   {"accesslog", "access_logfile is Gunicorn's --access-logfile flag, not the setting's name"},
	"access_logformat": {"access_log_format", "access_logformat is Gunicorn's --access-logformat flag, not the setting's name"},
	"log_level":        {"loglevel", "log_level is Gunicorn's --log-level flag, not the setting's name"},
	"keep_alive":       {"keepalive", "keep_alive is Gunicorn's --keep-alive flag, not the setting's name"},
	"preload":          {"preload_app", "preload is Gunicorn's --preload flag, not the setting's name"},
	"pid":              {"pidfile", "pid is Gunicorn's --pid flag, not the setting's name"},
}

// ignoredByGunicorn are keys found in real Gunicorn configs that Gunicorn
// ignores as well: a config file keeps loading, with a warning.
var ignoredByGunicorn = map[string]string{
	"debug":   "its debug setting was removed in Gunicorn 19",
	"command": "it was never a Gunicorn setting; it comes from supervisord-style examples",
}

// workerNotes add to the worker_class warning what a Gunicorn class did
// beyond running requests concurrently.
var workerNotes = map[string]string{
	"geventwebsocket.gunicorn.workers.geventwebsocketworker": "WebSocket handlers take over the connection " +
		"with http.Hijacker (a net/http handler registered with plugins.RegisterHTTP, using a Go WebSocket " +
		"library), which works on routes that run off the event loop, as every async route does",
}

// hookReason is a server hook's Reason: why it is refused and what
// replaces it (docs/gunicorn.md, "Server hooks", has the same table).
func hookReason(replacement string) string {
	return "a server hook is a Python function, and " + reasonNoPython + ": " + replacement
}
