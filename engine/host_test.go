package engine_test

import (
	"testing"

	"github.com/asyncd/asyncd/loop"
)

// TestAbsoluteFormHost: with an absolute-form target the target's
// authority is the host, whatever the Host field says, even when it is
// empty (RFC 9112 §3.2.2), for native handlers and the net/http adapter.
func TestAbsoluteFormHost(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		var logw logBuffer
		s := startPathServer(t, b, true, &logw)
		for _, tt := range []struct{ raw, want string }{
			{"GET http://a.example:81/native/x HTTP/1.1\r\nHost:\r\n\r\n", "path=/native/x target=http://a.example:81/native/x query= host=a.example:81"},
			{"GET http://a.example/native/x HTTP/1.1\r\nHost: b.example\r\n\r\n", "path=/native/x target=http://a.example/native/x query= host=a.example"},
			{"GET http://a.example:81/nethttp/x HTTP/1.1\r\nHost: \r\n\r\n", "path=/nethttp/x rawpath= escaped=/nethttp/x uri=http://a.example:81/nethttp/x query= host=a.example:81"},
			{"GET http://a.example/nethttp/x HTTP/1.1\r\nHost: b.example\r\n\r\n", "path=/nethttp/x rawpath= escaped=/nethttp/x uri=http://a.example/nethttp/x query= host=a.example"},
		} {
			resps, _ := s.Exchange(t, tt.raw, 1)
			if len(resps) != 1 || resps[0].StatusCode != 200 || string(resps[0].Body) != tt.want {
				t.Errorf("%q: %v, want 200 %q", tt.raw, describe(resps), tt.want)
			}
		}
		// An empty Host with an origin-form target names no host: 400.
		resps, closed := s.Exchange(t, "GET /native/x HTTP/1.1\r\nHost:\r\n\r\n", 1)
		if len(resps) != 1 || resps[0].StatusCode != 400 || !closed {
			t.Errorf("origin-form, empty Host: %v closed=%v, want 400 and close", describe(resps), closed)
		}
	})
}
