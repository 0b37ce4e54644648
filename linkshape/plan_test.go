package linkshape

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/natlab/natlab/linkcond"
)

// wires of a lab: a server and a NAT on the internet, two hosts behind
// the NAT.
var testWires = []Wire{
	{Node: "srv", NS: "n-srv", Uplink: "eth0", UplinkIndex: 2, ParentNS: "n-internet", Port: "srv", Bridge: "internet", Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.10")}},
	{Node: "home", NS: "n-home", Uplink: "wan0", UplinkIndex: 2, ParentNS: "n-internet", Port: "home", Bridge: "internet", Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.1")}},
	{Node: "alice", NS: "n-alice", Uplink: "eth0", UplinkIndex: 2, ParentNS: "n-home", Port: "alice", Bridge: "lan0", Segment: "home", Routed: true, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.2")}},
	{Node: "bob", NS: "n-bob", Uplink: "eth0", UplinkIndex: 2, ParentNS: "n-home", Port: "bob", Bridge: "lan0", Segment: "home", Routed: true, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.3")}},
}

func TestPlanDevices(t *testing.T) {
	up := linkcond.Direction{Delay: 10 * time.Millisecond, Rate: 1_000_000}
	down := linkcond.Direction{Loss: 2}
	links := map[string]State{"alice": {Link: linkcond.Link{Up: up, Down: down, MTU: 1400}}}
	for _, mech := range []Mechanism{Netem, DelayLine} {
		plans := PlanLab(testWires, links, mech)
		if d := plans["n-alice"].Devices["eth0"]; d.Egress != up || d.MTU != 1400 || d.Bridge != "" {
			t.Errorf("%s: alice's end is %+v, want her up direction and mtu 1400", mech, d)
		}
		if d := plans["n-home"].Devices["alice"]; d.Egress != down || d.MTU != 1400 || d.Bridge != "lan0" {
			t.Errorf("%s: the NAT's end of alice's link is %+v, want her down direction, mtu 1400, bridge lan0", mech, d)
		}
		want := []Route{{Dev: "lan0", Addr: netip.MustParseAddr("192.168.1.2"), MTU: 1400}, {Dev: "lan0", Addr: netip.MustParseAddr("192.168.1.3")}}
		if got := plans["n-home"].Routes; !slices.Equal(got, want) {
			t.Errorf("%s: the NAT's routes are %+v, want %+v", mech, got, want)
		}
		if plans["n-internet"].Routes != nil {
			t.Errorf("%s: the internet, a switch, got routes %+v", mech, plans["n-internet"].Routes)
		}
		if plans["n-srv"].IsZero() != true || plans["n-alice"].IsZero() {
			t.Errorf("%s: IsZero: srv %v, alice %v; want true, false", mech, plans["n-srv"].IsZero(), plans["n-alice"].IsZero())
		}
	}
}

// On the internet, a switch, each node routes to a neighbour whose link is
// narrower than its own with that link's MTU, in place of the router that
// would answer for the narrow link.
func TestPlanInternetRoutes(t *testing.T) {
	links := map[string]State{"srv": {Link: linkcond.Link{MTU: 1400}}, "alice": {Link: linkcond.Link{MTU: 1300}}}
	plans := PlanLab(testWires, links, DelayLine)
	want := Route{Dev: "wan0", DevIndex: 2, Addr: netip.MustParseAddr("203.0.113.10"), MTU: 1400}
	if got := plans["n-home"].Routes; !slices.Contains(got, want) {
		t.Errorf("the NAT's routes are %+v, want one of them %+v", got, want)
	}
	for _, r := range plans["n-srv"].Routes {
		t.Errorf("the server, whose link is the narrower, got a route %+v", r)
	}
	for _, r := range plans["n-home"].Routes {
		if r.Dev == "wan0" && r.Addr != want.Addr {
			t.Errorf("the NAT routes over the internet to %v, not a neighbour there", r.Addr)
		}
	}
}

func TestPlanQueues(t *testing.T) {
	ms := time.Millisecond
	links := map[string]State{
		"alice": {Link: linkcond.Link{Up: linkcond.Direction{Delay: 10 * ms, Jitter: ms}, Down: linkcond.Direction{Delay: 30 * ms, Reorder: 5}}},
		"srv":   {Link: linkcond.Link{Up: linkcond.Direction{Delay: 5 * ms, Loss: 1}}},
	}
	if q := Queues(PlanLab(testWires, links, Netem)); len(q) != 0 {
		t.Errorf("netem got delay line queues %v", q)
	}
	q := Queues(PlanLab(testWires, links, DelayLine))
	// Alice's up direction is held where she sends it, in her own
	// namespace; her down direction where it is sent from: by her NAT and
	// by the host beside her, before she receives (and stamps) it.
	if a := q["n-alice"]; a.Up != (Hold{Delay: 10 * ms, Jitter: ms}) || a.UplinkIndex != 2 || a.Forwards {
		t.Errorf("alice holds what she sends for %+v, want her up direction", a)
	}
	aliceDown := Receiver{Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.2")}, Hold: Hold{Delay: 30 * ms, Reorder: 5}}
	if r := q["n-home"].LAN["alice"]; !slices.Equal(r.Addrs, aliceDown.Addrs) || r.Hold != aliceDown.Hold {
		t.Errorf("the NAT holds what it sends alice for %+v, want %+v", r, aliceDown)
	}
	if !q["n-home"].Forwards {
		t.Error("the NAT's queue does not hold what it forwards")
	}
	if r := q["n-bob"].Peers["alice"]; r.Hold != aliceDown.Hold {
		t.Errorf("bob holds what he sends alice for %+v, want %+v", r.Hold, aliceDown.Hold)
	}
	if _, ok := q["n-srv"].Peers["alice"]; ok {
		t.Error("the server holds what it sends alice, which it never sends her directly")
	}
	// The server's up direction is held by the server alone; its down
	// direction has no delay, so no neighbour holds anything for it.
	if h := q["n-srv"].Up; h != (Hold{Delay: 5 * ms}) {
		t.Errorf("the server holds what it sends for %+v", h)
	}
	if _, ok := q["n-home"].Peers["srv"]; ok {
		t.Error("the NAT holds what it sends the server, whose down direction has no delay")
	}
	if _, ok := q["n-internet"]; ok {
		t.Errorf("the internet, a switch that sends nothing of its own, has a queue: %+v", q["n-internet"])
	}
	links["alice"] = State{Link: links["alice"].Link, Down: true}
	q = Queues(PlanLab(testWires, links, DelayLine))
	if !q["n-home"].LAN["alice"].Hold.Cut || !q["n-alice"].Up.Cut || !q["n-bob"].Peers["alice"].Hold.Cut {
		t.Error("a link that is down does not cut what is held from it")
	}
}

func TestAffected(t *testing.T) {
	for _, c := range []struct {
		node string
		want []string
	}{
		{"alice", []string{"n-alice", "n-home", "n-bob"}},
		{"home", []string{"n-home", "n-internet", "n-srv"}},
		{"nobody", nil},
	} {
		if got := Affected(testWires, c.node); !slices.Equal(got, c.want) {
			t.Errorf("Affected(%s) = %v, want %v", c.node, got, c.want)
		}
	}
}

// The delay line finds the receiver of a packet by its destination: an
// address of the receiver's, or for IPv6 a prefix routed through it, the
// longest that holds it; up only among the neighbours, down only on the
// LAN.
func TestReceiverOfAPacket(t *testing.T) {
	ms := time.Millisecond
	c := compile(&Queue{
		Peers: map[string]Receiver{
			"isp":  {Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::2")}, Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::/64"), netip.MustParsePrefix("2001:db8:0:2::/64")}, Hold: Hold{Delay: ms}},
			"home": {Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:0:2::/80")}, Hold: Hold{Delay: 2 * ms}},
		},
		LAN: map[string]Receiver{"alice": {Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.2")}, Hold: Hold{Delay: 3 * ms, Cut: true}}},
	})
	for _, tc := range []struct {
		up   bool
		dst  string
		want string
	}{
		{true, "2001:db8::2", "isp"},
		{true, "2001:db8:0:1::9", "isp"},
		{true, "2001:db8:0:2::9", "home"}, // the longer prefix
		{true, "2001:db8:0:2:1::9", "isp"},
		{true, "203.0.113.1", "home"},
		{true, "192.168.1.2", ""}, // alice is not reached up
		{false, "192.168.1.2", "alice"},
		{false, "203.0.113.1", ""},
	} {
		node, _, ok := c.receiver(tc.up, netip.MustParseAddr(tc.dst))
		if node != tc.want || ok != (tc.want != "") {
			t.Errorf("receiver(up %v, %s) = %q, %v; want %q", tc.up, tc.dst, node, ok, tc.want)
		}
	}
	if !c.cut(flowKey{to: "alice"}) || c.cut(flowKey{up: true, to: "alice"}) || c.cut(flowKey{up: true, to: "isp"}) {
		t.Error("cut: want only what goes down to alice, whose link is down")
	}
}
