package engine_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/httpparse"
	"github.com/asyncd/asyncd/loop"
)

// TestChunkExtensionLimit: Config.Limits.MaxChunkExtension (the
// limit_chunk_extension setting) bounds the extensions on one chunk line,
// for a buffered and for a streamed body; 0 takes httpparse's default.
func TestChunkExtensionLimit(t *testing.T) {
	ext := func(n int) string { return ";x=" + strings.Repeat("v", n-3) } // n bytes after the size
	req := func(path string, extLen, bodyLen int) string {
		return "POST " + path + " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x%s\r\n%s\r\n0\r\n\r\n", bodyLen, ext(extLen), strings.Repeat("b", bodyLen))
	}
	forBackends(t, func(t *testing.T, b loop.Backend) {
		for _, tc := range []struct {
			limit   int // configured; 0 = default
			ok, bad int // extension lengths accepted and refused
		}{
			{16, 16, 17},
			{0, httpparse.DefaultMaxChunkExtension, httpparse.DefaultMaxChunkExtension + 1},
			{10000, 10000, 10001},
		} {
			t.Run(fmt.Sprintf("limit %d", tc.limit), func(t *testing.T) {
				s, _ := start(t, b, func(c *engine.Config) {
					c.Limits.MaxChunkExtension = tc.limit
					c.BodyBufferSize = 1024
				})
				want := tc.limit
				if want == 0 {
					want = httpparse.DefaultMaxChunkExtension
				}
				if got := s.Engine.Limits().MaxChunkExtension; got != want {
					t.Errorf("engine limit %d, want %d", got, want)
				}
				// 10 bytes: buffered; 3000: past the body buffer, streamed.
				for _, bodyLen := range []int{10, 3000} {
					rs, _ := s.Exchange(t, req("/len", tc.ok, bodyLen), 1)
					if want := fmt.Sprintf("%d:", bodyLen); rs[0].StatusCode != 200 || !strings.HasPrefix(string(rs[0].Body), want) {
						t.Errorf("%d-byte body, %d-byte extension: %d %.20q, want 200", bodyLen, tc.ok, rs[0].StatusCode, rs[0].Body)
					}
				}
				rs, closed := s.Exchange(t, req("/len", tc.bad, 10), 0)
				if len(rs) != 1 || rs[0].StatusCode != 400 || !closed {
					t.Errorf("%d-byte extension: %d responses, closed=%v, want 400 and close", tc.bad, len(rs), closed)
				}
			})
		}
	})
}
