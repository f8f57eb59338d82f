// Command asyncd-custom is asyncd with this team's own handler plugins
// compiled in: the built-in plugins (one blank import), the team's native
// plugin "greet", and a net/http mux registered as "api". It is built with
// one ordinary `go build` and driven by the same `asyncd -c` config.
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/asyncd/asyncd/cli"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/standard"

	_ "example.com/mycompany/asyncd-custom/greet"
)

func init() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q}`, r.PathValue("id"))
	})
	plugins.RegisterHTTP("api", mux)
}

func main() { os.Exit(cli.Main(os.Args[1:])) }
