package proxy_test

import (
	"testing"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/loop"
)

// TestForwardedProtoIsAsyncdsVerdict: X-Forwarded-Proto says https only
// when asyncd decided so (a trusted proxy), never because a client wrote
// an absolute-form target with https.
func TestForwardedProtoIsAsyncdsVerdict(t *testing.T) {
	up := newRawUpstream(t, nil)
	forBackends(t, func(t *testing.T, b loop.Backend) {
		s := enginetest.Start(t, b, engine.Config{Loops: 1, Executor: goExec{},
			Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: build(t, "/", map[string]any{"upstream": up.URL()})})})
		before := len(up.requests())
		r := one(t, s, "GET https://public.example/h HTTP/1.1\r\nHost: public.example\r\n\r\n")
		got := up.requests()[before:]
		if r.StatusCode != 200 || len(got) != 1 {
			t.Fatalf("status %d; the upstream parsed:%s", r.StatusCode, describeUp(got))
		}
		if v := got[0].Header["X-Forwarded-Proto"]; len(v) != 1 || v[0] != "http" {
			t.Errorf("X-Forwarded-Proto: %q, want [http]", v)
		}
	})
}
