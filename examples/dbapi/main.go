// Command asyncd-dbapi is asyncd with a database-backed net/http API
// compiled in: the package users (an http.ServeMux over pgxpool) is the
// plugin "users", mounted by asyncd.yaml's routes with the connection
// string in the route's options (see README.md). standalone/ serves the
// same handler with http.ListenAndServe, for comparison.
package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"

	"github.com/asyncd/asyncd/cli"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/standard"

	"example.com/mycompany/dbapi/profiling"
	"example.com/mycompany/dbapi/users"
)

// options are the users plugin's route options.
type options struct {
	// DSN is the pgx connection string (URL or key=value; pool_max_conns
	// and the other pool_* parameters size the pool). Without it, the
	// plugin reads DATABASE_URL from the environment.
	DSN string `option:"dsn"`
}

// usersPlugin is the API with its database's lifecycle, as asyncd drives
// it in each serving process (plugins.Provisioner, ReadyChecker,
// CleanerUpper): the pool opens and is pinged before the process reports
// ready, the health route's readiness follows the database, and the pool
// closes once the last request of a draining process has finished.
type usersPlugin struct {
	http.Handler
	store *users.Store
	ctx   *plugins.Context
}

// Provision opens the pool and pings the database: a new generation takes
// traffic with a connection ready, and one that cannot reach the database
// does not start (on a reload, the running generation keeps serving).
func (p *usersPlugin) Provision(ctx context.Context) error {
	if err := p.store.Open(ctx); err != nil {
		return err
	}
	p.ctx.Logger.Info("users: database pool open", "generation", p.ctx.Process.Generation())
	return nil
}

// CheckReady pings the database; the health route answers 503 while it
// fails.
func (p *usersPlugin) CheckReady(ctx context.Context) error { return p.store.Ping(ctx) }

// Cleanup closes the pool.
func (p *usersPlugin) Cleanup() error {
	p.store.Close()
	p.ctx.Logger.Info("users: database pool closed")
	return nil
}

var (
	mu sync.Mutex
	// stores shares one pool among the routes that name the same
	// database, as a config that routes /users and /users/ apart does.
	stores = map[string]*users.Store{}
)

func newUsers(ctx *plugins.Context, o options) (http.Handler, error) {
	source := "options.dsn"
	if o.DSN == "" {
		o.DSN, source = os.Getenv(users.DSNVariable), users.DSNVariable
	}
	if o.DSN == "" {
		return nil, errors.New("options.dsn: required: a PostgreSQL connection string (or " +
			users.DSNVariable + " in the environment)")
	}
	// Checked here, so that --check-config finds a malformed DSN; nothing
	// connects until Provision, in the serving process.
	if err := users.CheckDSN(o.DSN, source); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	store, ok := stores[o.DSN]
	if !ok {
		store = users.NewStoreDSN(o.DSN, source)
		stores[o.DSN] = store
	}
	return &usersPlugin{Handler: users.NewMux(store, ctx.Logger), store: store, ctx: ctx}, nil
}

func init() {
	plugins.RegisterHTTPFactory("users", newUsers)
	// Mounted only by a config that names it (bench.sh's profiling
	// config), never by asyncd.yaml.
	plugins.RegisterHTTP("profiling", profiling.Handler())
}

func main() { os.Exit(cli.Main(os.Args[1:])) }
