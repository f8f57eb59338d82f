package config

import (
	"regexp"
	"sort"
	"strings"
)

// Masked replaces a secret in --print-config's output. The output is meant
// to be pasted into tickets and chat, so what looks like a secret is
// masked, and a file printed with masks no longer loads to the same
// config (its header says so).
const Masked = "xxxxx"

var (
	// urlPassword is the password of a URL's user info:
	// postgres://user:pass@host (the password may hold anything but @ and /).
	urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@`)
	// kvPassword is a password in a libpq key=value DSN ("host=db
	// password='a b'") or a URL query (?password=x&sslpassword=y). A
	// quoted value takes what sticks to its closing quote ('a'b), and one
	// never closed runs to the end: what libpq would refuse is masked
	// whole, never in part.
	kvPassword = regexp.MustCompile(`(?i)(^|[\s?&;])((?:ssl)?password|passwd|pwd|token|secret|api_?key|access_?key)\s*=\s*('(?:[^'\\]|\\(?s:.?))*(?:'[^\s&;]*|$)|[^\s&;]*)`)
)

// secretNames are the parts of a key (an option's, an environment
// variable's) that mark its value as a secret.
var secretNames = []string{"PASSWORD", "PASSWD", "TOKEN", "SECRET", "APIKEY", "API_KEY", "PRIVATE_KEY", "ACCESS_KEY", "CREDENTIAL"}

// IsSecretKey reports whether a value under key is a secret by its name:
// DB_PASSWORD, github_token, client_secret, api_key, PRIVATE_KEY...
func IsSecretKey(key string) bool {
	k := strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
	for _, s := range secretNames {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// MaskString masks the passwords inside s: a URL's user-info password
// (user:xxxxx@) and password=... pairs of a libpq DSN or a URL query.
func MaskString(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}:"+Masked+"@")
	return kvPassword.ReplaceAllString(s, "${1}${2}="+Masked)
}

// maskValue masks v, a value decoded from YAML (strings, lists, maps),
// under key: every value of a secret key whole, strings inside others.
func maskValue(key string, v any) any {
	if key != "" && IsSecretKey(key) {
		if _, isMap := v.(map[string]any); !isMap {
			return Masked
		}
	}
	switch x := v.(type) {
	case string:
		return MaskString(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskValue("", e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = MaskString(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out[k] = maskValue(k, x[k])
		}
		return out
	}
	return v
}

// maskEnv masks raw_env's NAME=VALUE entries: the whole value of a secret
// name (DB_PASSWORD=...), the passwords inside any other value
// (DATABASE_URL=postgres://u:xxxxx@db).
func maskEnv(env []string) []string {
	out := make([]string, len(env))
	for i, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			out[i] = kv
		case IsSecretKey(name):
			out[i] = name + "=" + Masked
		default:
			out[i] = name + "=" + MaskString(val)
		}
	}
	return out
}

// maskSetting masks the secrets in setting s's value v.
func maskSetting(s *Setting, v any) any {
	switch x := v.(type) {
	case string:
		if IsSecretKey(s.Key) && x != "" {
			return Masked
		}
		return MaskString(x)
	case []string:
		if s.Key == "raw_env" {
			return maskEnv(x)
		}
		return maskValue(s.Key, x)
	case []Route:
		out := make([]Route, len(x))
		for i, r := range x {
			out[i] = r
			if r.Options != nil {
				out[i].Options = maskValue("", r.Options).(map[string]any)
			}
		}
		return out
	}
	return v
}
