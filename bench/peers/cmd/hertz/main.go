// Command hertz is the github.com/cloudwego/hertz peer on its default Linux
// transport, cloudwego/netpoll, serving the benchmark routes exactly as
// asyncd answers them (see internal/peer). JSON is marshalled per request
// with hertz's own JSON package (sonic).
//
// It touches nothing outside this directory.
package main

import (
	"context"
	"flag"
	"log"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/hlog"
	"github.com/cloudwego/hertz/pkg/common/json"
	"github.com/cloudwego/hertz/pkg/network/netpoll"

	"github.com/asyncd/asyncd/bench/peers/internal/peer"
)

func main() {
	addr := peer.AddrFlag(flag.CommandLine)
	flag.Parse()
	hlog.SetLevel(hlog.LevelWarn)
	h := server.New(
		server.WithHostPorts(*addr),
		server.WithTransport(netpoll.NewTransporter),
		server.WithDisablePrintRoute(true),
		// The delay scenario keeps thousands of idle keep-alive connections.
		server.WithIdleTimeout(2*time.Minute),
	)
	plain := []byte(peer.PlaintextBody)
	ok := []byte(peer.OKBody)
	h.GET(peer.PathPlaintext, func(_ context.Context, c *app.RequestContext) {
		c.Data(200, peer.TypePlain, plain)
	})
	h.GET(peer.PathJSON, func(_ context.Context, c *app.RequestContext) {
		// c.JSON would add "; charset=utf-8"; marshal with hertz's own
		// JSON package (sonic) per request and send the bytes.
		b, err := json.Marshal(peer.Message{Message: peer.PlaintextBody})
		if err != nil {
			c.AbortWithStatus(500)
			return
		}
		c.Data(200, peer.TypeJSON, b)
	})
	h.POST(peer.PathPost, func(_ context.Context, c *app.RequestContext) {
		// hertz has already read the whole body (no streaming by default).
		_ = c.Request.Body()
		c.Data(200, peer.TypePlain, ok)
	})
	h.GET(peer.PathDelay, func(_ context.Context, c *app.RequestContext) {
		time.Sleep(peer.Delay)
		c.Data(200, peer.TypePlain, ok)
	})
	log.Printf("hertz (netpoll) listening on %s", *addr)
	if err := h.Run(); err != nil {
		log.Fatalf("hertz serve %s: %v", *addr, err)
	}
}
