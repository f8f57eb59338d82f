// Package standard imports every built-in handler plugin, so that a binary
// (asyncd's own, or a team's custom build) gets them all with one blank
// import. It owns nothing else.
package standard

import (
	_ "github.com/asyncd/asyncd/plugins/echo"    // "echo"
	_ "github.com/asyncd/asyncd/plugins/files"   // "files"
	_ "github.com/asyncd/asyncd/plugins/health"  // "health"
	_ "github.com/asyncd/asyncd/plugins/metrics" // "metrics"
	_ "github.com/asyncd/asyncd/plugins/proxy"   // "proxy"
	_ "github.com/asyncd/asyncd/plugins/static"  // "static"
)
