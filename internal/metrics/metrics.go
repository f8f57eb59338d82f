// Package metrics is asyncd's Prometheus metrics: an engine.Observer that
// counts every request with atomic adds only, and a hand-written text
// exposition (format 0.0.4) that adds the serving process's state read from
// procstate at scrape time. Serve exposes it on its own address with
// net/http, off the event loops; the "metrics" handler plugin
// (plugins/metrics) exposes it on a route. StatsD (Gunicorn's metric names)
// is in statsd.go.
//
// It depends on the standard library only: the per-request path is a
// handful of atomic adds into lock-striped counters, which a general
// client library (labels looked up per call, interfaces, allocation on
// first use) cannot promise, and the exposition format is small enough to
// write by hand. It owns the metric names and their exposition; it must not
// touch sockets of the serving engine, parse requests, or change process
// state.
package metrics

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/procstate"
)

// ContentType is the Prometheus text exposition format's content type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Methods are the method label values; anything else is "other".
var Methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"}

// Classes are the status class label values; a status of 600 or more is
// "other".
var Classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

// Buckets are the request duration histogram's upper bounds, in seconds:
// from half a millisecond (an inline handler) to a minute (a slow upstream
// behind the proxy plugin).
var Buckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// bucketNanos are Buckets in nanoseconds, for the per-request comparison.
var bucketNanos = func() (b [len(Buckets)]int64) {
	for i, s := range Buckets {
		b[i] = int64(s * float64(time.Second))
	}
	return b
}()

const nStripes = 8

// stripe is one copy of the per-request counters. Requests update the
// stripe their Ctx hashes to, so loops on different cores rarely write the
// same cache line; a scrape sums the stripes.
type stripe struct {
	requests [len(Methods)][len(Classes)]atomic.Uint64
	buckets  [len(Buckets) + 1]atomic.Uint64 // per bucket, not cumulative; last is +Inf
	sumNanos atomic.Uint64
	bytesOut atomic.Uint64
	_        [64]byte
}

// Metrics holds the per-request counters and any extra metrics registered
// with AddGauge or AddCounter. It is safe for concurrent use.
type Metrics struct {
	stripes [nStripes]stripe
	mu      sync.Mutex
	extra   []extraMetric
}

// extraMetric is a value read at scrape time.
type extraMetric struct {
	name, help, typ string
	f               func() float64
}

// New returns empty metrics. Most programs use Default.
func New() *Metrics { return &Metrics{} }

var std = New()

// Default returns the process's metrics: the observer the serving process
// installs, and what Serve and the metrics plugin expose.
func Default() *Metrics { return std }

// Observe implements engine.Observer: it counts the request by method and
// status class, its duration in the histogram, and its response bytes.
// Atomic adds only: it never blocks or allocates.
func (m *Metrics) Observe(c *engine.Ctx, took time.Duration) {
	h := uint64(uintptr(unsafe.Pointer(c)))
	h ^= h >> 17
	h *= 0x9e3779b97f4a7c15
	s := &m.stripes[h>>61]
	s.requests[methodIndex(c.Method())][classIndex(c.Status())].Add(1)
	d := int64(took)
	i := 0
	for i < len(bucketNanos) && d > bucketNanos[i] {
		i++
	}
	s.buckets[i].Add(1)
	if d > 0 {
		s.sumNanos.Add(uint64(d))
	}
	s.bytesOut.Add(uint64(c.BytesSent()))
}

func methodIndex(m []byte) int {
	switch string(m) { // the compiler does not allocate for a switch on string(b)
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "DELETE":
		return 4
	case "PATCH":
		return 5
	case "OPTIONS":
		return 6
	}
	return 7
}

func classIndex(status int) int {
	if status >= 100 && status < 600 {
		return status/100 - 1
	}
	return 5
}

var nameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// AddGauge registers a gauge read by f at each scrape (for example the
// access log's dropped lines). The name must be a valid Prometheus metric
// name not already used.
func (m *Metrics) AddGauge(name, help string, f func() float64) error {
	return m.add(name, help, "gauge", f)
}

