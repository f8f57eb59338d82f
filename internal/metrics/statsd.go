package metrics

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncd/asyncd/engine"
	"github.com/asyncd/asyncd/internal/procstate"
)

// StatsdInterval is how often a Statsd sends what it collected.
const StatsdInterval = time.Second

// statsdPacket bounds one UDP datagram: the common 1500-byte MTU minus IP
// and UDP headers and some room for tunnels, as StatsD clients do.
const statsdPacket = 1432

// statsdTimings bounds the durations waiting to be sent: at the default
// interval that is 16k requests a second with every timing kept; beyond
// it, timings are dropped (and counted) while counters stay exact.
const statsdTimings = 16 << 10

// Statsd is an engine.Observer that reports Gunicorn's StatsD metrics:
// gunicorn.requests (counter), gunicorn.request.status.<code> (counter),
// gunicorn.request.duration (timer, milliseconds) and gunicorn.workers
// (gauge: asyncd's event loops, its unit of work), each after the prefix.
// Observe only does atomic adds and a non-blocking channel send; a
// goroutine batches the metrics into UDP datagrams every StatsdInterval.
type Statsd struct {
	conn     net.Conn
	prefix   string
	tags     string // "|#k:v,..." or ""
	requests atomic.Uint64
	status   [1000]atomic.Uint64
	timings  chan uint32 // microseconds
	dropped  atomic.Uint64
	sendErrs atomic.Uint64
	done     chan struct{}
	exited   chan struct{}
	once     sync.Once
}

// NewStatsd starts reporting to the StatsD server at addr: host:port
// (UDP) or unix://PATH (a datagram unix socket), Gunicorn's statsd_host
// forms. prefix is prepended with a dot, as Gunicorn's statsd_prefix
// ("app" gives "app.gunicorn.requests"). tags, when not empty, are
// DogStatsD tags ("env:prod,team:web", Gunicorn's dogstatsd_tags) added to
// every metric as "|#tags".
func NewStatsd(addr, prefix, tags string) (*Statsd, error) {
	return newStatsd(addr, prefix, tags, StatsdInterval)
}

func newStatsd(addr, prefix, tags string, interval time.Duration) (*Statsd, error) {
	network, address := "udp", addr
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, address = "unixgram", strings.TrimPrefix(p, "//")
	}
	conn, err := net.Dial(network, address)
	if err != nil {
		return nil, fmt.Errorf("statsd %s: %w", addr, err)
	}
	if prefix = strings.TrimRight(prefix, "."); prefix != "" {
		prefix += "."
	}
	if tags = strings.ReplaceAll(tags, " ", ""); tags != "" {
		tags = "|#" + tags
	}
	s := &Statsd{conn: conn, prefix: prefix, tags: tags, timings: make(chan uint32, statsdTimings),
		done: make(chan struct{}), exited: make(chan struct{})}
	go s.run(interval)
	return s, nil
}

// Observe implements engine.Observer.
func (s *Statsd) Observe(c *engine.Ctx, took time.Duration) {
	s.requests.Add(1)
	if st := c.Status(); st >= 0 && st < len(s.status) {
		s.status[st].Add(1)
	}
	us := took / time.Microsecond
	if us > 1<<32-1 {
		us = 1<<32 - 1
	}
	select {
	case s.timings <- uint32(us):
	default:
		s.dropped.Add(1)
	}
}

// DroppedTimings reports the request durations not sent because more
// than the buffer held arrived within one interval.
func (s *Statsd) DroppedTimings() uint64 { return s.dropped.Load() }

// SendErrors reports datagrams that could not be sent (no StatsD server
// listening shows up here, as ICMP port unreachable).
func (s *Statsd) SendErrors() uint64 { return s.sendErrs.Load() }

func (s *Statsd) run(interval time.Duration) {
	defer close(s.exited)
	t := time.NewTicker(interval)
	defer t.Stop()
	pkt := make([]byte, 0, statsdPacket)
	for {
		select {
		case <-t.C:
			pkt = s.send(pkt)
		case <-s.done:
			s.send(pkt)
			return
		}
	}
}

// send reports what was collected since the last call.
func (s *Statsd) send(pkt []byte) []byte {
	pkt = pkt[:0]
	var line []byte
	emit := func() {
		if len(pkt) > 0 && len(pkt)+1+len(line) > statsdPacket {
			s.write(pkt)
			pkt = pkt[:0]
		}
		if len(pkt) > 0 {
			pkt = append(pkt, '\n')
		}
		pkt = append(pkt, line...)
	}
	if n := s.requests.Swap(0); n > 0 {
		line = s.metric(line[:0], "gunicorn.requests", strconv.FormatUint(n, 10), "c")
		emit()
	}
	for code := range s.status {
		if n := s.status[code].Swap(0); n > 0 {
			line = s.metric(line[:0], "gunicorn.request.status."+strconv.Itoa(code), strconv.FormatUint(n, 10), "c")
			emit()
		}
	}
	for drained := false; !drained; {
		select {
		case us := <-s.timings:
			ms := strconv.FormatFloat(float64(us)/1000, 'f', -1, 64)
			line = s.metric(line[:0], "gunicorn.request.duration", ms, "ms")
			emit()
		default:
			drained = true
		}
	}
	if src := procstate.Current(); src != nil {
		line = s.metric(line[:0], "gunicorn.workers", strconv.Itoa(len(src.Stats().ConnsPerLoop)), "g")
		emit()
	}
	if len(pkt) > 0 {
		s.write(pkt)
	}
	return pkt[:0]
}

func (s *Statsd) metric(b []byte, name, value, typ string) []byte {
	b = append(b, s.prefix...)
	b = append(b, name...)
	b = append(b, ':')
	b = append(b, value...)
	b = append(b, '|')
	b = append(b, typ...)
	return append(b, s.tags...)
}

func (s *Statsd) write(p []byte) {
	if _, err := s.conn.Write(p); err != nil {
		s.sendErrs.Add(1)
	}
}

// Close sends what is pending and stops. It is idempotent.
func (s *Statsd) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		<-s.exited
		err = s.conn.Close()
	})
	return err
}
