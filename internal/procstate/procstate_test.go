package procstate

import "testing"

type source bool

func (s source) Stats() Stats { return Stats{} }
func (s source) Ready() bool  { return bool(s) }

// TestInstanceReady: readiness is the instance's, not the process's: a
// generation handing over to a newer one (replaced) stays ready though it
// drains; SIGTERM (stopping) ends readiness whatever the process says.
func TestInstanceReady(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		published, ready             bool
		replaced, stopping, expected bool
	}{
		{name: "not serving yet"},
		{name: "serving", published: true, ready: true, expected: true},
		{name: "process drains, instance too", published: true},
		{name: "replaced by a newer generation", published: true, replaced: true, expected: true},
		{name: "stopping", published: true, ready: true, stopping: true},
		{name: "replaced, then stopping", published: true, replaced: true, stopping: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src.Store(nil)
			if tc.published {
				Publish(source(tc.ready))
			}
			replaced.Store(tc.replaced)
			stopping.Store(tc.stopping)
			if got := InstanceReady(); got != tc.expected {
				t.Errorf("InstanceReady() = %v, want %v", got, tc.expected)
			}
		})
	}
}
