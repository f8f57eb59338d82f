package e2e

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetricsScrape checks the Prometheus exposition of the real binary,
// on metrics_bind and on a route, after known traffic, across a reload
// and a serving-process restart, and the StatsD metrics.
func TestMetricsScrape(t *testing.T) {
	addr, maddr := freePort(t), freePort(t)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	p := run(t, fmt.Sprintf(`
bind: ["%s"]
workers: 2
metrics_bind: "%s"
statsd_host: "%s"
statsd_prefix: app
routes:
  - {path: /hello, handler: static, methods: [GET], options: {body: "Hello, World!"}}
  - {path: /metrics, handler: metrics}
`, addr, maddr, udp.LocalAddr()))
	murl := "http://" + maddr + "/metrics"

	for i := 0; i < 3; i++ {
		if r := httpGet(t, "http://"+addr+"/hello"); r.status != 200 {
			t.Fatalf("GET /hello: %d", r.status)
		}
	}
	if r := exchange(t, "", addr, "POST /hello HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"); r.status != 405 {
		t.Fatalf("POST /hello: %d, want 405", r.status)
	}
	if r := exchange(t, "", addr, "GET /hello HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n"); r.status != 400 {
		t.Fatalf("bad request: %d, want 400", r.status)
	}
	if r := exchange(t, "", addr, "GET /"+strings.Repeat("a", 9000)+" HTTP/1.1\r\nHost: h\r\n\r\n"); r.status != 414 {
		t.Fatalf("long request line: %d, want 414", r.status)
	}

	m := scrape(t, murl)
	want := map[string]float64{
		`asyncd_http_requests_total{method="GET",code="2xx"}`:    3,
		`asyncd_http_requests_total{method="GET",code="4xx"}`:    1, // the bad header, after a good request line
		`asyncd_http_requests_total{method="POST",code="4xx"}`:   1, // 405, the engine's own answer
		`asyncd_http_requests_total{method="other",code="4xx"}`:  1, // 414: the request line did not parse
		`asyncd_http_requests_total{method="GET",code="other"}`:  -1,
		`asyncd_http_request_duration_seconds_count`:             6,
		`asyncd_http_request_duration_seconds_bucket{le="+Inf"}`: 6,
		`asyncd_http_request_duration_seconds_bucket{le="60"}`:   6,
		`asyncd_http_rejected_requests_total{code="400"}`:        1,
		`asyncd_http_rejected_requests_total{code="414"}`:        1,
		`asyncd_http_rejected_requests_total{code="405"}`:        -1,
		`asyncd_http_requests_in_flight`:                         0,
		`asyncd_open_connections{loop="2"}`:                      -1, // two loops: 0 and 1
		`asyncd_ready`:                                           1,
		`asyncd_generation`:                                      1,
		`asyncd_reloads_total`:                                   0,
		`asyncd_worker_restarts_total`:                           0,
		`asyncd_accesslog_dropped_lines_total`:                   -1, // no access log
	}
	checkSamples(t, m, want)
	if m[`asyncd_http_response_bytes_total`] <= 0 || m[`asyncd_read_bytes_total`] <= 0 || m[`asyncd_written_bytes_total`] <= 0 {
		t.Errorf("byte counters not counting: %v %v %v", m[`asyncd_http_response_bytes_total`],
			m[`asyncd_read_bytes_total`], m[`asyncd_written_bytes_total`])
	}
	// 3 routed answers and the 405; parser rejections are counted in
	// asyncd_http_requests_total but not here (max_requests counts this).
	if got := m[`asyncd_requests_total`]; got < 4 {
		t.Errorf("asyncd_requests_total = %v, want >= 4", got)
	}
	start := m[`asyncd_process_start_time_seconds`]
	if now := float64(time.Now().Unix()); start <= 0 || start > now+1 {
		t.Errorf("asyncd_process_start_time_seconds = %v", start)
	}

	// Open connections, per loop: two idle keep-alive clients.
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	openConns := func(m map[string]float64) float64 {
		return m[`asyncd_open_connections{loop="0"}`] + m[`asyncd_open_connections{loop="1"}`]
	}
	eventually(t, "2 open connections", func() bool { return openConns(scrape(t, murl)) == 2 })

	// The metrics route serves the same exposition (rendered before its
	// own request is counted).
	m = scrape(t, "http://"+addr+"/metrics")
	if got := m[`asyncd_http_requests_total{method="GET",code="2xx"}`]; got != 3 {
		t.Errorf("metrics route: GET 2xx = %v, want 3", got)
	}
	if got := scrape(t, murl)[`asyncd_http_requests_total{method="GET",code="2xx"}`]; got != 4 {
		t.Errorf("after the route's scrape: GET 2xx = %v, want 4", got)
	}

	// StatsD, Gunicorn's names: every response so far, the engine's own
	// answers included (3 + the route's scrape, 405, 400, 414).
	sd := map[string]float64{}
	timings := 0
	buf := make([]byte, 2048)
	for sd["app.gunicorn.requests|c"] < 7 || timings < 7 {
		udp.SetReadDeadline(time.Now().Add(waitFor)) //nolint:errcheck
		n, _, err := udp.ReadFrom(buf)
		if err != nil {
			t.Fatalf("statsd after %v: %v", sd, err)
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			name, rest, _ := strings.Cut(line, ":")
			val, typ, _ := strings.Cut(rest, "|")
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				t.Fatalf("statsd line %q", line)
			}
			switch {
			case name == "app.gunicorn.request.duration" && typ == "ms":
				timings++
			case name == "app.gunicorn.workers" && typ == "g":
				sd[name+"|g"] = v
			default:
				sd[name+"|"+typ] += v
			}
		}
	}
	if sd["app.gunicorn.requests|c"] != 7 || sd["app.gunicorn.request.status.200|c"] != 4 || timings != 7 ||
		sd["app.gunicorn.request.status.405|c"] != 1 || sd["app.gunicorn.request.status.400|c"] != 1 ||
		sd["app.gunicorn.request.status.414|c"] != 1 {
		t.Errorf("statsd: %v, %d timings; want 7 requests (4 status 200, one each 405, 400, 414), 7 timings", sd, timings)
	}

	// A reload: the next generation serves metrics_bind, counting anew,
	// and knows how many reloads came before it.
	p.signal(syscall.SIGHUP)
	p.waitLog("asyncd ready", 2)
	eventually(t, "generation 2 on metrics_bind", func() bool {
		m = scrape(t, murl)
		return m[`asyncd_generation`] == 2
	})
	checkSamples(t, m, map[string]float64{`asyncd_reloads_total`: 1, `asyncd_worker_restarts_total`: 0,
		`asyncd_http_requests_total{method="GET",code="2xx"}`: 0, `asyncd_ready`: 1})

	// A crash: the supervisor restarts the serving process, and the new
	// one counts the restart.
	if err := syscall.Kill(p.servingPID(2), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.waitLog("asyncd ready", 3)
	eventually(t, "generation 3 on metrics_bind", func() bool {
		m = scrape(t, murl)
		return m[`asyncd_generation`] == 3
	})
	checkSamples(t, m, map[string]float64{`asyncd_reloads_total`: 1, `asyncd_worker_restarts_total`: 1})
}

// checkSamples compares samples; a wanted value of -1 means the sample
// must be absent.
func checkSamples(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		v, ok := got[k]
		switch {
		case w == -1 && ok:
			t.Errorf("%s = %v, want it absent", k, v)
		case w != -1 && !ok:
			t.Errorf("%s missing", k)
		case w != -1 && v != w:
			t.Errorf("%s = %v, want %v", k, v, w)
		}
	}
}
