// Command fasthttp is the github.com/valyala/fasthttp peer serving the
// benchmark routes exactly as asyncd answers them (see internal/peer).
//
// It switches on the path the way fasthttp users do and marshals JSON per
// request; it touches nothing outside this directory.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/asyncd/asyncd/bench/peers/internal/peer"
)

func main() {
	addr := peer.AddrFlag(flag.CommandLine)
	flag.Parse()
	srv := &fasthttp.Server{
		Handler: handle,
		Name:    "fasthttp",
		// The delay scenario holds thousands of connections in handlers.
		Concurrency: 256 * 1024,
	}
	log.Printf("fasthttp listening on %s", *addr)
	if err := srv.ListenAndServe(*addr); err != nil {
		log.Fatalf("fasthttp serve %s: %v", *addr, err)
	}
}

var (
	plain = []byte(peer.PlaintextBody)
	ok    = []byte(peer.OKBody)
)

func handle(ctx *fasthttp.RequestCtx) {
	// switch on string([]byte) does not allocate.
	switch string(ctx.Path()) {
	case peer.PathPlaintext:
		if ctx.IsGet() {
			ctx.SetContentType(peer.TypePlain)
			ctx.SetBody(plain)
			return
		}
	case peer.PathJSON:
		if ctx.IsGet() {
			b, err := json.Marshal(peer.Message{Message: peer.PlaintextBody})
			if err != nil {
				ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
				return
			}
			ctx.SetContentType(peer.TypeJSON)
			ctx.SetBody(b)
			return
		}
	case peer.PathPost:
		if ctx.IsPost() {
			// fasthttp has already read the whole body into the request.
			_ = ctx.PostBody()
			ctx.SetContentType(peer.TypePlain)
			ctx.SetBody(ok)
			return
		}
	case peer.PathDelay:
		if ctx.IsGet() {
			time.Sleep(peer.Delay)
			ctx.SetContentType(peer.TypePlain)
			ctx.SetBody(ok)
			return
		}
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
}
