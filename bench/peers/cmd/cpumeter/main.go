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
//
// -rss adds "rss_peak": the largest VmRSS summed over the server's tree
// (internal/procmem) of the samples taken every 250 ms while the command
// runs, and one at its end. -also PID adds "also_cpu_us": the CPU time of
// a second process tree over the same span, measured the same way but
// never added to the server's (the api scenario's PostgreSQL).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/asyncd/asyncd/bench/peers/internal/proccpu"
	"github.com/asyncd/asyncd/bench/peers/internal/procmem"
)

// Result is the machine-readable line.
type Result struct {
	Ticks  uint64  `json:"ticks"`   // tree CPU ticks used while the command ran
	ClkTck int64   `json:"clk_tck"` // ticks per second
	CPUUS  float64 `json:"cpu_us"`  // the same in microseconds
	Procs  int     `json:"procs"`   // processes in the tree at the end
	// RSSPeak is the largest tree VmRSS sampled (-rss), in bytes.
	RSSPeak int64 `json:"rss_peak,omitempty"`
	// AlsoCPUUS is the CPU time of the -also tree, in microseconds.
	AlsoCPUUS float64 `json:"also_cpu_us,omitempty"`
}

// options are the measurements beyond the server's CPU time.
type options struct {
	rss      bool          // sample the tree's RSS
	interval time.Duration // between RSS samples
	also     int           // a second tree whose CPU time is reported apart; 0: none
}

func main() {
	pid := flag.Int("pid", 0, "server PID (its process tree is measured)")
	rss := flag.Bool("rss", false, "also report the tree's peak VmRSS, sampled every 250 ms")
	also := flag.Int("also", 0, "also report the CPU time of this PID's tree, apart (e.g. the database)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cpumeter -pid PID -- command [args...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *pid <= 0 || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	code, err := run(*pid, flag.Args(), os.Stdout, options{rss: *rss, interval: 250 * time.Millisecond, also: *also})
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
func run(pid int, args []string, out io.Writer, o options) (int, error) {
	hz := proccpu.ClockTicks()
	before, err := proccpu.TreeSample(pid)
	if err != nil {
		return 1, fmt.Errorf("before %s: %w", args[0], err)
	}
	var alsoBefore proccpu.Sample
	if o.also > 0 {
		if alsoBefore, err = proccpu.TreeSample(o.also); err != nil {
			return 1, fmt.Errorf("-also before %s: %w", args[0], err)
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	code := 0
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("run %s: %w", args[0], err)
	}
	var peak int64
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var ticker <-chan time.Time
	if o.rss {
		t := time.NewTicker(o.interval)
		defer t.Stop()
		ticker = t.C
	}
	var waitErr error
wait:
	for {
		select {
		case waitErr = <-done:
			break wait
		case <-ticker:
			peak = max(peak, treeRSS(pid))
		}
	}
	if o.rss {
		peak = max(peak, treeRSS(pid))
	}
	if waitErr != nil {
		var exit *exec.ExitError
		if !errors.As(waitErr, &exit) {
			return 1, fmt.Errorf("run %s: %w", args[0], waitErr)
		}
		code = exit.ExitCode()
	}
	after, err := proccpu.TreeSample(pid)
	if err != nil {
		return code, fmt.Errorf("after %s: %w", args[0], err)
	}
	res := Result{Ticks: delta(before.Ticks, after.Ticks), ClkTck: hz, Procs: after.Procs, RSSPeak: peak}
	res.CPUUS = proccpu.Micros(res.Ticks, hz)
	if o.also > 0 {
		alsoAfter, err := proccpu.TreeSample(o.also)
		if err != nil {
			return code, fmt.Errorf("-also after %s: %w", args[0], err)
		}
		res.AlsoCPUUS = proccpu.Micros(delta(alsoBefore.Ticks, alsoAfter.Ticks), hz)
	}
	line, err := json.Marshal(res)
	if err != nil {
		return code, fmt.Errorf("encode: %w", err)
	}
	if _, err := fmt.Fprintf(out, "CPUMETER %s\n", line); err != nil {
		return code, fmt.Errorf("write result: %w", err)
	}
	return code, nil
}

func delta(before, after uint64) uint64 {
	if after > before {
		return after - before
	}
	return 0
}

// treeRSS is the tree's VmRSS, 0 when it cannot be read (the server
// exited: the CPU reading after the command reports that).
func treeRSS(pid int) int64 {
	n, err := procmem.TreeRSS(pid)
	if err != nil {
		return 0
	}
	return n
}
