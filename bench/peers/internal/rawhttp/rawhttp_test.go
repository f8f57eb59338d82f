package rawhttp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/bench/peers/internal/peer"
)

func TestNext(t *testing.T) {
	body := strings.Repeat("a", 4096)
	post := "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + body
	tests := []struct {
		name    string
		in      string
		want    Request
		wantErr error
	}{
		{"empty", "", Request{}, nil},
		{"partial header", "GET /plaintext HTTP/1.1\r\nHost: x\r\n", Request{}, nil},
		{"plaintext", "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", Request{Len: len("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"), Kind: KindPlaintext}, nil},
		{"request line only", "GET / HTTP/1.1\r\n\r\n", Request{Len: 18}, nil},
		{"json", "GET /json HTTP/1.1\r\n\r\n", Request{Len: 22, Kind: KindJSON}, nil},
		{"json query", "GET /json?x=1 HTTP/1.1\r\n\r\n", Request{Len: 26, Kind: KindJSON}, nil},
		{"jsonx is not json", "GET /jsonx HTTP/1.1\r\n\r\n", Request{Len: 23}, nil},
		{"post whole", post, Request{Len: len(post), Kind: KindOK}, nil},
		{"post body partial", post[:len(post)-1], Request{}, nil},
		{"post then next", post + "GET /json HTTP/1.1\r\n\r\n", Request{Len: len(post), Kind: KindOK}, nil},
		{"length case and spaces", "POST /post HTTP/1.1\r\ncOnTeNt-LeNgTh:   3 \r\n\r\nabc", Request{Len: len("POST /post HTTP/1.1\r\ncOnTeNt-LeNgTh:   3 \r\n\r\nabc"), Kind: KindOK}, nil},
		{"connection close", "GET /plaintext HTTP/1.1\r\nConnection: Close\r\n\r\n", Request{Len: 46, Close: true}, nil},
		{"connection keep-alive", "GET /plaintext HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", Request{Len: 51}, nil},
		{"bad length", "POST /post HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", Request{}, ErrBadLength},
		{"empty length", "POST /post HTTP/1.1\r\nContent-Length:\r\n\r\n", Request{}, ErrBadLength},
		{"huge length", "POST /post HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", Request{}, ErrBadLength},
		{"header too large", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", MaxHeaderBytes), Request{}, ErrHeaderTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Next([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestAnswer checks that a pipelined batch is answered in order with
// responses net/http's client parses, and that Connection: close stops the
// batch.
func TestAnswer(t *testing.T) {
	r := NewResponder("test")
	defer r.Close()
	tests := []struct {
		name         string
		in           string
		wantBodies   []string
		wantConsumed int
		wantClosing  bool
	}{
		{
			name:       "pipelined mix with trailing partial",
			in:         "GET /plaintext HTTP/1.1\r\n\r\nGET /json HTTP/1.1\r\n\r\nPOST /post HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /plain",
			wantBodies: []string{peer.PlaintextBody, peer.JSONBody, peer.OKBody},
			// Everything but the trailing partial request.
			wantConsumed: 27 + 22 + 44,
		},
		{
			name:         "close stops the batch",
			in:           "GET /json HTTP/1.1\r\nConnection: close\r\n\r\nGET /json HTTP/1.1\r\n\r\n",
			wantBodies:   []string{peer.JSONBody},
			wantConsumed: 41,
			wantClosing:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, consumed, closing, err := r.Answer(nil, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if consumed != tt.wantConsumed || closing != tt.wantClosing {
				t.Fatalf("consumed=%d closing=%v, want %d %v", consumed, closing, tt.wantConsumed, tt.wantClosing)
			}
			br := bufio.NewReader(bytes.NewReader(out))
			for i, want := range tt.wantBodies {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || string(b) != want || resp.Header.Get("Date") == "" {
					t.Fatalf("response %d: %d %q date=%q", i, resp.StatusCode, b, resp.Header.Get("Date"))
				}
				if resp.Close != tt.wantClosing {
					t.Fatalf("response %d: Close=%v want %v", i, resp.Close, tt.wantClosing)
				}
			}
			if br.Buffered() != 0 {
				t.Fatalf("%d unexpected trailing bytes", br.Buffered())
			}
		})
	}
}

func TestAnswerError(t *testing.T) {
	r := NewResponder("test")
	defer r.Close()
	out, consumed, closing, err := r.Answer(nil, []byte("GET / HTTP/1.1\r\n\r\nPOST /post HTTP/1.1\r\nContent-Length: -1\r\n\r\n"))
	if !errors.Is(err, ErrBadLength) || !closing || consumed != 18 || len(out) == 0 {
		t.Fatalf("err=%v closing=%v consumed=%d out=%d", err, closing, consumed, len(out))
	}
}

// BenchmarkAnswerPipelined16 proves the raw peers' hot path allocates
// nothing: 16 pipelined requests framed and answered into a reused buffer.
func BenchmarkAnswerPipelined16(b *testing.B) {
	r := NewResponder("bench")
	defer r.Close()
	in := []byte(strings.Repeat("GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\n\r\n", 16))
	out := make([]byte, 0, 16<<10)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		out, _, _, err = r.Answer(out[:0], in)
		if err != nil {
			b.Fatal(err)
		}
	}
}
