// Command nethttp is the Go standard library peer: net/http serving the
// benchmark routes exactly as asyncd answers them (see internal/peer).
//
// It is written the way a user of net/http would write it (ServeMux,
// json.Marshal per request) and touches nothing outside this directory.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/asyncd/asyncd/bench/peers/internal/peer"
)

func main() {
	addr := peer.AddrFlag(flag.CommandLine)
	flag.Parse()
	srv := &http.Server{Addr: *addr, Handler: newMux(), ReadHeaderTimeout: time.Minute}
	log.Printf("nethttp listening on %s", *addr)
	if err := srv.ListenAndServe(); err != nil {
		log.Fatalf("nethttp serve %s: %v", *addr, err)
	}
}

func newMux() *http.ServeMux {
	plain := []byte(peer.PlaintextBody)
	ok := []byte(peer.OKBody)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+peer.PathPlaintext, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", peer.TypePlain)
		_, _ = w.Write(plain)
	})
	mux.HandleFunc("GET "+peer.PathJSON, func(w http.ResponseWriter, _ *http.Request) {
		b, err := json.Marshal(peer.Message{Message: peer.PlaintextBody})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", peer.TypeJSON)
		_, _ = w.Write(b)
	})
	mux.HandleFunc("POST "+peer.PathPost, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", peer.TypePlain)
		_, _ = w.Write(ok)
	})
	mux.HandleFunc("GET "+peer.PathDelay, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(peer.Delay)
		w.Header().Set("Content-Type", peer.TypePlain)
		_, _ = w.Write(ok)
	})
	return mux
}
