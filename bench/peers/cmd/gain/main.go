// Command gain is the raw github.com/pawelgaczynski/gain (io_uring) peer:
// socket sharding with one worker per CPU, and every complete request
// answered with a fixed response framed by internal/rawhttp without parsing
// HTTP. It is the io_uring counterpart of the raw gnet peer; GET /delay is
// not served (a blocking sleep would stall the ring), it gets the plaintext
// answer. Build with -ldflags=-checklinkname=0 (gain links to
// syscall.anyToSockaddr).
//
// It touches nothing outside this directory.
package main

import (
	"flag"
	"log"
	"runtime"
	"sync"

	"github.com/pawelgaczynski/gain"
	"github.com/rs/zerolog"

	"github.com/asyncd/asyncd/bench/peers/internal/peer"
	"github.com/asyncd/asyncd/bench/peers/internal/rawhttp"
)

type handler struct {
	gain.DefaultEventHandler
	resp *rawhttp.Responder
	bufs sync.Pool
}

// OnRead answers every complete request buffered on c.
func (h *handler) OnRead(c gain.Conn, _ int) {
	in, err := c.Peek(-1)
	if err != nil {
		_ = c.Close()
		return
	}
	bp := h.bufs.Get().(*[]byte)
	out, consumed, closing, ferr := h.resp.Answer((*bp)[:0], in)
	if _, err := c.Discard(consumed); err != nil {
		closing = true
	}
	if len(out) > 0 {
		if _, err := c.Write(out); err != nil {
			closing = true
		}
	}
	*bp = out
	h.bufs.Put(bp)
	if closing || ferr != nil {
		// gain submits the pending write linked before the close.
		_ = c.Close()
	}
}

func main() {
	addr := peer.AddrFlag(flag.CommandLine)
	flag.Parse()
	h := &handler{resp: rawhttp.NewResponder("gain")}
	h.bufs.New = func() any { b := make([]byte, 0, 16<<10); return &b }
	log.Printf("gain (raw, io_uring) listening on %s", *addr)
	err := gain.ListenAndServe("tcp://"+*addr, h,
		gain.WithArchitecture(gain.SocketSharding),
		gain.WithWorkers(runtime.GOMAXPROCS(0)),
		gain.WithLoggerLevel(zerolog.WarnLevel),
	)
	if err != nil {
		log.Fatalf("gain serve %s: %v", *addr, err)
	}
}
