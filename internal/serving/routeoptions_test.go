package serving_test

import (
	"testing"

	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/serving"
)

// TestBuildRoutesCarriesRouteOptions: what a route says in the config
// reaches the engine's route (request_buffering: false as StreamBody).
func TestBuildRoutesCarriesRouteOptions(t *testing.T) {
	cfg := &config.Config{Routes: []config.Route{
		{Path: "/up", Handler: "echo", StreamBody: true, Blocking: true},
		{Path: "/", Handler: "echo", Index: 1},
	}}
	r, err := serving.BuildRoutes(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path             string
		stream, blocking bool
	}{{"/up", true, true}, {"/", false, false}} {
		rt, _ := r.Match([]byte(tc.path), []byte("POST"))
		if rt == nil || rt.StreamBody != tc.stream || rt.Blocking != tc.blocking {
			t.Errorf("%s: route %+v, want StreamBody %v, Blocking %v", tc.path, rt, tc.stream, tc.blocking)
		}
	}
}
