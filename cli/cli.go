// Package cli is the asyncd command: flags and config loading, the
// --check-config, --print-config and --version actions, logging set-up, and
// starting the supervisor or, in a process the supervisor started, the
// serving process.
//
// It lives in a package rather than in cmd/asyncd so that a team can build
// its own asyncd binary with its own handler plugins: a main package that
// blank-imports the plugins and calls cli.Main (see examples/). It owns the
// command line; it must not implement serving, supervision or HTTP itself.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"runtime"

	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/loglimit"
	"github.com/asyncd/asyncd/internal/supervisor"
	"github.com/asyncd/asyncd/loop"
)

// Main runs the asyncd command with args (without the program name) and
// returns the process exit status.
func Main(args []string) int {
	return run(args, os.Environ(), os.Stdout, os.Stderr)
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	// A serving process gets its configuration from the supervisor, which
	// read Gunicorn's variables and printed the warnings already.
	serving := os.Getenv(supervisor.EnvServe) == "1"
	if serving {
		environ = withoutGunicornEnv(environ)
	}
	fs := config.NewFlagSet("asyncd")
	fs.SetOutput(io.Discard)
	cfg, warnings, err := config.Check(fs, args, environ)
	switch {
	case errors.Is(err, config.ErrHelp):
		fmt.Fprint(stdout, config.Help("asyncd"))
		return 0
	case errors.Is(err, config.ErrVersion):
		printVersion(stdout)
		return 0
	}
	errs := config.AllErrors(err)
	if err != nil && errs == nil {
		errs = []*config.Error{{Msg: err.Error()}}
	}
	file := ""
	if cfg != nil {
		file = cfg.ConfigFile
		errs = append(errs, validate(cfg, err != nil)...)
		if cfg.Actions.CheckConfig {
			hostErrs, hostWarns := checkHost(cfg)
			errs, warnings = append(errs, hostErrs...), append(warnings, hostWarns...)
		}
	}
	if len(errs) > 0 {
		writeReport(stderr, file, errs, warnings)
		return 1
	}
	if cfg.Actions.CheckConfig || cfg.Actions.PrintConfig {
		for _, w := range warnings {
			fmt.Fprintf(stderr, "asyncd: warning: %s\n", w)
		}
	}
	if cfg.Actions.CheckConfig {
		fmt.Fprintf(stdout, "asyncd: config OK (%s)\n", orDefault(cfg.ConfigFile))
		return 0
	}
	if cfg.Actions.PrintConfig {
		y, err := cfg.PrintYAML()
		if err != nil {
			fmt.Fprintf(stderr, "asyncd: print-config: %v\n", err)
			return 1
		}
		stdout.Write(y) //nolint:errcheck
		return 0
	}
	logs, err := openErrorLog(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "asyncd: %v\n", err)
		return 1
	}
	defer logs.Close()
	if serving {
		if err := serve(cfg, logs); err != nil {
			logs.Logger.Error("serving process stopped", "error", err.Error())
			return 1
		}
		return 0
	}
	// Once, in the error log's format; a reload logs its own the same way.
	for _, w := range warnings {
		logs.Logger.Warn("config: " + w)
	}
	err = supervisor.Run(cfg, supervisor.Options{
		Args:    args,
		Version: version(),
		Logger:  logs.Logger,
		Load: func() (*config.Config, []string, error) {
			fs := config.NewFlagSet("asyncd")
			fs.SetOutput(io.Discard)
			c, w, err := config.Load(fs, args, os.Environ())
			if err == nil {
				if errs := validate(c, false); len(errs) > 0 {
					err = config.Errors(errs)
				}
			}
			return c, w, err
		},
		ReopenLogs: logs.Reopen,
		Stdout:     stdout,
		Stderr:     stderr,
	})
	if err != nil {
		logs.fatal(stderr, "asyncd stopped", err)
		return 1
	}
	return 0
}

func orDefault(s string) string {
	if s == "" {
		return "defaults"
	}
	return s
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "asyncd %s (%s, %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, name := range loop.Names() {
		b, _ := loop.Lookup(name)
		if err := b.Probe(); err != nil {
			fmt.Fprintf(w, "backend %s: unavailable here: %v\n", name, err)
		} else {
			fmt.Fprintf(w, "backend %s: available\n", name)
		}
	}
}

// durationText writes durations as the config does ("30s", "1m30s"), not
// as JSON's default of nanoseconds.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// errorLog is the error log with its file, reopenable on SIGUSR1.
type errorLog struct {
	Logger *slog.Logger
	file   *reopenFile
}

func (l *errorLog) Reopen() {
	if l.file != nil {
		if err := l.file.Reopen(); err != nil {
			l.Logger.Error("reopen error log", "error", err.Error())
		}
	}
}

func (l *errorLog) Close() {
	if l.file != nil {
		l.file.Close()
	}
}

// openErrorLog builds the error log from errorlog, loglevel and
// error_log_format; "-" is stderr, unbuffered.
func openErrorLog(cfg *config.Config, stderr io.Writer) (*errorLog, error) {
	el := &errorLog{}
	w := stderr
	if cfg.ErrorLog != "" && cfg.ErrorLog != "-" {
		f, err := openReopenFile(cfg.ErrorLog, servingUser(cfg))
		if err != nil {
			return nil, fmt.Errorf("errorlog: %w", err)
		}
		el.file = f
		w = f
	}
	opts := &slog.HandlerOptions{Level: cfg.LogLevel.Slog()}
	if cfg.ErrorLogFormat == "json" {
		opts.ReplaceAttr = durationText
		el.Logger = slog.New(slog.NewJSONHandler(w, opts))
	} else {
		el.Logger = slog.New(slog.NewTextHandler(w, opts))
	}
	slog.SetDefault(el.Logger)
	// What reaches the log package is net/http's own lines (the proxy's
	// Transport: "Unsolicited response ..."), one per request from a
	// misbehaving upstream: WARN, a few per kind a minute.
	log.SetOutput(loglimit.NewLogLogger(el.Logger.Handler(), slog.LevelWarn).Writer())
	return el, nil
}
