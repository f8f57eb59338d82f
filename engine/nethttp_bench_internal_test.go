package engine

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// The net/http adapter's cost per request, in memory (memConn: no socket,
// no system call), with examples/dbapi's users API minus its database: a
// ServeMux with GET /users/{id} answering a user as JSON. Each variant adds
// one stage of what asyncd async does per request, so their differences
// attribute the CPU time and the allocations (examples/dbapi/PROFILE.md):
//
//   - handler-only: the mux and the handler, called directly: what any
//     server pays;
//   - inline: the adapter on the loop (worker_class sync): http.Request,
//     header map, ResponseWriter, the mux and the handler;
//   - offloop-samegoroutine: plus the off-loop path (the head copied out
//     of the input, the response serialized into the Ctx and copied to the
//     loop's output on wake, the Ctx's mutex), the task run inside Submit,
//     so no goroutine switch;
//   - offloop-handoff: plus the two hand-offs, loop to a pooled goroutine
//     through a channel and back through a wake, as asyncd async makes
//     them, without the system calls of a real loop's wake.
//
//	go test -run '^$' -bench NetHTTPAdapter -benchmem ./engine/

// benchUser is the example's User.
type benchUser struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

var benchCreated = time.Date(2026, 12, 6, 21, 33, 1, 798215000, time.UTC)

// usersMux is examples/dbapi's users.NewMux with the row made up instead
// of queried.
func usersMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			http.Error(w, "id must be a positive integer", http.StatusBadRequest)
			return
		}
		s := strconv.FormatInt(id, 10)
		b, err := json.Marshal(&benchUser{ID: id, Name: "User " + s, Email: "user" + s + "@example.com", CreatedAt: benchCreated})
		if err != nil {
			http.Error(w, "encode", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(append(b, '\n')) //nolint:errcheck
	})
	return mux
}

// UsersMuxForBench is usersMux for the engine_test package's benchmarks
// over real sockets (nethttp_bench_test.go).
var UsersMuxForBench = usersMux

// BenchUsersRequest is what wrk sends for GET /users/42.
const BenchUsersRequest = "GET /users/42 HTTP/1.1\r\nHost: 127.0.0.1:8090\r\n\r\n"

// runNow runs each task inside Submit, on the submitting goroutine.
type runNow struct{}

func (runNow) Submit(_ int, t Task) bool { t.Run(); return true }

// chanPool is a fixed pool of goroutines taking tasks from a channel: the
// elastic pool's path when a goroutine waits (internal/serving/executor.go).
type chanPool chan Task

func newChanPool(tb testing.TB, n int) chanPool {
	p := make(chanPool, n)
	for range n {
		go func() {
			for t := range p {
				t.Run()
			}
		}()
	}
	tb.Cleanup(func() { close(p) })
	return p
}

// NewTaskPoolForBench is newChanPool for the engine_test package.
func NewTaskPoolForBench(tb testing.TB, n int) Executor { return newChanPool(tb, n) }

func (p chanPool) Submit(_ int, t Task) bool {
	select {
	case p <- t:
		return true
	default:
		return false
	}
}

// wakeConn is a memConn whose Wake also signals a channel, for a loop
// goroutine that waits for it.
type wakeConn struct {
	*memConn
	woke chan struct{}
}

func (w *wakeConn) Wake() bool {
	w.memConn.Wake()
	w.woke <- struct{}{}
	return true
}

// discardWriter is an http.ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func BenchmarkNetHTTPAdapter(b *testing.B) {
	req := []byte(BenchUsersRequest)
	want := "HTTP/1.1 200 OK\r\n"
	check := func(b *testing.B, out []byte) {
		if len(out) < len(want) || string(out[:len(want)]) != want {
			b.Fatalf("response: %q", out)
		}
	}
	route := func() *Route { return &Route{Path: "/users/", Handler: HTTPHandler(usersMux())} }

	// The mux and the handler alone, on a request built once and a
	// ResponseWriter that keeps nothing: what any server pays.
	b.Run("handler-only", func(b *testing.B) {
		h := usersMux()
		r, err := http.NewRequest("GET", "http://127.0.0.1:8090/users/42", nil)
		if err != nil {
			b.Fatal(err)
		}
		w := &discardWriter{header: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.header)
			h.ServeHTTP(w, r)
		}
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	})

	b.Run("inline", func(b *testing.B) {
		e := newTestEngine(b, Config{ServerHeader: "asyncd"}, route())
		m := &memConn{}
		e.OnOpen(m)
		b.ReportAllocs()
		for b.Loop() {
			m.out = m.out[:0]
			e.OnRead(m, req)
		}
		check(b, m.out)
	})

	b.Run("offloop-samegoroutine", func(b *testing.B) {
		e := newTestEngine(b, Config{ServerHeader: "asyncd", Dispatch: OffLoop, Executor: runNow{}, MaxInflight: 1000}, route())
		m := &memConn{}
		e.OnOpen(m)
		b.ReportAllocs()
		for b.Loop() {
			m.out = m.out[:0]
			e.OnRead(m, req)
			e.OnWake(m)
		}
		check(b, m.out)
	})

	b.Run("offloop-handoff", func(b *testing.B) {
		e := newTestEngine(b, Config{ServerHeader: "asyncd", Dispatch: OffLoop, Executor: newChanPool(b, 16), MaxInflight: 1000}, route())
		w := &wakeConn{memConn: &memConn{}, woke: make(chan struct{}, 1)}
		e.OnOpen(w)
		b.ReportAllocs()
		for b.Loop() {
			w.out = w.out[:0]
			e.OnRead(w, req)
			<-w.woke
			e.OnWake(w)
		}
		check(b, w.out)
	})
}
