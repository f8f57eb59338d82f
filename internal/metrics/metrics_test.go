package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/enginetest"
	"github.com/asyncd/asyncd/internal/procstate"
	"github.com/asyncd/asyncd/loop"
)

// fakeSource is a procstate.Source with fixed answers.
type fakeSource struct {
	stats procstate.Stats
	ready atomic.Bool
}

func (f *fakeSource) Stats() procstate.Stats { return f.stats }
func (f *fakeSource) Ready() bool            { return f.ready.Load() }

// published is the one Source these tests publish (procstate is
// process-wide and cannot be unpublished).
var published = &fakeSource{stats: procstate.Stats{
	Requests: 1234, InFlight: 3, ConnsPerLoop: []int{5, 7}, BytesIn: 1 << 20, BytesOut: 3 << 20,
	Rejected: map[int]uint64{400: 9, 431: 2, 414: 1},
}}

// family is one parsed metric family.
type family struct {
	typ     string
	help    string
	samples map[string]float64 // name+labels -> value
	order   []string
}

var (
	sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (\S+)$`)
	helpRE   = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$`)
	typeRE   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$`)
)

// parseExposition checks text against the 0.0.4 text format strictly
// enough for asyncd's output: HELP then TYPE before a family's samples,
// every sample in a declared family, families not repeated, values that
// parse as floats, histogram buckets cumulative and ending in +Inf equal to
// _count.
func parseExposition(t *testing.T, text string) map[string]*family {
	t.Helper()
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("exposition does not end in a newline")
	}
	fams := map[string]*family{}
	var cur string
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if m := helpRE.FindStringSubmatch(line); m != nil {
			if _, dup := fams[m[1]]; dup {
				t.Fatalf("line %d: family %s declared twice", i+1, m[1])
			}
			cur = m[1]
			fams[cur] = &family{help: m[2], samples: map[string]float64{}}
			continue
		}
		if m := typeRE.FindStringSubmatch(line); m != nil {
			if m[1] != cur || fams[cur].typ != "" {
				t.Fatalf("line %d: TYPE for %s out of place", i+1, m[1])
			}
			fams[cur].typ = m[2]
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d: not a valid sample: %q", i+1, line)
		}
		name := m[1]
		base := name
		if fams[cur] != nil && fams[cur].typ == "histogram" {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if strings.HasSuffix(name, suf) && strings.TrimSuffix(name, suf) == cur {
					base = cur
				}
			}
		}
		if base != cur || fams[cur].typ == "" {
			t.Fatalf("line %d: sample %s outside its family (current %s)", i+1, name, cur)
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			t.Fatalf("line %d: value %q: %v", i+1, m[4], err)
		}
		key := name + m[2]
		if _, dup := fams[cur].samples[key]; dup {
			t.Fatalf("line %d: duplicate sample %s", i+1, key)
		}
		fams[cur].samples[key] = v
		fams[cur].order = append(fams[cur].order, key)
	}
	for name, f := range fams {
		if f.typ != "histogram" {
			continue
		}
		prev := -1.0
		var last string
		for _, k := range f.order {
			if !strings.HasPrefix(k, name+"_bucket") {
				continue
			}
			if f.samples[k] < prev {
				t.Fatalf("%s: bucket %s (%v) below the previous (%v)", name, k, f.samples[k], prev)
			}
			prev, last = f.samples[k], k
		}
		if last != name+`_bucket{le="+Inf"}` || f.samples[last] != f.samples[name+"_count"] {
			t.Fatalf("%s: last bucket %s = %v, count %v", name, last, f.samples[last], f.samples[name+"_count"])
		}
	}
	return fams
}

func forBackends(t *testing.T, fn func(t *testing.T, b loop.Backend)) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name(), func(t *testing.T) { fn(t, b) })
	}
}

func TestCountsOverSocket(t *testing.T) {
	forBackends(t, func(t *testing.T, b loop.Backend) {
		m := New()
		h := engine.HandlerFunc(func(c *engine.Ctx) {
			code, _ := strconv.Atoi(string(c.Query()))
			if code == 0 {
				code = 200
			}
			if code == 299 {
				time.Sleep(30 * time.Millisecond) // lands in a later bucket
			}
			c.SetStatus(code)
			c.WriteString("0123456789") //nolint:errcheck
		})
		s := enginetest.Start(t, b, engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: h}),
			Loops: 2, Observer: m})
		reqs := []string{
			"GET /?200", "GET /?200", "GET /?299", "HEAD /?204", "POST /?404", "PUT /?503", "DELETE /?301",
			"PATCH /?100x", "OPTIONS /?200", "BREW /?418", "GET /?700",
		}
		for _, r := range reqs {
			resps, _ := s.Exchange(t, r+" HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 1)
			if len(resps) != 1 {
				t.Fatalf("%s: no response", r)
			}
		}
		// A request the engine refuses itself is observed too: its request
		// line did not parse, so its method is "other".
		c := s.Dial(t)
		io.WriteString(c, "GET nope HTTP/1.1\r\nHost: h\r\n\r\n") //nolint:errcheck
		if resps, _ := enginetest.ReadResponses(t, c, 1, 5*time.Second); len(resps) != 1 || resps[0].StatusCode != 400 {
			t.Fatalf("GET nope: %v, want one 400", resps)
		}
		answered := len(reqs) + 1

		fams := parseExposition(t, string(m.AppendText(nil)))
		rq := fams["asyncd_http_requests_total"]
		want := map[string]float64{
			`{method="GET",code="2xx"}`: 3, `{method="HEAD",code="2xx"}`: 1, `{method="POST",code="4xx"}`: 1,
			`{method="PUT",code="5xx"}`: 1, `{method="DELETE",code="3xx"}`: 1, `{method="PATCH",code="2xx"}`: 1,
			`{method="OPTIONS",code="2xx"}`: 1, `{method="other",code="4xx"}`: 2, `{method="GET",code="other"}`: 1,
			`{method="GET",code="1xx"}`: 0, `{method="POST",code="5xx"}`: 0,
		}
		total := 0.0
		for k, v := range rq.samples {
			total += v
			if w, ok := want["asyncd_http_requests_total"+strings.TrimPrefix(k, "asyncd_http_requests_total")]; ok && v != w {
				t.Errorf("%s = %v, want %v", k, v, w)
			}
		}
		for k, w := range want {
			if got, ok := rq.samples["asyncd_http_requests_total"+k]; !ok || got != w {
				t.Errorf("asyncd_http_requests_total%s = %v (present %v), want %v", k, got, ok, w)
			}
		}
		if total != float64(answered) {
			t.Errorf("requests sum to %v, want %d", total, answered)
		}
		hist := fams["asyncd_http_request_duration_seconds"]
		if hist.typ != "histogram" || hist.samples["asyncd_http_request_duration_seconds_count"] != float64(answered) {
			t.Errorf("histogram count %v, want %d", hist.samples["asyncd_http_request_duration_seconds_count"], answered)
		}
		if s := hist.samples["asyncd_http_request_duration_seconds_sum"]; s < 0.03 {
			t.Errorf("duration sum %v, want >= 0.03 (one request slept 30ms)", s)
		}
		if le := hist.samples[`asyncd_http_request_duration_seconds_bucket{le="0.025"}`]; le >= float64(answered) {
			t.Errorf("bucket le=0.025 holds %v: the 30ms request must be above it", le)
		}
		if n := fams["asyncd_http_response_bytes_total"].samples["asyncd_http_response_bytes_total"]; n < 10*float64(len(reqs)-3) {
			t.Errorf("response bytes %v too small", n)
		}
	})
}

func TestProcessState(t *testing.T) {
	procstate.Publish(published)
	procstate.SetLineage(4, 2, 1)
	published.ready.Store(true)
	fams := parseExposition(t, string(New().AppendText(nil)))
	want := map[string]float64{
		"asyncd_requests_total":                               1234,
		"asyncd_http_requests_in_flight":                      3,
		`asyncd_open_connections{loop="0"}`:                   5,
		`asyncd_open_connections{loop="1"}`:                   7,
		"asyncd_read_bytes_total":                             1 << 20,
		"asyncd_written_bytes_total":                          3 << 20,
		`asyncd_http_rejected_requests_total{code="400"}`:     9,
		`asyncd_http_rejected_requests_total{code="414"}`:     1,
		`asyncd_http_rejected_requests_total{code="431"}`:     2,
		"asyncd_ready":                                        1,
		"asyncd_generation":                                   4,
		"asyncd_reloads_total":                                2,
		"asyncd_worker_restarts_total":                        1,
		`asyncd_http_requests_total{method="GET",code="2xx"}`: 0,
	}
	got := map[string]float64{}
	for _, f := range fams {
		for k, v := range f.samples {
			got[k] = v
		}
	}
	for k, w := range want {
		if v, ok := got[k]; !ok || v != w {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, w)
		}
	}
	if st := got["asyncd_process_start_time_seconds"]; st < float64(time.Now().Add(-time.Hour).Unix()) || st > float64(time.Now().Unix()+1) {
		t.Errorf("start time %v", st)
	}
	published.ready.Store(false)
	fams = parseExposition(t, string(New().AppendText(nil)))
	if v := fams["asyncd_ready"].samples["asyncd_ready"]; v != 0 {
		t.Errorf("asyncd_ready = %v while not ready", v)
	}
}

func TestExtraMetrics(t *testing.T) {
	m := New()
	var n atomic.Int64
	if err := m.AddCounter("asyncd_accesslog_dropped_lines_total", "Access log lines dropped.\nSecond line \\ here.", func() float64 { return float64(n.Load()) }); err != nil {
		t.Fatal(err)
	}
	if err := m.AddGauge("app_temperature", "A gauge.", func() float64 { return 21.5 }); err != nil {
		t.Fatal(err)
	}
	n.Store(42)
	text := string(m.AppendText(nil))
	fams := parseExposition(t, text)
	if f := fams["asyncd_accesslog_dropped_lines_total"]; f == nil || f.typ != "counter" || f.samples["asyncd_accesslog_dropped_lines_total"] != 42 {
		t.Errorf("counter: %+v", f)
	}
	if !strings.Contains(text, `# HELP asyncd_accesslog_dropped_lines_total Access log lines dropped.\nSecond line \\ here.`) {
		t.Errorf("HELP not escaped:\n%s", text)
	}
	if f := fams["app_temperature"]; f == nil || f.typ != "gauge" || f.samples["app_temperature"] != 21.5 {
		t.Errorf("gauge: %+v", f)
	}
	for _, tt := range []struct {
		name string
		f    func() float64
		want string
	}{
		{"app_temperature", func() float64 { return 0 }, "registered twice"},
		{"asyncd_ready", func() float64 { return 0 }, "built-in"},
		{"9bad", func() float64 { return 0 }, "invalid metric name"},
		{"bad-name", func() float64 { return 0 }, "invalid metric name"},
		{"ok_name", nil, "nil function"},
	} {
		if err := m.AddGauge(tt.name, "", tt.f); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("AddGauge(%q) = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestServe(t *testing.T) {
	m := New()
	m.AddGauge("serve_test_marker", "marker", func() float64 { return 7 }) //nolint:errcheck
	t.Run("unix", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "metrics.sock")
		stop, err := serve("unix:"+sock, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		checkScrape(t, client, "http://metrics/metrics")
		resp, err := client.Post("http://metrics/metrics", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Errorf("POST: %d, want 405", resp.StatusCode)
		}
		resp, err = client.Get("http://metrics/other")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET /other: %d, want 404", resp.StatusCode)
		}
		stop()
		if _, err := client.Get("http://metrics/metrics"); err == nil {
			t.Error("still serving after stop")
		}
	})
	t.Run("tcp", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		ready := make(chan struct{})
		close(ready)
		stop, err := Serve(addr, ready, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		parseExposition(t, string(body))
		if _, err := Serve("nohost", ready, nil); err == nil || !strings.Contains(err.Error(), "metrics_bind nohost") {
			t.Errorf("Serve on a bad address: %v, want an error naming it", err)
		}
	})
	t.Run("tcp shared with the next generation", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		stopOld, err := serve(addr, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		stopNew, err := serve(addr, m, nil)
		if err != nil {
			stopOld()
			t.Fatalf("second generation cannot bind %s: %v", addr, err)
		}
		defer stopNew()
		stopOld()
		// Fresh connections each time, so that none is one the old
		// listener had accepted.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		for i := 0; i < 5; i++ {
			checkScrape(t, client, "http://"+addr+"/metrics")
		}
	})
	t.Run("unix taken over by the next generation", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "metrics.sock")
		stopOld, err := serve("unix:"+sock, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		stopNew, err := serve("unix:"+sock, m, nil)
		if err != nil {
			stopOld()
			t.Fatalf("second generation cannot take %s over: %v", sock, err)
		}
		stopOld() // must not remove the new generation's socket
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}}}
		checkScrape(t, client, "http://metrics/metrics")
		stopNew()
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left after the last stop: %v", err)
		}
		plain := filepath.Join(t.TempDir(), "file")
		os.WriteFile(plain, []byte("x"), 0o644) //nolint:errcheck
		if _, err := serve("unix:"+plain, m, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("a regular file at the path: %v, want it refused", err)
		}
		if b, _ := os.ReadFile(plain); string(b) != "x" {
			t.Error("a regular file at the path was replaced")
		}
	})
}

