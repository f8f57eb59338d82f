// Command asyncd is the asyncd HTTP server: `asyncd -c asyncd.yaml`.
// It is cli.Main with the built-in handler plugins; a team that adds its own
// plugins builds the same thing with one more import (see examples/).
package main

import (
	"os"

	"github.com/asyncd/asyncd/cli"
	_ "github.com/asyncd/asyncd/plugins/standard"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
