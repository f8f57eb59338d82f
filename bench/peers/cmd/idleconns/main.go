// Command idleconns measures a server's memory per idle keep-alive
// connection: it reads the resident memory of the server's process tree
// (VmRSS from /proc, see internal/procmem), opens N connections that each
// send one request and read its answer, leaves them idle, reads the RSS
// again and prints (after - before) / N.
//
// It prints a human line and a machine-readable "IDLECONNS {json}" line for
// the runner. It only connects to the address it is given.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/asyncd/asyncd/bench/peers/internal/procmem"
)

// Result is the machine-readable outcome.
type Result struct {
	Conns        int     `json:"conns"`          // connections that got an answer and stayed open
	Failed       int     `json:"failed"`         // connections that failed to dial or answer
	Dropped      int     `json:"dropped"`        // answered, then closed by the server while idle
	RSSBefore    int64   `json:"rss_before"`     // bytes, after warm-up, before opening
	RSSAfter     int64   `json:"rss_after"`      // bytes, with the connections idle
	BytesPerConn float64 `json:"bytes_per_conn"` // (after - before) / conns
}

// Config says what to measure.
type Config struct {
	Addr        string
	PID         int
	N           int
	Path        string
	Settle      time.Duration // idle time before each RSS reading
	Concurrency int           // parallel dials
	Timeout     time.Duration // per connection dial + first answer
}

func main() {
	var cfg Config
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "server address")
	flag.IntVar(&cfg.PID, "pid", 0, "server PID (its process tree is measured)")
	flag.IntVar(&cfg.N, "n", 10000, "connections to open")
	flag.StringVar(&cfg.Path, "path", "/plaintext", "path each connection requests once")
	flag.DurationVar(&cfg.Settle, "settle", 2*time.Second, "idle time before each RSS reading")
	flag.IntVar(&cfg.Concurrency, "concurrency", 128, "parallel dials")
	flag.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-connection dial and answer timeout")
	flag.Parse()
	if cfg.PID <= 0 {
		log.Fatal("idleconns: -pid is required")
	}
	res, err := Measure(context.Background(), cfg)
	if err != nil {
		log.Fatalf("idleconns: %v", err)
	}
	fmt.Printf("idleconns: %d idle keep-alive conns (%d failed, %d dropped): RSS %s -> %s, %.0f bytes/conn\n",
		res.Conns, res.Failed, res.Dropped, mib(res.RSSBefore), mib(res.RSSAfter), res.BytesPerConn)
	b, _ := json.Marshal(res)
	fmt.Printf("IDLECONNS %s\n", b)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Measure runs the measurement and closes its connections before returning.
func Measure(ctx context.Context, cfg Config) (Result, error) {
	req := []byte("GET " + cfg.Path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
	// Warm up so lazily allocated server state is in the baseline.
	warm, err := open(ctx, cfg.Addr, req, 10, cfg.Timeout)
	if err != nil {
		return Result{}, fmt.Errorf("warm-up: %w", err)
	}
	_ = warm.Close()
	time.Sleep(cfg.Settle)
	before, err := procmem.TreeRSS(cfg.PID)
	if err != nil {
		return Result{}, err
	}

	conns := make([]net.Conn, cfg.N)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   int
		firstErr error
	)
	sem := make(chan struct{}, max(1, cfg.Concurrency))
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := open(ctx, cfg.Addr, req, 1, cfg.Timeout)
			if err != nil {
				mu.Lock()
				failed++
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	alive := cfg.N - failed
	if alive == 0 {
		return Result{}, fmt.Errorf("no connection stayed open: %w", firstErr)
	}
	time.Sleep(cfg.Settle)
	after, err := procmem.TreeRSS(cfg.PID)
	if err != nil {
		return Result{}, err
	}
	dropped := countClosed(conns)
	if dropped == alive {
		return Result{}, fmt.Errorf("server closed all %d idle connections within %v", alive, cfg.Settle)
	}
	return Result{
		Conns:        alive - dropped,
		Failed:       failed,
		Dropped:      dropped,
		RSSBefore:    before,
		RSSAfter:     after,
		BytesPerConn: float64(after-before) / float64(alive-dropped),
	}, nil
}

// open dials addr and sends req n times, reading each answer, and returns
// the connection still open.
func open(ctx context.Context, addr string, req []byte, n int, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	// A small reader: client memory is not what is measured, but 10,000
	// default 4 KiB readers would be 40 MiB for nothing.
	br := bufio.NewReaderSize(c, 512)
	for range n {
		if _, err := c.Write(req); err != nil {
			c.Close()
			return nil, fmt.Errorf("write: %w", err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("read answer: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			c.Close()
			return nil, fmt.Errorf("answer %d (close=%v), want 200 keep-alive", resp.StatusCode, resp.Close)
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// countClosed counts connections the server closed while idle. It peeks
// without blocking (MSG_PEEK|MSG_DONTWAIT): EAGAIN means open and quiet, 0
// bytes means the server sent FIN, any error means a reset. One syscall per
// connection, so 10,000 connections take milliseconds.
func countClosed(conns []net.Conn) int {
	n := 0
	var b [1]byte
	for _, c := range conns {
		tc, ok := c.(*net.TCPConn)
		if !ok {
			continue
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			n++
			continue
		}
		closed := false
		_ = rc.Read(func(fd uintptr) bool {
			m, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case errors.Is(err, syscall.EAGAIN):
			case err != nil, m == 0:
				closed = true
			}
			return true // never wait for readiness
		})
		if closed {
			n++
		}
	}
	return n
}
