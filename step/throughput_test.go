package step

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/topology"
)

// A throughput step over the path a punch kept: on loopback, which
// carries far more, its goodput is the offer; without a punched path it
// says to punch first.
func TestThroughputRun(t *testing.T) {
	testutil.CheckRoutines(t)
	env := newLoopEnv(t, "alice", "127.0.0.1", "bob", "127.0.0.2")
	s := Throughput{From: "alice", To: "bob", Via: ViaDirect, For: 300 * time.Millisecond, Offer: 5_000_000, Expect: "ok"}
	if _, err := s.Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "punch first") {
		t.Errorf("a throughput step with no punched path: %v", err)
	}
	ca, err := env.Fresh("alice", topology.FamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := env.Fresh("bob", topology.FamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }
	env.mem.KeepPath("alice", "bob", topology.FamilyIPv4, Path{ca, addr(cb)})
	env.mem.KeepPath("bob", "alice", topology.FamilyIPv4, Path{cb, addr(ca)})
	res, err := s.Run(context.Background(), env)
	if err != nil || !res.Pass {
		t.Fatalf("%+v, %v", res, err)
	}
	g := res.Throughput
	if g == nil || g.Goodput < 0.9*5e6 || g.Goodput > 1.1*5e6 || g.Received != g.Sent {
		t.Fatalf("throughput %+v, want the offer of 5 Mbit/s ± 10%%, every datagram received", g)
	}
	if m := res.Measured(); !strings.Contains(m, "goodput ") || !strings.Contains(m, "of 5.00 Mbit/s offered, 0% lost") {
		t.Errorf("measured %q", m)
	}
	if bps, ok := env.mem.Goodput("alice", "bob"); !ok || bps != g.Goodput {
		t.Errorf("the direct path's goodput is not kept for a relay to compare with: %v %v", bps, ok)
	}

	// A path that carries nothing: alice's end points where bob is not.
	dead, err := env.Fresh("bob", topology.FamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	nowhere := addr(dead)
	dead.Close()
	env.mem.KeepPath("alice", "bob", topology.FamilyIPv4, Path{ca, nowhere})
	s.Expect = "fail"
	res, err = s.Run(context.Background(), env)
	if err != nil || !res.Pass || res.Observed != "fail" || !strings.Contains(res.Detail, "nothing arrived") {
		t.Errorf("a path that carries nothing: %+v, %v", res, err)
	}
}

// An upgrade's result shows the relay's RTT and then the direct one's.
func TestMeasuredRelayThenDirect(t *testing.T) {
	r := Result{RelayRTT: NewRTT([]time.Duration{160 * time.Millisecond, 162 * time.Millisecond}), RTT: NewRTT([]time.Duration{40 * time.Millisecond})}
	if got, want := r.Measured(), "relay rtt min/median/max 160ms/162ms/162ms, then direct rtt 40ms"; got != want {
		t.Errorf("measured %q, want %q", got, want)
	}
}

const throughputScenario = `nodes:
  relay: {kind: server, services: [stun, turn]}
  stun:  {kind: server, services: [stun]}
  nat-a: {kind: nat}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host, behind: nat-a}
steps:
`

// A throughput step's values are checked where they stand, and it
// describes itself with every default spelt out.
func TestThroughputRead(t *testing.T) {
	topo, err := Parse("tp.yaml", []byte(throughputScenario+"  - throughput: {from: alice, to: bob}\n  - throughput: {from: bob, to: alice, via: relay, offer: 2mbit, for: 500ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		"throughput alice -> bob direct: from alice to bob over the direct path, 100mbit offered for 1s, expect ok",
		"throughput bob -> alice relay: from bob to alice over turn server relay, 2mbit offered for 500ms, expect ok",
	} {
		if got := topo.Steps[i].Name + ":" + UnitOf(topo.Steps[i]).Describe(); got != want {
			t.Errorf("step %d: %q, want %q", i, got, want)
		}
	}
	for _, c := range []struct{ step, want string }{
		{"{from: alice, to: alice}", "tp.yaml:8:35: steps[0].throughput.to: alice is the sender too"},
		{"{from: alice, to: bob, server: relay}", "steps[0].throughput.server: a server is for via: relay"},
		{"{from: alice, to: bob, via: relay, server: stun}", "steps[0].throughput.server"},
		{"{from: alice, to: bob, via: turn}", "steps[0].throughput.via"},
		{"{from: alice, to: bob, offer: 2gbit}", "steps[0].throughput.offer: 2gbit is out of range; want 8kbit to 1gbit"},
		{"{from: alice, to: bob, offer: 10mbps}", "write 10mbit"},
		{"{from: alice, to: bob, for: 2m}", "steps[0].throughput.for"},
		{"{from: alice, to: relay}", "steps[0].throughput.to"},
		{"{from: alice}", "missing to"},
	} {
		_, err := Parse("tp.yaml", []byte(throughputScenario+"  - throughput: "+c.step+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.step, err, c.want)
		}
	}
}
