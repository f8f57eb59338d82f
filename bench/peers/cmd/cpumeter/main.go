// Command cpumeter measures the CPU time a server's process tree spends
// while another command runs: it reads the tree's user+system time from
// /proc (internal/proccpu), runs the command (the runner's wrk) with its
// output passed through, reads the time again and prints
//
//	CPUMETER {"ticks":…,"clk_tck":…,"cpu_us":…,"procs":…}
//
// to standard output after the command's own output, for the runner to
// divide by the requests wrk reports. It exits with the command's status.
// It only reads /proc; it signals nothing.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/asyncd/asyncd/bench/peers/internal/proccpu"
)

// Result is the machine-readable line.
type Result struct {
	Ticks  uint64  `json:"ticks"`   // tree CPU ticks used while the command ran
	ClkTck int64   `json:"clk_tck"` // ticks per second
	CPUUS  float64 `json:"cpu_us"`  // the same in microseconds
	Procs  int     `json:"procs"`   // processes in the tree at the end
}

func main() {
	pid := flag.Int("pid", 0, "server PID (its process tree is measured)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cpumeter -pid PID -- command [args...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *pid <= 0 || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	code, err := run(*pid, flag.Args(), os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cpumeter: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// run measures the tree of pid around args and writes the result line to
// out; it returns the command's exit status.
func run(pid int, args []string, out io.Writer) (int, error) {
	hz := proccpu.ClockTicks()
	before, err := proccpu.TreeSample(pid)
	if err != nil {
		return 1, fmt.Errorf("before %s: %w", args[0], err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return 1, fmt.Errorf("run %s: %w", args[0], err)
		}
		code = exit.ExitCode()
	}
	after, err := proccpu.TreeSample(pid)
	if err != nil {
		return code, fmt.Errorf("after %s: %w", args[0], err)
	}
	var d uint64
	if after.Ticks > before.Ticks {
		d = after.Ticks - before.Ticks
	}
	line, err := json.Marshal(Result{Ticks: d, ClkTck: hz, CPUUS: proccpu.Micros(d, hz), Procs: after.Procs})
	if err != nil {
		return code, fmt.Errorf("encode: %w", err)
	}
	if _, err := fmt.Fprintf(out, "CPUMETER %s\n", line); err != nil {
		return code, fmt.Errorf("write result: %w", err)
	}
	return code, nil
}
