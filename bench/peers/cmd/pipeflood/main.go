// Command pipeflood measures how much memory a server spends on one client
// that pipelines GET requests and never reads the answers: it opens one
// connection with a large send buffer, writes requests for a fixed time,
// samples the server process tree's VmRSS once a second and reports the
// peak. A server that stops reading when it cannot write (back-pressure)
// stays flat; one that keeps queueing answers in user space grows.
//
// It stops early once the RSS passes a cap so a server without
// back-pressure cannot exhaust the shared machine. It prints a human line
// and a machine-readable "PIPEFLOOD {json}" line for the runner, and only
// connects to the address it is given.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/asyncd/asyncd/bench/peers/internal/procmem"
)

// Result is the machine-readable outcome.
type Result struct {
	Seconds      float64 `json:"seconds"`
	BytesWritten int64   `json:"bytes_written"`
	Requests     int64   `json:"requests_written"`
	RSSBaseline  int64   `json:"rss_baseline"` // bytes, before the flood
	RSSPeak      int64   `json:"rss_peak"`     // bytes, highest sample
	Samples      []int64 `json:"samples"`      // bytes, one per interval
	Capped       bool    `json:"capped"`       // stopped because RSS passed the cap
	ServerClosed bool    `json:"server_closed"`
	WriteError   string  `json:"write_error,omitempty"`
}

// Config says what to do.
type Config struct {
	Addr     string
	PID      int
	Path     string
	Duration time.Duration
	Interval time.Duration
	SndBuf   int
	RcvBuf   int
	Cap      int64
}

func main() {
	var cfg Config
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "server address")
	flag.IntVar(&cfg.PID, "pid", 0, "server PID (its process tree is measured)")
	flag.StringVar(&cfg.Path, "path", "/plaintext", "path to request")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to write")
	flag.DurationVar(&cfg.Interval, "interval", time.Second, "RSS sampling interval")
	flag.IntVar(&cfg.SndBuf, "sndbuf", 4<<20, "client SO_SNDBUF bytes")
	flag.IntVar(&cfg.RcvBuf, "rcvbuf", 0, "client SO_RCVBUF bytes (0: kernel default)")
	flag.Int64Var(&cfg.Cap, "cap", 2<<30, "stop once the server tree RSS passes this many bytes")
	flag.Parse()
	if cfg.PID <= 0 {
		log.Fatal("pipeflood: -pid is required")
	}
	res, err := Flood(context.Background(), cfg)
	if err != nil {
		log.Fatalf("pipeflood: %v", err)
	}
	note := ""
	switch {
	case res.Capped:
		note = " (stopped: RSS passed the cap)"
	case res.ServerClosed:
		note = " (server closed the connection: " + res.WriteError + ")"
	}
	fmt.Printf("pipeflood: %.1fs, %d requests (%.1f MiB) written unread; RSS %.1f MiB -> peak %.1f MiB%s\n",
		res.Seconds, res.Requests, float64(res.BytesWritten)/(1<<20),
		float64(res.RSSBaseline)/(1<<20), float64(res.RSSPeak)/(1<<20), note)
	b, _ := json.Marshal(res)
	fmt.Printf("PIPEFLOOD %s\n", b)
}

// Flood runs one flood and returns what it saw.
func Flood(ctx context.Context, cfg Config) (Result, error) {
	base, err := procmem.TreeRSS(cfg.PID)
	if err != nil {
		return Result{}, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return Result{}, fmt.Errorf("dial %s: %w", cfg.Addr, err)
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	if err := tc.SetWriteBuffer(cfg.SndBuf); err != nil {
		return Result{}, fmt.Errorf("set SO_SNDBUF: %w", err)
	}
	if cfg.RcvBuf > 0 {
		if err := tc.SetReadBuffer(cfg.RcvBuf); err != nil {
			return Result{}, fmt.Errorf("set SO_RCVBUF: %w", err)
		}
	}
	req := []byte("GET " + cfg.Path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
	chunk := bytes.Repeat(req, 1024)

	res := Result{RSSBaseline: base, RSSPeak: base}
	start := time.Now()
	end := start.Add(cfg.Duration)
	stop := make(chan struct{})
	done := make(chan struct{})
	// Sampler: the writer blocks once buffers fill, so sampling runs apart
	// from it and ends the flood early by closing the connection at the cap.
	go func() {
		defer close(done)
		t := time.NewTicker(cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				rss, err := procmem.TreeRSS(cfg.PID)
				if err != nil {
					return // server gone; the writer sees the error too
				}
				res.Samples = append(res.Samples, rss)
				res.RSSPeak = max(res.RSSPeak, rss)
				if rss > cfg.Cap {
					res.Capped = true
					_ = c.SetWriteDeadline(time.Now())
					return
				}
			}
		}
	}()
	_ = c.SetWriteDeadline(end)
	var werr error
	for time.Now().Before(end) {
		n, err := c.Write(chunk)
		res.BytesWritten += int64(n)
		if err != nil {
			werr = err
			break
		}
	}
	close(stop)
	<-done
	res.Seconds = time.Since(start).Seconds()
	res.Requests = res.BytesWritten / int64(len(req))
	// A deadline is the normal end (time up or cap); anything else means the
	// server closed or reset the connection, which is a legitimate defence.
	if werr != nil && !errors.Is(werr, os.ErrDeadlineExceeded) {
		res.ServerClosed = true
		res.WriteError = werr.Error()
	}
	// One last sample: memory still held right after the flood.
	if rss, err := procmem.TreeRSS(cfg.PID); err == nil {
		res.RSSPeak = max(res.RSSPeak, rss)
	}
	return res, nil
}
