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

var testMACs = map[string]MAC{"srv": {2, 0, 0, 0, 0, 1}, "home": {2, 0, 0, 0, 0, 2}, "alice": {2, 0, 0, 0, 0, 3}, "bob": {2, 0, 0, 0, 0, 4}}

func TestPlanDevices(t *testing.T) {
	up := linkcond.Direction{Delay: 10 * time.Millisecond, Rate: 1_000_000}
	down := linkcond.Direction{Loss: 2}
	links := map[string]State{"alice": {Link: linkcond.Link{Up: up, Down: down, MTU: 1400}}}
	for _, mech := range []Mechanism{Netem, DelayLine} {
		plans := PlanLab(testWires, links, mech, testMACs)
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

func TestPlanQueues(t *testing.T) {
	ms := time.Millisecond
	links := map[string]State{
		"alice": {Link: linkcond.Link{Up: linkcond.Direction{Delay: 10 * ms, Jitter: ms}, Down: linkcond.Direction{Delay: 30 * ms, Reorder: 5}}},
		"srv":   {Link: linkcond.Link{Up: linkcond.Direction{Delay: 5 * ms, Loss: 1}}},
	}
	if q := Queues(PlanLab(testWires, links, Netem, testMACs)); len(q) != 0 {
		t.Errorf("netem got delay line queues %v", q)
	}
	q := Queues(PlanLab(testWires, links, DelayLine, testMACs))
	aliceUp := Hold{Delay: 10 * ms, Jitter: ms}
	// Alice's up direction is held where her frames arrive: her NAT and
	// the host beside her; her down direction in her own namespace.
	if h := q["n-home"].Senders[testMACs["alice"]]; h != aliceUp {
		t.Errorf("the NAT holds alice's frames for %+v, want %+v", h, aliceUp)
	}
	if h := q["n-bob"].Senders[testMACs["alice"]]; h != aliceUp {
		t.Errorf("bob holds alice's frames for %+v, want %+v", h, aliceUp)
	}
	if h := q["n-alice"].Down; h != (Hold{Delay: 30 * ms, Reorder: 5}) || q["n-alice"].UplinkIndex != 2 {
		t.Errorf("alice holds what she receives for %+v, want her down direction", q["n-alice"])
	}
	// The server's up direction is held by the NAT beside it on the
	// internet, not by the hosts behind the NAT, which get the NAT's
	// frames.
	if h := q["n-home"].Senders[testMACs["srv"]]; h != (Hold{Delay: 5 * ms}) {
		t.Errorf("the NAT holds the server's frames for %+v", h)
	}
	if _, ok := q["n-alice"].Senders[testMACs["srv"]]; ok {
		t.Error("alice holds the server's frames, which never reach her")
	}
	if _, ok := q["n-srv"]; ok {
		t.Errorf("the server, whose neighbours send with no delay, has a queue: %+v", q["n-srv"])
	}
	links["alice"] = State{Link: links["alice"].Link, Down: true}
	q = Queues(PlanLab(testWires, links, DelayLine, testMACs))
	if !q["n-home"].Senders[testMACs["alice"]].Cut || !q["n-alice"].Down.Cut {
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
