package ui

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/trace"
)

// A drop of a flow the lab carried before the action now running is
// marked earlier, on either side of the NAT; a drop of a flow the action
// started is not, and neither is any drop before the first action.
func TestDropsOfEarlierFlows(t *testing.T) {
	topo, err := step.Parse("f.yaml", []byte("nodes:\n  srv: {kind: server, addresses: [203.0.113.10]}\n  home: {kind: nat, public: 203.0.113.1}\n  alice: {kind: host, behind: home}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{}
	w.setTopology(topo)
	ap := netip.MustParseAddrPort
	udp := func(src, dst string) trace.Packet { return trace.Packet{Proto: "udp", Src: ap(src), Dst: ap(dst)} }
	t0 := time.Now()
	out := udp("192.168.1.2:5000", "203.0.113.10:3478")
	public := udp("203.0.113.1:5000", "203.0.113.10:3478")
	if v := w.view("home", trace.Event{Time: t0, Kind: trace.Forwarded, In: lab.NATLAN, Before: out, After: &public}); v.Earlier {
		t.Error("a packet before any action is marked earlier")
	}
	early := w.view("home", trace.Event{Time: t0.Add(time.Millisecond), Kind: trace.Dropped, In: lab.NATUplink, Before: udp("203.0.113.10:3478", "203.0.113.1:5000"), Rule: natrules.DropForward})
	if early.Earlier {
		t.Error("a drop before any action is marked earlier")
	}
	w.actionStarted(t0.Add(time.Second))
	later := t0.Add(2 * time.Second)
	old := w.view("home", trace.Event{Time: later, Kind: trace.Dropped, In: lab.NATUplink, Before: udp("203.0.113.10:3478", "203.0.113.1:5000"), Rule: natrules.DropForward})
	if !old.Earlier || !strings.HasPrefix(old.Reason, "A flow from before this step") {
		t.Errorf("the reply of an earlier flow, dropped: earlier %v, reason %q", old.Earlier, old.Reason)
	}
	fresh := w.view("home", trace.Event{Time: later, Kind: trace.Dropped, In: lab.NATUplink, Before: udp("203.0.113.10:9", "203.0.113.1:5000"), Rule: natrules.DropForward})
	if fresh.Earlier {
		t.Error("a drop of a flow the action started is marked earlier")
	}
	// The same flow's next drop is the action's too: it began in it.
	if again := w.view("home", trace.Event{Time: later.Add(time.Millisecond), Kind: trace.Dropped, In: lab.NATUplink, Before: udp("203.0.113.1:5000", "203.0.113.10:9"), Rule: natrules.DropForward}); again.Earlier {
		t.Error("a flow the action started is marked earlier the second time")
	}
}
