package cli

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asyncd/asyncd/internal/config"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestObservabilityNothingConfigured(t *testing.T) {
	o, err := openObservability(&config.Config{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.observer != nil {
		t.Errorf("observer %T with nothing configured: the engine should skip observing", o.observer)
	}
	o.Reopen() // nothing to reopen: must not panic
}

func TestObservabilityMetricsOnlyWhenExposed(t *testing.T) {
	for _, tc := range []struct {
		cfg  config.Config
		want bool
	}{
		{config.Config{}, false},
		{config.Config{Routes: []config.Route{{Path: "/", Handler: "static"}}}, false},
		{config.Config{Routes: []config.Route{{Path: "/", Handler: "static"}, {Path: "/metrics", Handler: "metrics"}}}, true},
		{config.Config{MetricsBind: "127.0.0.1:9100"}, true},
	} {
		if got := exposesMetrics(&tc.cfg); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.cfg.Routes, got, tc.want)
		}
	}
}

func TestObservabilityAccessLogAndMetricsBind(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	maddr := ln.Addr().String()
	ln.Close()
	o, err := openObservability(&config.Config{AccessLog: path, AccessLogFormat: "%(r)s", MetricsBind: maddr}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.observer == nil || o.access == nil {
		t.Fatal("no observer for the access log")
	}
	o.Serving() // the process serves: metrics_bind accepts
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "asyncd_accesslog_dropped_lines_total 0") {
		t.Errorf("metrics_bind: %d, no dropped-lines counter:\n%s", resp.StatusCode, body)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	o.Reopen()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Reopen did not recreate the access log: %v", err)
	}
	o.Replaced()
	if _, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + maddr + "/metrics"); err == nil {
		t.Error("metrics_bind still served after Replaced")
	}
	o.Close()
	o.Close() // idempotent
}

func TestObservabilityErrorsNameTheSetting(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg  config.Config
		want []string
	}{
		{config.Config{AccessLog: filepath.Join(dir, "missing", "access.log"),
			Source: config.Sources{"accesslog": "asyncd.yaml"}}, []string{"asyncd.yaml", "accesslog", "missing"}},
		{config.Config{StatsdHost: "unix://" + filepath.Join(dir, "none.sock")}, []string{"statsd_host", "none.sock"}},
		// The access log opened first must be closed again.
		{config.Config{AccessLog: filepath.Join(dir, "ok.log"), MetricsBind: busy.Addr().String()},
			[]string{"metrics_bind", busy.Addr().String()}},
	} {
		o, err := openObservability(&tc.cfg, quietLog())
		if err == nil {
			o.Close()
			t.Errorf("%+v: no error", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not name %q", err, w)
			}
		}
	}
}

func TestValidateAccessLogFormat(t *testing.T) {
	cfg := &config.Config{AccessLogFormat: "%(h)s %(zz)s", Source: config.Sources{"access_log_format": "asyncd.yaml"}}
	if err := validateAccessLog(cfg); err == nil || !strings.Contains(err.Error(), "asyncd.yaml") || !strings.Contains(err.Error(), `"zz"`) {
		t.Errorf("bad atom: %v", err)
	}
	cfg.AccessLogJSON = true
	if err := validateAccessLog(cfg); err == nil {
		t.Error("bad atom with access_log_json: no error")
	}
	cfg.AccessLogFormat = `%(h)s %({x-id}i)s`
	if err := validateAccessLog(cfg); err != nil {
		t.Errorf("good format: %v", err)
	}
}
