package engine

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestRequestContextDerived: contexts derived from a request context, also
// through a context.WithValue (as the net/http adapter and middleware
// add), join the standard library's cancel tree: no goroutine watches each
// one, and they end with it, their cause the request context's error.
func TestRequestContextDerived(t *testing.T) {
	r := newRequestContext(time.Now().Add(time.Minute), false)
	base := runtime.NumGoroutine()
	type key struct{}
	var children []context.Context
	for range 100 {
		c, cancel := context.WithTimeout(context.WithValue(r, key{}, 1), time.Hour)
		defer cancel()
		children = append(children, c)
	}
	if n := runtime.NumGoroutine() - base; n > 10 {
		t.Fatalf("%d goroutines for 100 derived contexts", n)
	}
	if d, ok := children[0].Deadline(); !ok || !d.Equal(r.deadline) {
		t.Fatalf("derived deadline %v %v, want the request's (the earlier)", d, ok)
	}
	r.started.Store(true)
	if _, ok := r.Deadline(); ok {
		t.Fatal("deadline reported after the response started")
	}
	if _, ok := children[0].Deadline(); ok {
		t.Fatal("a derived context that took the request's deadline still reports it after the response started")
	}
	r.end(context.DeadlineExceeded)
	r.end(context.Canceled) // the first call wins
	for _, c := range children {
		<-c.Done()
		if context.Cause(c) != context.DeadlineExceeded {
			t.Fatalf("derived cause %v", context.Cause(c))
		}
	}
	if r.Err() != context.DeadlineExceeded || context.Cause(r) != context.DeadlineExceeded {
		t.Fatalf("Err %v, Cause %v", r.Err(), context.Cause(r))
	}
}
