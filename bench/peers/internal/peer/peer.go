// Package peer is the contract every benchmark peer serves: the routes,
// bodies and content types asyncd answers in bench/asyncd-bench.yaml, and
// how a peer binary learns its listen address.
//
// It owns only these constants and the address lookup; it must not import
// any framework, so every peer (and the probe that checks them) agrees on
// the same bytes without pulling another peer's dependencies.
package peer

import (
	"flag"
	"os"
	"time"
)

// Route paths and answers, byte for byte what asyncd is configured to send.
const (
	PathPlaintext = "/plaintext"
	PathJSON      = "/json"
	PathPost      = "/post"
	PathDelay     = "/delay"

	PlaintextBody = "Hello, World!"
	JSONBody      = `{"message":"Hello, World!"}`
	OKBody        = "ok"

	TypePlain = "text/plain"
	TypeJSON  = "application/json"

	// PostBodySize is the size of the body the post scenario sends.
	PostBodySize = 4096
	// Delay is how long GET /delay sleeps before answering.
	Delay = 100 * time.Millisecond
)

// Message is the JSON document of GET /json; peers marshal it per request
// where their framework does that naturally, as TechEmpower does.
type Message struct {
	Message string `json:"message"`
}

// EnvAddr names the environment variable that sets the listen address when
// the -addr flag is not given.
const EnvAddr = "BENCH_ADDR"

// DefaultAddr is the listen address used when neither -addr nor BENCH_ADDR
// is set.
const DefaultAddr = "127.0.0.1:8080"

// AddrFlag registers -addr on fs, defaulting to $BENCH_ADDR or DefaultAddr,
// and returns the pointer flag.Parse fills.
func AddrFlag(fs *flag.FlagSet) *string {
	def := os.Getenv(EnvAddr)
	if def == "" {
		def = DefaultAddr
	}
	return fs.String("addr", def, "listen address host:port (env "+EnvAddr+")")
}
