// Command gnet is the raw github.com/panjf2000/gnet/v2 peer: multicore,
// SO_REUSEPORT, and every complete request answered with a fixed response
// framed by internal/rawhttp without parsing HTTP. It is the upper bound of
// gnet itself, not an HTTP server; GET /delay is not served (a blocking
// sleep would stall the event loop), it gets the plaintext answer.
//
// It touches nothing outside this directory.
package main

import (
	"flag"
	"log"
	"sync"

	"github.com/panjf2000/gnet/v2"

	"github.com/asyncd/asyncd/bench/peers/internal/peer"
	"github.com/asyncd/asyncd/bench/peers/internal/rawhttp"
)

type server struct {
	gnet.BuiltinEventEngine
	resp *rawhttp.Responder
	// bufs holds output scratch buffers so a whole pipelined batch goes out
	// in one Write without a per-connection buffer.
	bufs sync.Pool
}

// OnTraffic answers every complete request buffered on c.
func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	in, err := c.Peek(-1)
	if err != nil {
		return gnet.Close
	}
	bp := s.bufs.Get().(*[]byte)
	out, consumed, closing, ferr := s.resp.Answer((*bp)[:0], in)
	if _, err := c.Discard(consumed); err != nil {
		closing = true
	}
	if len(out) > 0 {
		if _, err := c.Write(out); err != nil {
			closing = true
		}
	}
	*bp = out
	s.bufs.Put(bp)
	if closing || ferr != nil {
		// gnet flushes the outbound buffer before closing.
		return gnet.Close
	}
	return gnet.None
}

func main() {
	addr := peer.AddrFlag(flag.CommandLine)
	flag.Parse()
	s := &server{resp: rawhttp.NewResponder("gnet")}
	s.bufs.New = func() any { b := make([]byte, 0, 16<<10); return &b }
	log.Printf("gnet (raw) listening on %s", *addr)
	err := gnet.Run(s, "tcp://"+*addr,
		gnet.WithMulticore(true),
		gnet.WithReusePort(true),
		// Rebind while connections of the previous server on this port
		// sit in TIME_WAIT, like every other server here.
		gnet.WithReuseAddr(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
	)
	if err != nil {
		log.Fatalf("gnet serve %s: %v", *addr, err)
	}
}
