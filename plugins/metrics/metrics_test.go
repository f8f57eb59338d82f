package metrics_test

import (
	"strings"
	"testing"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	asyncmetrics "github.com/asyncd/asyncd/internal/metrics"
	"github.com/asyncd/asyncd/plugins"
	_ "github.com/asyncd/asyncd/plugins/metrics"
)

func TestServesExposition(t *testing.T) {
	h, err := plugins.Build(plugins.Route{Path: "/metrics", Handler: "metrics"})
	if err != nil {
		t.Fatal(err)
	}
	other := engine.HandlerFunc(func(c *engine.Ctx) { c.SetStatus(404) })
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) {
			s := enginetest.Start(t, b, engine.Config{
				Router: enginetest.Router(t, &engine.Route{Path: "/metrics", Handler: h}, &engine.Route{Path: "/x", Handler: other}),
				Loops:  1, Observer: asyncmetrics.Default()})
			s.Exchange(t, "DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n", 1)
			resps, _ := s.Exchange(t, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n", 1)
			r := resps[0]
			if r.StatusCode != 200 || r.Header.Get("Content-Type") != asyncmetrics.ContentType || r.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("GET /metrics: %d %v", r.StatusCode, r.Header)
			}
			body := string(r.Body)
			for _, want := range []string{
				"# TYPE asyncd_http_requests_total counter\n",
				`asyncd_http_requests_total{method="DELETE",code="4xx"} `,
				"# TYPE asyncd_http_request_duration_seconds histogram\n",
				`asyncd_http_request_duration_seconds_bucket{le="+Inf"} `,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("exposition lacks %q:\n%s", want, body)
				}
			}
			if strings.Contains(body, `asyncd_http_requests_total{method="DELETE",code="4xx"} 0`) {
				t.Errorf("the DELETE before the scrape was not counted:\n%s", body)
			}
		})
	}
}

func TestNoOptions(t *testing.T) {
	_, err := plugins.Build(plugins.Route{Index: 1, Path: "/metrics", Handler: "metrics", Options: map[string]any{"path": "/x"}})
	if err == nil || !strings.Contains(err.Error(), `unknown option "path"`) {
		t.Errorf("unknown option: %v", err)
	}
}
