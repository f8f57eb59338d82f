package cli

import (
	"runtime/debug"
)

// Version is asyncd's version when it is set at build time, as `make build`
// does from `git describe --always --dirty`:
// -ldflags "-X github.com/asyncd/asyncd/cli.Version=v1.2.3". Empty, the
// version is the one the Go toolchain stamped into the binary (see
// version).
var Version = ""

// modulePath is asyncd's module, which a team's own binary (examples/)
// has as a dependency rather than as its main module.
const modulePath = "github.com/asyncd/asyncd"

// version is what --version and the "asyncd starting" line print: Version
// if set, else asyncd's module version from the build information (the
// tag for `go install github.com/asyncd/asyncd/cmd/asyncd@v1.2.3`, a
// pseudo-version with +dirty for `go build` in a checkout), else the VCS
// revision (devel-0123456789ab+dirty), else "(devel)".
func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return versionFrom(bi)
}

func versionFrom(bi *debug.BuildInfo) string {
	mod := &bi.Main
	if mod.Path != modulePath {
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				mod = d
				break
			}
		}
	}
	if r := mod.Replace; r != nil && r.Version != "" {
		mod = r
	}
	if v := mod.Version; v != "" && v != "(devel)" {
		return v
	}
	if mod != &bi.Main {
		return "(devel)" // a local replacement: no revision of its own
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "(devel)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return "devel-" + rev
}
