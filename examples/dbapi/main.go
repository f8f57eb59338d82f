// Command asyncd-dbapi is asyncd with a database-backed net/http API
// compiled in: the package users (an http.ServeMux over pgxpool) is the
// plugin "users", mounted by asyncd.yaml's routes. The connection string
// comes from DATABASE_URL (see README.md). standalone/ serves the same
// handler with http.ListenAndServe, for comparison.
package main

import (
	"log/slog"
	"os"

	"github.com/asyncd/asyncd/cli"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/standard"

	"example.com/mycompany/dbapi/profiling"
	"example.com/mycompany/dbapi/users"
)

func init() {
	// RegisterHTTP takes no options yet, so the DSN cannot live in the
	// route's options; the store reads DATABASE_URL on the first request,
	// in the serving process only.
	plugins.RegisterHTTP("users", users.NewMux(users.NewStore(), slog.Default()))
	// Mounted only by a config that names it (bench.sh's profiling
	// config), never by asyncd.yaml.
	plugins.RegisterHTTP("profiling", profiling.Handler())
}

func main() { os.Exit(cli.Main(os.Args[1:])) }
