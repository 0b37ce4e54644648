package linkshape

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/nfqueue"
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
		if d := plans["n-home"].Devices["alice"]; d.Egress != down || d.Ingress != up || d.MTU != 1400 || d.Bridge != "lan0" {
			t.Errorf("%s: the NAT's end of alice's link is %+v, want her down direction out, her up direction in, mtu 1400, bridge lan0", mech, d)
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
	// Alice's up direction is held by the NAT, a router, as her packets
	// arrive, and by alice for what she sends bob, an endpoint beside her
	// (known by his address), before it leaves: bob then stamps its
	// arrival when it is due. Her down direction is held where it is sent
	// from: by her NAT and by bob.
	alice := Neighbour{Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.2")}, Hold: Hold{Delay: 10 * ms, Jitter: ms}}
	if n := q["n-home"].FromLAN["alice"]; !slices.Equal(n.Addrs, alice.Addrs) || n.Hold != alice.Hold {
		t.Errorf("the NAT holds what comes from alice for %+v, want %+v", n, alice)
	}
	if a := q["n-alice"]; a.Up != alice.Hold || a.UplinkIndex != 2 || a.Forwards {
		t.Errorf("alice's queue is %+v, want her up direction", a)
	}
	if n, ok := q["n-alice"].Peers["bob"]; !ok || n.Hold != (Hold{}) || !slices.Equal(n.Addrs, []netip.Addr{netip.MustParseAddr("192.168.1.3")}) {
		t.Errorf("alice holds what she sends bob as %+v, %v; want bob's address and no down direction of his", n, ok)
	}
	aliceDown := Hold{Delay: 30 * ms, Reorder: 5}
	if n := q["n-home"].LAN["alice"]; n.Hold != aliceDown || !slices.Equal(n.Addrs, alice.Addrs) {
		t.Errorf("the NAT holds what it sends alice for %+v, want %+v", n, aliceDown)
	}
	if n := q["n-bob"].Peers["alice"]; n.Hold != aliceDown {
		t.Errorf("bob holds what he sends alice for %+v, want %+v", n.Hold, aliceDown)
	}
	if !q["n-home"].Forwards || q["n-home"].Down != (Hold{}) {
		t.Errorf("the NAT's queue is %+v, want one that forwards, with no down direction of its own", q["n-home"])
	}
	// The server's up direction: the NAT beside it, a router, holds it
	// as its packets arrive; the server holds nothing itself, having no
	// endpoint beside it.
	if n := q["n-home"].FromPeers["srv"]; n.Hold != (Hold{Delay: 5 * ms}) {
		t.Errorf("the NAT holds what comes from the server for %+v", n.Hold)
	}
	if s := q["n-srv"]; s.Up != (Hold{Delay: 5 * ms}) || len(s.Peers) != 0 {
		t.Errorf("the server's queue is %+v, want its up direction and no endpoint beside it", s)
	}
	if _, ok := q["n-internet"]; ok {
		t.Errorf("the internet, a switch that sends nothing of its own, has a queue: %+v", q["n-internet"])
	}
	// A router's own down direction it holds as it arrives.
	links["home"] = State{Link: linkcond.Link{Down: linkcond.Direction{Delay: 7 * ms}}}
	q = Queues(PlanLab(testWires, links, DelayLine))
	if h := q["n-home"].Down; h != (Hold{Delay: 7 * ms}) {
		t.Errorf("the NAT holds what arrives through its uplink for %+v, want its down direction", h)
	}
	if _, ok := q["n-srv"].Peers["home"]; ok {
		t.Error("the server holds what it sends the NAT, a router, which holds it itself")
	}
	links["alice"] = State{Link: links["alice"].Link, Down: true}
	q = Queues(PlanLab(testWires, links, DelayLine))
	if !q["n-home"].LAN["alice"].Hold.Cut || !q["n-alice"].Up.Cut || !q["n-bob"].Peers["alice"].Hold.Cut || !q["n-home"].FromLAN["alice"].Hold.Cut {
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

// The delay line tells where a packet was taken and the neighbours it
// comes from and goes to by its devices and addresses: an address of the
// neighbour's, or for IPv6 a prefix routed through it, the longest that
// holds it.
func TestClassify(t *testing.T) {
	ms := time.Millisecond
	c := compile(&Queue{
		UplinkIndex: 2,
		Up:          Hold{Delay: ms},
		Down:        Hold{Delay: 2 * ms},
		Peers:       map[string]Neighbour{"srv": {Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.10")}, Hold: Hold{Delay: 3 * ms}}},
		LAN:         map[string]Neighbour{"alice": {Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.2")}, Hold: Hold{Delay: 4 * ms, Cut: true}}},
		FromPeers: map[string]Neighbour{
			"isp":    {Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::/64"), netip.MustParsePrefix("2001:db8:0:2::/64")}, Hold: Hold{Delay: 5 * ms}},
			"office": {Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:0:2::/80")}, Hold: Hold{Delay: 6 * ms}},
		},
		FromLAN: map[string]Neighbour{"alice": {Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.2")}, Hold: Hold{Delay: 7 * ms}}},
	})
	a := netip.MustParseAddr
	for _, tc := range []struct {
		in, out  uint32
		src, dst string
		want     flowKey
		delays   []time.Duration
	}{
		{2, 0, "2001:db8:0:1::9", "2001:db8:0:3::1", flowKey{way: inUplink, from: "isp"}, []time.Duration{5 * ms, 2 * ms}},
		{2, 0, "2001:db8:0:2::9", "2001:db8:0:3::1", flowKey{way: inUplink, from: "office"}, []time.Duration{6 * ms, 2 * ms}},
		{2, 0, "2001:db8:0:2:1::9", "2001:db8:0:3::1", flowKey{way: inUplink, from: "isp"}, []time.Duration{5 * ms, 2 * ms}},
		{2, 0, "198.51.100.1", "203.0.113.1", flowKey{way: inUplink}, []time.Duration{2 * ms}},
		{1, 0, "192.168.1.2", "203.0.113.10", flowKey{way: inLAN, from: "alice", to: "srv"}, []time.Duration{7 * ms, ms, 3 * ms}},
		{1, 0, "192.168.1.2", "203.0.113.1", flowKey{way: inLAN, from: "alice"}, []time.Duration{7 * ms}},
		{0, 2, "203.0.113.1", "203.0.113.10", flowKey{way: outUplink, to: "srv"}, []time.Duration{ms, 3 * ms}},
		{1, 5, "203.0.113.10", "192.168.1.2", flowKey{way: outLAN, to: "alice"}, []time.Duration{4 * ms}},
	} {
		k := c.classify(&nfqueue.Packet{InDev: tc.in, OutDev: tc.out, Src: a(tc.src), Dst: a(tc.dst)})
		if k != tc.want {
			t.Errorf("in %d out %d %s -> %s: %+v, want %+v", tc.in, tc.out, tc.src, tc.dst, k, tc.want)
		}
		var buf [4]Hold
		var got []time.Duration
		for _, h := range c.stages(k, &buf) {
			got = append(got, h.Delay)
		}
		if !slices.Equal(got, tc.delays) {
			t.Errorf("%+v crosses delays %v, want %v", k, got, tc.delays)
		}
	}
	if !c.cut(flowKey{way: outLAN, to: "alice"}) || c.cut(flowKey{way: inLAN, from: "alice", to: "srv"}) {
		t.Error("cut: want only what goes down to alice, whose link is down")
	}
}

// Under netem the node's own end keeps only its up direction's rate: the
// rest is held where the packets arrive. The bridge's end, and every end
// under the delay line, carries its whole egress direction.
func TestEgressOf(t *testing.T) {
	d := linkcond.Direction{Delay: 10 * time.Millisecond, Loss: 1, Rate: 2_000_000}
	own := &Device{Name: "eth0", Egress: d}
	port := &Device{Name: "alice", Egress: d, Bridge: "lan0"}
	for _, tc := range []struct {
		dev  *Device
		mech Mechanism
		want linkcond.Direction
	}{
		{own, Netem, linkcond.Direction{Rate: 2_000_000}},
		{own, DelayLine, d},
		{port, Netem, d},
		{port, DelayLine, d},
	} {
		if got := egressOf(tc.dev, tc.mech); got != tc.want {
			t.Errorf("%s under %s: %+v, want %+v", tc.dev.Name, tc.mech, got, tc.want)
		}
	}
}
