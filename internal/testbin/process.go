package testbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Options says how to start a binary.
type Options struct {
	Args        []string   // the arguments after the program's name
	Dir         string     // the working directory; "" is the test's
	Env         []string   // added to Env's clean environment
	ExtraFiles  []*os.File // descriptors 3, 4, ... (socket activation)
	SysProcAttr *syscall.SysProcAttr
	// CombinedOutput sends stdout and stderr to one Output, interleaved
	// as written (as a terminal or journald shows them).
	CombinedOutput bool
	// LogFile is a file the process logs to (its errorlog): Log includes
	// it, and a failed test shows it.
	LogFile string
}

// Process is a binary started by Start. It is stopped when the test ends.
type Process struct {
	Cmd *exec.Cmd
	// Stdout and Stderr are what the process wrote so far: files, not
	// pipes, so that its exit is not waited on until every process that
	// inherited them (serving processes, an upgraded supervisor) exits,
	// and nothing it wrote before exiting can still be in transit.
	// With CombinedOutput they are the same Output.
	Stdout, Stderr *Output

	// Every field below is the test goroutine's, but err: Wait's result,
	// written by the waiting goroutine before it closes done.
	t       testing.TB
	name    string // the program's base name, for messages
	logFile string
	done    chan struct{}
	err     error
}

// Output is a file a process writes to, read while it runs.
type Output struct{ path string }

// String is what was written so far.
func (o *Output) String() string {
	b, _ := os.ReadFile(o.path)
	return string(b)
}

// Start starts bin with o and stops it when the test ends (Stop); if the
// test failed, the test log shows the process's output then. Output that
// reports a data race fails the test.
func Start(t testing.TB, bin string, o Options) *Process {
	t.Helper()
	dir := t.TempDir()
	p := &Process{t: t, name: filepath.Base(bin), logFile: o.LogFile, done: make(chan struct{}),
		Stdout: &Output{filepath.Join(dir, "stdout")}}
	p.Stderr = p.Stdout
	if !o.CombinedOutput {
		p.Stderr = &Output{filepath.Join(dir, "stderr")}
	}
	stdout, err := os.Create(p.Stdout.path)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr := stdout
	if !o.CombinedOutput {
		if stderr, err = os.Create(p.Stderr.path); err != nil {
			t.Fatal(err)
		}
		defer stderr.Close()
	}
	p.Cmd, err = startRetrying(func() *exec.Cmd {
		cmd := command(bin, o)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		return cmd
	})
	if err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.cleanup)
	return p
}

func command(bin string, o Options) *exec.Cmd {
	cmd := exec.Command(bin, o.Args...)
	cmd.Dir = o.Dir
	cmd.Env = Env(o.Env...)
	cmd.ExtraFiles = o.ExtraFiles
	cmd.SysProcAttr = o.SysProcAttr
	return cmd
}

// startRetrying starts the command newCmd makes, again while the kernel
// says the program is busy (ETXTBSY): a binary just written (a test
// installing a new one, as a package manager does) can be held open for
// writing for a moment by a process another test is forking.
func startRetrying(newCmd func() *exec.Cmd) (*exec.Cmd, error) {
	for try := 0; ; try++ {
		cmd := newCmd()
		err := cmd.Start()
		if err == nil || !errors.Is(err, syscall.ETXTBSY) || try == 50 {
			return cmd, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log is what the process logged so far: its stderr (with
// CombinedOutput, its whole output), then its LogFile.
func (p *Process) Log() string {
	s := p.Stderr.String()
	if p.logFile != "" {
		b, _ := os.ReadFile(p.logFile)
		s += string(b)
	}
	return s
}

// SetLogFile changes the file Log reads after the process's output: the
// test moved the log away (as logrotate does) and reads on in the moved
// file.
func (p *Process) SetLogFile(path string) { p.logFile = path }

// WaitLog waits until re matches the log (Log) n times, and returns the
// submatches of the n-th match. It fails the test after timeout, or when
// the process exited without them.
func (p *Process) WaitLog(re *regexp.Regexp, n int, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := re.FindAllStringSubmatch(p.Log(), -1)
		if len(ms) >= n {
			return ms[n-1]
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("log: %d of %d matches of %q after %s", len(ms), n, re, timeout)
		}
		select {
		case <-p.done:
			// One last look: the line may have been written just before.
			if ms := re.FindAllStringSubmatch(p.Log(), -1); len(ms) >= n {
				return ms[n-1]
			}
			p.t.Fatalf("%s exited (%v) before %d matches of %q", p.name, p.err, n, re)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Signal sends sig to the process, failing the test if it cannot.
func (p *Process) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Done is closed when the process has exited; Err is then its result.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended (exec.Cmd.Wait's error), once Done is
// closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Wait waits up to timeout for the process to exit and returns its exit
// status (-1 when a signal ended it). It fails the test if the process
// still runs then.
func (p *Process) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s still running %s after the signal", p.name, timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("wait for %s: %v", p.name, p.err)
	}
	return 0
}

// Stop stops the process if it still runs: SIGQUIT (asyncd's fast stop),
// then SIGKILL after 10 seconds, to its process group as well when it has
// one of its own (SysProcAttr.Setpgid).
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGQUIT) //nolint:errcheck
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		if a := p.Cmd.SysProcAttr; a != nil && a.Setpgid {
			syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck
		}
		p.Cmd.Process.Kill() //nolint:errcheck
		<-p.done
	}
}

// Output is the process's output for a failure message: stderr, then
// stdout when they are apart.
func (p *Process) Output() string {
	if p.Stdout == p.Stderr {
		return p.Stdout.String()
	}
	return fmt.Sprintf("stderr:\n%s\nstdout:\n%s", p.Stderr.String(), p.Stdout.String())
}

func (p *Process) cleanup() {
	p.Stop()
	if strings.Contains(p.Log(), "WARNING: DATA RACE") {
		p.t.Errorf("the race detector found a data race in %s", p.name)
	}
	if p.t.Failed() {
		p.t.Logf("%s output:\n%s", p.name, p.Output())
		if p.logFile != "" {
			b, _ := os.ReadFile(p.logFile)
			p.t.Logf("%s error log %s:\n%s", p.name, p.logFile, b)
		}
	}
}

// Result is a run to completion.
type Result struct {
	Stdout, Stderr string // the same interleaved text with CombinedOutput
	Code           int    // the exit status; -1 when a signal ended it
}

// Run runs bin with o to completion and returns what it printed and its
// exit status. It fails the test if bin still runs after timeout.
func Run(t testing.TB, bin string, o Options, timeout time.Duration) Result {
	t.Helper()
	p := Start(t, bin, o)
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s %s still running after %s (it should have exited at once)", bin, strings.Join(o.Args, " "), timeout)
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		t.Fatalf("run %s %v: %v", bin, o.Args, p.err)
	}
	return Result{Stdout: p.Stdout.String(), Stderr: p.Stderr.String(), Code: p.Cmd.ProcessState.ExitCode()}
}
