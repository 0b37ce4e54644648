package trace_test

import (
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/trace"
)

// Stop may be called again, from a deferred Stop after an explicit one or
// from two owners: the second call does nothing and says what the first
// said, instead of closing a closed channel.
func TestStopTwice(t *testing.T) {
	ns, _ := testutil.NewNS(t, "stop")
	tr, err := trace.Start(t.Context(), ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	first := tr.Stop()
	if first != nil {
		t.Errorf("Stop: %v", first)
	}
	if second := tr.Stop(); second != first {
		t.Errorf("Stop again: %v, want what the first said, %v", second, first)
	}
	if _, open := <-tr.Events(); open {
		t.Error("Events delivers after Stop")
	}
}
