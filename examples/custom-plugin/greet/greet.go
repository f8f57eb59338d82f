// Package greet is an example of a team's own native handler plugin: it
// registers under the name "greet" and decodes its own options.
package greet

import (
	"fmt"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/plugins"
)

// Options are the route options of the greet plugin.
type Options struct {
	Greeting string `option:"greeting"`
}

func init() {
	plugins.Register("greet", func(r plugins.Route) (engine.Handler, error) {
		o := Options{Greeting: "Hello"}
		if err := plugins.Decode(r.Options, &o); err != nil {
			return nil, err
		}
		if o.Greeting == "" {
			return nil, fmt.Errorf("options.greeting: must not be empty")
		}
		prefix := []byte(o.Greeting + ", ")
		return engine.HandlerFunc(func(c *engine.Ctx) {
			name := c.Query()
			if len(name) == 0 {
				name = []byte("world")
			}
			c.SetContentType("text/plain")
			c.Write(prefix) //nolint:errcheck
			c.Write(name)   //nolint:errcheck
		}), nil
	})
}