func TestStatsdUnixSocketAndTags(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "statsd.sock")
	pc, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sd, err := newStatsd("unix://"+sock, "app", "env:prod, team:web", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sd.requests.Add(3)
	sd.status[503].Add(2)
	sd.Close() // sends what is pending
	got := map[string]bool{}
	buf := make([]byte, 2048)
	for !got["app.gunicorn.requests:3|c|#env:prod,team:web"] || !got["app.gunicorn.request.status.503:2|c|#env:prod,team:web"] {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if !strings.HasSuffix(line, "|#env:prod,team:web") {
				t.Fatalf("line without the tags: %q", line)
			}
			got[line] = true
		}
	}
	if _, err := NewStatsd("unix://"+filepath.Join(t.TempDir(), "none"), "", ""); err == nil || !strings.Contains(err.Error(), "statsd unix://") {
		t.Errorf("no socket: %v, want an error naming the address", err)
	}
}

func checkScrape(t *testing.T, client *http.Client, url string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType {
		t.Fatalf("scrape: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	fams := parseExposition(t, string(body))
	if fams["serve_test_marker"] == nil {
		t.Fatalf("scrape did not serve this Metrics:\n%s", body)
	}
}

type countObs struct{ n atomic.Int64 }

func (o *countObs) Observe(*engine.Ctx, time.Duration) { o.n.Add(1) }

func TestMulti(t *testing.T) {
	if Multi() != nil || Multi(nil, nil) != nil {
		t.Error("Multi of nothing must be nil, so the engine skips observing")
	}
	a, b := &countObs{}, &countObs{}
	if Multi(nil, a) != engine.Observer(a) {
		t.Error("Multi of one observer must be that observer")
	}
	be := enginetest.Backends(t)[0]
	h := engine.HandlerFunc(func(c *engine.Ctx) {})
	s := enginetest.Start(t, be, engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: h}),
		Loops: 1, Observer: Multi(a, nil, b)})
	c := s.Dial(t)
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
	enginetest.ReadResponses(t, c, 2, 5*time.Second)
	if a.n.Load() != 2 || b.n.Load() != 2 {
		t.Errorf("observers saw %d and %d requests, want 2 each", a.n.Load(), b.n.Load())
	}
}

