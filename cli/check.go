package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/serving"
	"github.com/asyncd/asyncd/plugins"
)

// validate checks what the config package cannot: the worker class, every
// route's plugin and options, and access_log_format. It returns every
// problem, each naming where its value came from. cfg may be a Config that
// config.Check returned with errors (partial): then the worker class, which
// the config checked already, is skipped.
func validate(cfg *config.Config, partial bool) []*config.Error {
	var errs []*config.Error
	add := func(key string, err error) {
		if err != nil {
			errs = append(errs, &config.Error{Source: cfg.Source.Of(key), Key: key, Msg: err.Error(), Kind: config.KindValue})
		}
	}
	if !partial {
		_, err := serving.ClassOf(string(cfg.WorkerClass), cfg.Threads)
		add("worker_class", err)
	}
	routeErrs := len(errs)
	for i, r := range cfg.Routes {
		if strings.TrimSpace(r.Handler) == "" {
			continue // the config reports it
		}
		if err := engine.CheckRoutePath(r.Path); err != nil {
			add("routes", fmt.Errorf("routes[%d].%s: %w", i, r.PathKey(), err))
		}
		_, err := plugins.Build(plugins.Route{Index: i, Path: r.Path, Handler: r.Handler, Options: r.Options})
		add("routes", err)
	}
	if len(errs) == routeErrs && !partial {
		// Each route builds: now the router the serving process would
		// build, for what only the routes together can get wrong (an
		// inline handler on a blocking route, a path and method twice).
		_, err := serving.BuildRoutes(cfg)
		add("routes", err)
	}
	add("access_log_format", validateAccessLog(cfg))
	return errs
}

// writeReport prints the problems found: one alone as one line, several
// as a report grouped by what to do about them (config.Kind), each group
// in the order of the sources (the config file by line), then the
// warnings.
func writeReport(w io.Writer, file string, errs []*config.Error, warnings []string) {
	if len(errs) == 1 && len(warnings) == 0 {
		fmt.Fprintf(w, "asyncd: %s\n", errs[0])
		return
	}
	list := append(config.Errors(nil), errs...)
	list.Sort()
	fmt.Fprintf(w, "asyncd: %s: %s, %s\n", orDefault(file), count(len(errs), "error"), count(len(warnings), "warning"))
	for _, k := range config.Kinds {
		first := true
		for _, e := range list {
			if e.Kind != k && !(k == config.KindValue && e.Kind == 0) {
				continue
			}
			if first {
				fmt.Fprintf(w, "\n%s:\n", k.Title())
				first = false
			}
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if len(warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings (these load, but may not do what you meant):\n")
		for _, s := range warnings {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// withoutGunicornEnv drops Gunicorn's variables (config.GunicornEnv) from
// environ: a serving process reads its whole configuration from the
// supervisor, which applied them already.
func withoutGunicornEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, g := range config.GunicornEnv {
			drop = drop || name == g
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
