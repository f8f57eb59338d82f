package config

import (
	"errors"
	"fmt"
	"strings"
)

// checkStatsdHost accepts Gunicorn's statsd_host forms: HOST:PORT (UDP)
// or unix://PATH (a datagram unix socket); empty means no StatsD.
func checkStatsdHost(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	a, err := parseAddr(s, "a StatsD address is HOST:PORT or unix://PATH")
	if err == nil && a.Network == "tcp" && (a.Port == 0 || a.Host == "") {
		err = fmt.Errorf("%q: a StatsD address needs a host and a port other than 0, e.g. localhost:8125", s)
	}
	return err
}

// parseAddr parses an address other than bind's as ParseBind does, but
// refuses fd:// (only bind inherits sockets); forms says what is accepted.
func parseAddr(s, forms string) (BindAddr, error) {
	a, err := ParseBind(s)
	if err == nil && a.Network == "fd" {
		err = fmt.Errorf("%q: %s", s, forms)
	}
	return a, err
}

// checkStatsdPrefix refuses characters that would break a StatsD line.
func checkStatsdPrefix(v any) error {
	if i := strings.IndexAny(v.(string), ":|@#\n\r\t "); i >= 0 {
		return fmt.Errorf("%q: a StatsD prefix cannot contain %q", v, v.(string)[i])
	}
	return nil
}

// checkStatsdTags checks DogStatsD tags: a comma-separated list of
// key:value (or bare key) items without the characters of the line format.
func checkStatsdTags(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			return errors.New("empty tag in the comma-separated list")
		}
		if i := strings.IndexAny(t, "|@#\n\r\t "); i >= 0 {
			return fmt.Errorf("tag %q cannot contain %q", t, t[i])
		}
	}
	return nil
}

// checkMetricsBind accepts HOST:PORT or unix:PATH for the metrics
// listener; empty means none.
func checkMetricsBind(v any) error {
	if s := v.(string); s != "" {
		_, err := parseAddr(s, "metrics_bind is HOST:PORT or unix:PATH")
		return err
	}
	return nil
}
