package config

import (
	"strings"
	"testing"
)

func TestStatsdAndMetricsBindSettings(t *testing.T) {
	c, w := mustLoad(t, yamlFile(`
statsd_host: "localhost:8125"
statsd_prefix: app
dogstatsd_tags: "env:prod,team:web"
metrics_bind: "127.0.0.1:9100"
routes: [{path: /, handler: h}]
`), withFile)
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if c.StatsdHost != "localhost:8125" || c.StatsdPrefix != "app" || c.DogstatsdTags != "env:prod,team:web" ||
		c.MetricsBind != "127.0.0.1:9100" {
		t.Fatalf("%q %q %q %q", c.StatsdHost, c.StatsdPrefix, c.DogstatsdTags, c.MetricsBind)
	}
	c, _ = mustLoad(t, nil, []string{"--statsd-host", "unix:///run/statsd.sock", "--metrics-bind", "unix:/run/m.sock"})
	if c.StatsdHost != "unix:///run/statsd.sock" || c.MetricsBind != "unix:/run/m.sock" {
		t.Fatalf("flags: %q %q", c.StatsdHost, c.MetricsBind)
	}
	c, _ = mustLoad(t, nil, nil, "ASYNCD_METRICS_BIND=:9100")
	if c.MetricsBind != ":9100" {
		t.Fatalf("env: %q", c.MetricsBind)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"statsd_host: localhost", "missing port"},
		{"statsd_host: ':8125'", "needs a host"},
		{"statsd_host: fd://3", "HOST:PORT or unix://PATH"},
		{"statsd_prefix: 'a b'", "cannot contain"},
		{"dogstatsd_tags: 'a,,b'", "empty tag"},
		{"dogstatsd_tags: 'a|b'", "cannot contain"},
		{"metrics_bind: fd://3", "HOST:PORT or unix:PATH"},
		{"metrics_bind: 'nope'", "missing port"},
	} {
		_, _, err := loadMem(yamlFile(tc.yaml), withFile)
		key := strings.SplitN(tc.yaml, ":", 2)[0]
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v, want an error naming %s with %q", tc.yaml, err, key, tc.want)
		}
	}
}
