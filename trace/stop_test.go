package trace_test

import (
	"testing"

	"github.com/google/nftables"
	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/natrules"
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

// A tracer holds its namespace itself: the caller may close the
// descriptor it gave Start at once (the runner and the tour do), and Stop
// still removes the trace table from that NAT. Before, Stop used the
// caller's closed descriptor and left the table logging every packet.
func TestStopAfterTheCallerClosedTheNamespace(t *testing.T) {
	l, ns := upNAT(t)
	theirs, err := namedns.Open(l.Namespace("nat"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trace.Start(t.Context(), theirs.Fd())
	theirs.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !hasTraceTable(t, ns) {
		t.Fatal("no trace table while tracing")
	}
	if err := tr.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if hasTraceTable(t, ns) {
		t.Error("the trace table is still in the NAT after Stop")
	}
}

// Open starts a trace by the namespace's name, as the tour, the page, the
// runner and natlab trace do.
func TestOpenByName(t *testing.T) {
	l, ns := upNAT(t)
	tr, err := trace.Open(t.Context(), l.Namespace("nat"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if hasTraceTable(t, ns) {
		t.Error("the trace table is still in the NAT after Stop")
	}
	if _, err := trace.Open(t.Context(), l.Namespace("nat")+"-nobody"); err == nil {
		t.Error("Open of a namespace that does not exist: no error")
	}
}

func hasTraceTable(t *testing.T, ns *namedns.NS) bool {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	want := natrules.TraceTable()
	for _, tab := range tables {
		if tab.Name == want.Name && tab.Family == want.Family {
			return true
		}
	}
	return false
}
