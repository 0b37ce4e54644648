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
}

// An upgrade's result shows the relay's RTT and then the direct one's.
func TestMeasuredRelayThenDirect(t *testing.T) {
	r := Result{RelayRTT: NewRTT([]time.Duration{160 * time.Millisecond, 162 * time.Millisecond}), RTT: NewRTT([]time.Duration{40 * time.Millisecond})}
	if got, want := r.Measured(), "relay rtt min/median/max 160ms/162ms/162ms, then direct rtt 40ms"; got != want {
		t.Errorf("measured %q, want %q", got, want)
	}
}
