package httpparse

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/evanphx/wildcat"
)

var benchInputs = []struct {
	name string
	raw  string
}{
	{"minimal-GET", minimalGET},
	{"browser-GET", browserGET},
	{"chunked-POST", chunkedPOST},
}

// BenchmarkParse compares this parser with wildcat and net/http on the same
// bytes. asyncd and net/http validate the head and decode the chunked body;
// wildcat splits the head without validating it and has no chunked decoder,
// so for chunked-POST it parses the head only.
func BenchmarkParse(b *testing.B) {
	for _, in := range benchInputs {
		raw := []byte(in.raw)
		b.Run(in.name+"/asyncd", func(b *testing.B) {
			var p Parser
			var req Request
			var d ChunkedDecoder
			dst := make([]byte, 0, 1024)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				p.Reset()
				n, err := p.ParseHead(raw, &req)
				if err != nil || n == 0 {
					b.Fatal(n, err)
				}
				if req.Chunked {
					d.Reset()
					if _, _, done, err := d.Decode(dst[:0], raw[n:]); err != nil || !done {
						b.Fatal(err, done)
					}
				}
			}
		})
		b.Run(in.name+"/wildcat", func(b *testing.B) {
			hp := wildcat.NewHTTPParser()
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := hp.Parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(in.name+"/net-http", func(b *testing.B) {
			rd := bytes.NewReader(raw)
			br := bufio.NewReader(rd)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(raw)
				br.Reset(rd)
				req, err := http.ReadRequest(br)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, req.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIncremental measures a head delivered in 16-byte pieces, the
// worst realistic case for an incremental parser.
func BenchmarkIncremental(b *testing.B) {
	raw := []byte(browserGET)
	var p Parser
	var req Request
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		p.Reset()
		for k := 16; ; k += 16 {
			n, err := p.ParseHead(raw[:min(k, len(raw))], &req)
			if err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				break
			}
		}
	}
}