// BenchmarkObserve measures the per-request observer on the loop, with a
// real Ctx, from several goroutines' worth of stripes. allocs/op must be 0.
func BenchmarkObserve(b *testing.B) {
	m := New()
	be := enginetest.Backends(b)[0]
	h := engine.HandlerFunc(func(c *engine.Ctx) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m.Observe(c, time.Duration(i&1023)*time.Microsecond)
		}
		b.StopTimer()
	})
	s := enginetest.Start(b, be, engine.Config{Router: enginetest.Router(b, &engine.Route{Path: "/", Handler: h}), Loops: 1})
	c := s.Dial(b)
	fmt.Fprint(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Minute)) //nolint:errcheck
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkScrape measures rendering the exposition (off the hot path).
func BenchmarkScrape(b *testing.B) {
	procstate.Publish(published)
	m := New()
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = m.AppendText(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func TestStatsd(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sd, err := newStatsd(pc.LocalAddr().String(), "app...", "", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	be := enginetest.Backends(t)[0]
	h := engine.HandlerFunc(func(c *engine.Ctx) {
		code, _ := strconv.Atoi(string(c.Query()))
		c.SetStatus(code)
		if code == 201 {
			time.Sleep(15 * time.Millisecond)
		}
	})
	s := enginetest.Start(t, be, engine.Config{Router: enginetest.Router(t, &engine.Route{Path: "/", Handler: h}),
		Loops: 1, Observer: sd})
	for _, q := range []string{"200", "200", "404", "201"} {
		if r, _ := s.Exchange(t, "GET /?"+q+" HTTP/1.1\r\nHost: h\r\n\r\n", 1); len(r) != 1 {
			t.Fatal("no response")
		}
	}
	got := map[string]int{}
	var durations []float64
	buf := make([]byte, 2048)
	deadline := time.Now().Add(5 * time.Second)
	for len(durations) < 4 || got["app.gunicorn.requests"] < 4 {
		pc.SetReadDeadline(deadline) //nolint:errcheck
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %v and %v: %v", got, durations, err)
		}
		if n > statsdPacket {
			t.Fatalf("datagram of %d bytes exceeds %d", n, statsdPacket)
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			name, rest, ok := strings.Cut(line, ":")
			val, typ, ok2 := strings.Cut(rest, "|")
			if !ok || !ok2 {
				t.Fatalf("malformed statsd line %q", line)
			}
			switch typ {
			case "c":
				v, err := strconv.Atoi(val)
				if err != nil {
					t.Fatalf("counter %q", line)
				}
				got[name] += v
			case "ms":
				if name != "app.gunicorn.request.duration" {
					t.Fatalf("timer %q", line)
				}
				d, err := strconv.ParseFloat(val, 64)
				if err != nil {
					t.Fatalf("timer %q", line)
				}
				durations = append(durations, d)
			case "g":
				// gunicorn.workers appears once procstate is published.
			default:
				t.Fatalf("unknown type in %q", line)
			}
		}
	}
	want := map[string]int{"app.gunicorn.requests": 4, "app.gunicorn.request.status.200": 2,
		"app.gunicorn.request.status.404": 1, "app.gunicorn.request.status.201": 1}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], w, got)
		}
	}
	slow := 0
	for _, d := range durations {
		if d >= 15 {
			slow++
		}
	}
	if len(durations) != 4 || slow != 1 {
		t.Errorf("durations %v: want 4, one of them >= 15ms", durations)
	}
	if sd.DroppedTimings() != 0 {
		t.Errorf("%d timings dropped", sd.DroppedTimings())
	}
	if err := sd.Close(); err != nil {
		t.Error(err)
	}
	if err := sd.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestStatsdSplitsDatagrams fills one interval with more metrics than one
// datagram holds: every datagram must stay within the bound and every
// counter must arrive.
func TestStatsdSplitsDatagrams(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sd, err := newStatsd(pc.LocalAddr().String(), "", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for code := 100; code < 600; code++ {
		sd.status[code].Add(uint64(code))
	}
	sd.Close() // sends what is pending
	total := 0
	buf := make([]byte, 4096)
	for datagrams := 0; total < 500; datagrams++ {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %d datagrams and %d counters: %v", datagrams, total, err)
		}
		if n > statsdPacket {
			t.Fatalf("datagram of %d bytes", n)
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if strings.HasPrefix(line, "gunicorn.workers:") {
				continue // present once another test published procstate
			}
			var code, v int
			if _, err := fmt.Sscanf(line, "gunicorn.request.status.%d:%d|c", &code, &v); err != nil || v != code {
				t.Fatalf("line %q", line)
			}
			total++
		}
	}
}