// AddCounter registers a counter read by f at each scrape; f must never
// decrease.
func (m *Metrics) AddCounter(name, help string, f func() float64) error {
	return m.add(name, help, "counter", f)
}

func (m *Metrics) add(name, help, typ string, f func() float64) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("metrics: invalid metric name %q", name)
	}
	if f == nil {
		return fmt.Errorf("metrics: %s: nil function", name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.extra {
		if e.name == name {
			return fmt.Errorf("metrics: %s registered twice", name)
		}
	}
	for _, n := range builtinNames {
		if n == name {
			return fmt.Errorf("metrics: %s is a built-in metric", name)
		}
	}
	m.extra = append(m.extra, extraMetric{name: name, help: help, typ: typ, f: f})
	return nil
}

// builtinNames are the metric families AppendText always writes.
var builtinNames = []string{
	"asyncd_http_requests_total", "asyncd_http_request_duration_seconds", "asyncd_http_response_bytes_total",
	"asyncd_requests_total", "asyncd_http_requests_in_flight", "asyncd_open_connections",
	"asyncd_read_bytes_total", "asyncd_written_bytes_total", "asyncd_http_rejected_requests_total",
	"asyncd_ready", "asyncd_generation", "asyncd_reloads_total", "asyncd_worker_restarts_total",
	"asyncd_process_start_time_seconds",
}

// header appends a metric family's HELP and TYPE lines.
func header(b []byte, name, help, typ string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = appendHelp(b, help)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// appendHelp escapes a HELP text as the format requires (\ and newline).
func appendHelp(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, s[i])
		}
	}
	return b
}

