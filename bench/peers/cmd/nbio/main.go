// Command nbio is the github.com/lesismal/nbio peer: its nbhttp engine (an
// epoll event loop parsing HTTP into net/http types) serving the benchmark
// routes exactly as asyncd answers them (see internal/peer), with the
// net/http Handler interface as nbhttp users write it.
//
// It touches nothing outside this directory.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/lesismal/nbio/nbhttp"

	"github.com/asyncd/asyncd/bench/peers/internal/peer"
)

func main() {
	addr := peer.AddrFlag(flag.CommandLine)
	flag.Parse()
	plain := []byte(peer.PlaintextBody)
	ok := []byte(peer.OKBody)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+peer.PathPlaintext, func(w http.ResponseWriter, _ *http.Request) {
		write(w, peer.TypePlain, plain)
	})
	mux.HandleFunc("GET "+peer.PathJSON, func(w http.ResponseWriter, _ *http.Request) {
		b, err := json.Marshal(peer.Message{Message: peer.PlaintextBody})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		write(w, peer.TypeJSON, b)
	})
	mux.HandleFunc("POST "+peer.PathPost, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		write(w, peer.TypePlain, ok)
	})
	mux.HandleFunc("GET "+peer.PathDelay, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(peer.Delay)
		write(w, peer.TypePlain, ok)
	})
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network: "tcp",
		Addrs:   []string{*addr},
		Handler: mux,
		// One event loop per CPU the process may run on, like the others.
		NPoller: runtime.GOMAXPROCS(0),
		// Keep idle keep-alive connections through the delay scenario.
		KeepaliveTime: 2 * time.Minute,
	})
	if err := engine.Start(); err != nil {
		log.Fatalf("nbio serve %s: %v", *addr, err)
	}
	log.Printf("nbio (nbhttp) listening on %s", *addr)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	engine.Stop()
}

// write sets Content-Length explicitly: without it nbhttp answers with
// chunked encoding, which neither asyncd nor the other peers use.
func write(w http.ResponseWriter, ctype string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
