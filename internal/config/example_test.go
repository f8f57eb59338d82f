package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/asyncd/asyncd/internal/config"
)

// ExampleLoad shows how cmd/asyncd drives the package: one flag set, Load,
// then act on help/version, errors, warnings and the actions.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "asyncd-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "asyncd.yaml")
	os.WriteFile(path, []byte("bind: [':8080']\nworkers: 1\npreload_app: true\nroutes: [{path: /, handler: static}]\n"), 0o600)

	fs := config.NewFlagSet("asyncd")
	cfg, warnings, err := config.Load(fs, []string{"-c", path, "--keep-alive", "75s", "--print-config"},
		[]string{"ASYNCD_TIMEOUT=45", "HOME=/root"})
	switch {
	case errors.Is(err, config.ErrHelp):
		fmt.Print(config.Help("asyncd")) // exit 0
		return
	case err != nil:
		fmt.Println(err) // exit 1
		return
	}
	for _, w := range warnings {
		fmt.Println("warning:", strings.TrimPrefix(w, dir+string(filepath.Separator)))
	}
	fmt.Println(cfg.Bind, cfg.Loops(), cfg.Keepalive, cfg.Timeout, cfg.Source.Of("timeout"), cfg.Actions.PrintConfig)

	_, _, err = config.Load(config.NewFlagSet("asyncd"), []string{"-w", "-3"}, nil)
	fmt.Println(err)
	// Output:
	// warning: asyncd.yaml:3: preload_app has no effect in asyncd: handlers are compiled into the binary; there is no application to load before forking
	// [:8080] 1 1m15s 45s ASYNCD_TIMEOUT true
	// --workers: workers: must be >= 0, got -3
}
