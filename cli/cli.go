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
	"log/slog"
	"os"
	"runtime"

	"github.com/asyncd/asyncd/config"
	"github.com/asyncd/asyncd/supervisor"
	"github.com/asyncd/asyncd/worker"
)

// Version is asyncd's version, set at build time with
// -ldflags "-X github.com/asyncd/asyncd/cli.Version=...".
var Version = "0.1.0-dev"

// Main runs the asyncd command with args (without the program name) and
// returns the process exit status.
func Main(args []string) int {
	return run(args, os.Environ(), os.Stdout, os.Stderr)
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	fs := config.NewFlagSet("asyncd")
	fs.SetOutput(io.Discard)
	cfg, warnings, err := config.Load(fs, args, environ)
	switch {
	case errors.Is(err, config.ErrHelp):
		fmt.Fprint(stdout, config.Help("asyncd"))
		return 0
	case errors.Is(err, config.ErrVersion):
		printVersion(stdout)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "asyncd: %v\n", err)
		return 1
	}
	if os.Getenv(supervisor.EnvServe) != "1" {
		// Once, naming the operator's file: a serving process reads the
		// same settings from the supervisor's pipe (/dev/fd/N).
		for _, w := range warnings {
			fmt.Fprintf(stderr, "asyncd: warning: %s\n", w)
		}
	}
	if err := validate(cfg); err != nil {
		fmt.Fprintf(stderr, "asyncd: %v\n", err)
		return 1
	}
	if cfg.Actions.CheckConfig {
		fmt.Fprintf(stdout, "asyncd: config OK (%s)\n", orDefault(cfg.ConfigFile))
		return 0
	}
	if cfg.Actions.PrintConfig {
		y, err := cfg.YAML()
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
	if os.Getenv(supervisor.EnvServe) == "1" {
		if err := serve(cfg, logs); err != nil {
			logs.Logger.Error("serving process stopped", "error", err.Error())
			return 1
		}
		return 0
	}
	err = supervisor.Run(cfg, supervisor.Options{
		Args:   args,
		Logger: logs.Logger,
		Load: func() (*config.Config, []string, error) {
			fs := config.NewFlagSet("asyncd")
			fs.SetOutput(io.Discard)
			c, w, err := config.Load(fs, args, os.Environ())
			if err == nil {
				err = validate(c)
			}
			return c, w, err
		},
		ReopenLogs: logs.Reopen,
		Stdout:     stdout,
		Stderr:     stderr,
	})
	if err != nil {
		logs.Logger.Error("asyncd stopped", "error", err.Error())
		return 1
	}
	return 0
}

// validate checks what the config package cannot: the worker class,
// every route's plugin and options, and access_log_format.
func validate(cfg *config.Config) error {
	if _, err := worker.ClassOf(string(cfg.WorkerClass), cfg.Threads); err != nil {
		return fmt.Errorf("%s: %w", cfg.Source.Of("worker_class"), err)
	}
	if _, err := worker.BuildRoutes(cfg); err != nil {
		return fmt.Errorf("%s: %w", orDefault(cfg.Source.Of("routes")), err)
	}
	return validateAccessLog(cfg)
}

func orDefault(s string) string {
	if s == "" {
		return "defaults"
	}
	return s
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "asyncd %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, name := range []string{"epoll", "io_uring"} {
		if err := worker.Backends[name].Probe(); err != nil {
			fmt.Fprintf(w, "backend %s: unavailable here: %v\n", name, err)
		} else {
			fmt.Fprintf(w, "backend %s: available\n", name)
		}
	}
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
		f, err := openReopenFile(cfg.ErrorLog)
		if err != nil {
			return nil, fmt.Errorf("errorlog: %w", err)
		}
		el.file = f
		w = f
	}
	opts := &slog.HandlerOptions{Level: cfg.LogLevel.Slog()}
	if cfg.ErrorLogFormat == "json" {
		el.Logger = slog.New(slog.NewJSONHandler(w, opts))
	} else {
		el.Logger = slog.New(slog.NewTextHandler(w, opts))
	}
	slog.SetDefault(el.Logger)
	return el, nil
}
