// Command probe is the runner's readiness and conformance check. With
// -scenarios it waits until the server at -addr answers, then checks every
// route those scenarios use answers exactly as asyncd does (status, body,
// Content-Type, keep-alive, Content-Length framing; for pipeline, 16
// pipelined requests answered in order; for churn, Connection: close
// honoured) and exits non-zero with the mismatch otherwise. With -free it waits until the port can be bound
// again after a server stopped. It only talks to -addr.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/asyncd/asyncd/bench/peers/internal/probe"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address")
	scenarios := flag.String("scenarios", "", "comma-separated scenarios whose routes to check")
	wait := flag.Duration("wait", 20*time.Second, "how long to wait for the server (or the port)")
	free := flag.Bool("free", false, "wait until the port is free instead of checking a server")
	flag.Parse()
	if err := run(*addr, *scenarios, *wait, *free); err != nil {
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		os.Exit(1)
	}
}

func run(addr, scenarios string, wait time.Duration, free bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if free {
		return probe.WaitFree(ctx, addr)
	}
	var routes []probe.Route
	seen := map[string]bool{}
	pipelined, closing := false, false
	for _, sc := range strings.Split(scenarios, ",") {
		sc = strings.TrimSpace(sc)
		if sc == "" {
			continue
		}
		r, ok := probe.RouteFor(sc)
		if !ok {
			return fmt.Errorf("unknown scenario %q", sc)
		}
		pipelined = pipelined || sc == "pipeline"
		closing = closing || sc == "churn"
		if !seen[r.Name] {
			seen[r.Name] = true
			routes = append(routes, r)
		}
	}
	if len(routes) == 0 {
		return fmt.Errorf("no scenario given (-scenarios or -free)")
	}
	if err := probe.WaitReady(ctx, addr, routes[0]); err != nil {
		return err
	}
	check, cancelCheck := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelCheck()
	if err := probe.Check(check, addr, routes); err != nil {
		return err
	}
	names := make([]string, len(routes))
	for i, r := range routes {
		names[i] = r.Method + " " + r.Path
	}
	if pipelined {
		if err := probe.CheckPipelined(check, addr, probe.Routes["plaintext"], 16); err != nil {
			return err
		}
		names = append(names, "16 pipelined requests")
	}
	if closing {
		if err := probe.CheckClose(check, addr, probe.Routes["plaintext"]); err != nil {
			return err
		}
		names = append(names, "Connection: close")
	}
	fmt.Printf("probe: %s answers like asyncd on %s\n", addr, strings.Join(names, ", "))
	return nil
}