func sample(b []byte, name, labels string, v uint64) []byte {
	b = append(b, name...)
	b = append(b, labels...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\n')
}

func sampleFloat(b []byte, name, labels string, v float64) []byte {
	b = append(b, name...)
	b = append(b, labels...)
	b = append(b, ' ')
	b = appendFloat(b, v)
	return append(b, '\n')
}

func appendFloat(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// AppendText appends the exposition: the per-request counters, then the
// serving process's state from procstate (omitted before the process
// publishes it), then the extra metrics.
func (m *Metrics) AppendText(b []byte) []byte {
	var req [len(Methods)][len(Classes)]uint64
	var buckets [len(Buckets) + 1]uint64
	var sum, bytesOut uint64
	for i := range m.stripes {
		s := &m.stripes[i]
		for mi := range req {
			for ci := range req[mi] {
				req[mi][ci] += s.requests[mi][ci].Load()
			}
		}
		for bi := range buckets {
			buckets[bi] += s.buckets[bi].Load()
		}
		sum += s.sumNanos.Load()
		bytesOut += s.bytesOut.Load()
	}

	b = header(b, "asyncd_http_requests_total", "Responses sent, by method (other for a request line that did not parse) and status class: the engine's own answers (404, 405, parser rejections, timeouts) included.", "counter")
	for mi, meth := range Methods {
		for ci, class := range Classes {
			if class == "other" && req[mi][ci] == 0 {
				continue
			}
			b = append(b, "asyncd_http_requests_total{method=\""...)
			b = append(b, meth...)
			b = append(b, "\",code=\""...)
			b = append(b, class...)
			b = append(b, "\"} "...)
			b = strconv.AppendUint(b, req[mi][ci], 10)
			b = append(b, '\n')
		}
	}

	const hist = "asyncd_http_request_duration_seconds"
	b = header(b, hist, "Time from a request's head being parsed (for a refused head, its first bytes) to its response being queued.", "histogram")
	var cum uint64
	for i, ub := range Buckets {
		cum += buckets[i]
		b = append(b, hist+"_bucket{le=\""...)
		b = appendFloat(b, ub)
		b = append(b, "\"} "...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	cum += buckets[len(Buckets)]
	b = sample(b, hist+"_bucket", `{le="+Inf"}`, cum)
	b = sampleFloat(b, hist+"_sum", "", float64(sum)/1e9)
	b = sample(b, hist+"_count", "", cum)

	b = header(b, "asyncd_http_response_bytes_total", "Response bytes sent (head, body and chunk framing), the engine's own answers and streamed bodies included.", "counter")
	b = sample(b, "asyncd_http_response_bytes_total", "", bytesOut)

	if src := procstate.Current(); src != nil {
		b = appendProcess(b, src)
	}

	m.mu.Lock()
	extra := append([]extraMetric(nil), m.extra...)
	m.mu.Unlock()
	sort.Slice(extra, func(i, j int) bool { return extra[i].name < extra[j].name })
	for _, e := range extra {
		b = header(b, e.name, e.help, e.typ)
		b = sampleFloat(b, e.name, "", e.f())
	}
	return b
}

// appendProcess appends the serving process's state.
func appendProcess(b []byte, src procstate.Source) []byte {
	st := src.Stats()
	b = header(b, "asyncd_requests_total", "Requests answered by the serving process (what max_requests counts): routed requests and the engine's answers to parsed ones (404, 405 ...), without parser rejections and timeouts.", "counter")
	b = sample(b, "asyncd_requests_total", "", st.Requests)

	b = header(b, "asyncd_http_requests_in_flight", "Requests running off the event loops now.", "gauge")
	b = sample(b, "asyncd_http_requests_in_flight", "", uint64(max(st.InFlight, 0)))

	b = header(b, "asyncd_open_connections", "Open client connections, by event loop.", "gauge")
	for i, n := range st.ConnsPerLoop {
		b = append(b, "asyncd_open_connections{loop=\""...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, "\"} "...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, '\n')
	}

	b = header(b, "asyncd_read_bytes_total", "Bytes read from client sockets.", "counter")
	b = sample(b, "asyncd_read_bytes_total", "", st.BytesIn)
	b = header(b, "asyncd_written_bytes_total", "Bytes written to client sockets.", "counter")
	b = sample(b, "asyncd_written_bytes_total", "", st.BytesOut)

	b = header(b, "asyncd_http_rejected_requests_total", "Requests the parser refused, by the status answered.", "counter")
	codes := make([]int, 0, len(st.Rejected))
	for code := range st.Rejected {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	for _, code := range codes {
		b = append(b, "asyncd_http_rejected_requests_total{code=\""...)
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, "\"} "...)
		b = strconv.AppendUint(b, st.Rejected[code], 10)
		b = append(b, '\n')
	}

	ready := uint64(0)
	if src.Ready() {
		ready = 1
	}
	b = header(b, "asyncd_ready", "1 while the serving process accepts and serves new work, 0 before it starts and while it drains.", "gauge")
	b = sample(b, "asyncd_ready", "", ready)
	b = header(b, "asyncd_generation", "Generation of the serving process (1 for the first, +1 per reload or restart).", "gauge")
	b = sample(b, "asyncd_generation", "", uint64(max(procstate.Generation(), 0)))
	b = header(b, "asyncd_reloads_total", "Reloads the supervisor has done.", "counter")
	b = sample(b, "asyncd_reloads_total", "", uint64(max(procstate.Reloads(), 0)))
	b = header(b, "asyncd_worker_restarts_total", "Times the supervisor restarted a serving process that died.", "counter")
	b = sample(b, "asyncd_worker_restarts_total", "", uint64(max(procstate.Restarts(), 0)))
	b = header(b, "asyncd_process_start_time_seconds", "Start time of the serving process, in seconds since the Unix epoch.", "gauge")
	return sampleFloat(b, "asyncd_process_start_time_seconds", "", float64(procstate.Started().UnixNano())/1e9)
}

// ServeHTTP writes the exposition (net/http), for Serve and for programs
// that mount metrics on their own server.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body := m.AppendText(make([]byte, 0, 8<<10))
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body) //nolint:errcheck // the scraper went away; nothing to do
}
