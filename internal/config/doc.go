// Package config owns asyncd's configuration: the one table of settings
// (Describe), loading them from built-in defaults (Gunicorn's
// WEB_CONCURRENCY and PORT among them), a YAML file or a Gunicorn .py file
// (read by package gunicornpy, to which this package lends its settings),
// the flags in GUNICORN_CMD_ARGS, ASYNCD_<KEY> environment variables and
// command-line flags (in that order, later sources winning), validating
// them, and the --help text. Load reports every problem it can find in one
// pass, each saying what to do about it (Kind), for --check-config.
//
// Keys use Gunicorn's names wherever Gunicorn has the setting, so a Gunicorn
// configuration mostly carries over; Gunicorn settings asyncd cannot honour
// are accepted with a warning or refused with a message saying what to do
// instead, both decided in the table.
//
// This package must not touch sockets, processes, logging or handlers: Load
// returns a validated *Config and warnings, and the caller (cmd/asyncd)
// decides what to print and whether to exit. Routes are validated only
// structurally here; the plugin registry checks handler names and options.
package config
