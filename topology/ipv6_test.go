package topology

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/natlab/natlab/nat"
)

// TestActsValues checks the parsed steps of acts.yaml themselves, beyond
// what their String shows in the golden file.
func TestActsValues(t *testing.T) {
	topo, err := ParseFile("testdata/valid/acts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	steps := topo.Steps
	step := func(i int, kind StepKind) Step {
		t.Helper()
		if i >= len(steps) || steps[i].Kind != kind {
			t.Fatalf("steps[%d] is not a %s step: %+v", i, kind, steps)
		}
		return steps[i]
	}
	if s := step(0, StepSTUN); s.Server != "" || !slices.Equal(s.Servers, []string{"stun1", "stun2"}) || s.Expect.Outcome != "ok" || s.Name != "stun from alice to stun1, stun2" {
		t.Errorf("stun with servers: %+v", s)
	}
	if s := step(2, StepSTUN); s.Port != 4000 || s.Expect.Outcome != "different" {
		t.Errorf("stun with servers and every field: %+v", s)
	}
	if s := step(4, StepSend); s.SeenAs != "home" || s.SeenAsAddr != netip.MustParseAddrPort("203.0.113.50:0") || s.Family != FamilyIPv4 {
		t.Errorf("send seen as a node: %+v", s)
	}
	if s := step(5, StepSend); s.SeenAs != "" || s.SeenAsAddr != netip.MustParseAddrPort("203.0.113.8:0") {
		t.Errorf("send seen as an address: %+v", s)
	}
	if s := step(6, StepSend); s.SeenAsAddr != netip.MustParseAddrPort("203.0.113.50:4000") {
		t.Errorf("send seen as an address and port: %+v", s)
	}
	if s := step(8, StepSend); s.SeenAs != "" || s.SeenAsAddr.IsValid() {
		t.Errorf("send without seen-as: %+v", s)
	}
	if s := step(9, StepPunch); !s.Explain || s.Family != FamilyIPv4 {
		t.Errorf("punch with explain: %+v", s)
	}
	if s := step(10, StepPunch); s.Explain || !s.Predict {
		t.Errorf("punch with explain: false: %+v", s)
	}
	if s := step(11, StepTable); s.Node != "home" || s.Expect.Mappings != nil || s.Expect.Flows != nil || s.Expect.Outcome != "" || s.Name != "table home" {
		t.Errorf("table without expect: %+v", s)
	}
	if s := step(12, StepTable); s.Expect.Mappings == nil || *s.Expect.Mappings != 2 || s.Expect.Flows != nil {
		t.Errorf("table expecting mappings: %+v", s.Expect)
	}
	if s := step(13, StepTable); s.Expect.Mappings == nil || *s.Expect.Mappings != 65535 || s.Expect.Flows == nil || *s.Expect.Flows != 0 {
		t.Errorf("table expecting both: %+v", s.Expect)
	}
	if s := step(14, StepUpgrade); s.Server != "relay" || s.STUN != "stun1" || s.Timeout != 10*time.Second || s.Expect.Outcome != "direct" || s.Name != "upgrade alice bob" {
		t.Errorf("upgrade with defaults: %+v", s)
	}
	if s := step(15, StepUpgrade); s.Server != "relay2" || s.Timeout != 100*time.Millisecond || s.Expect.Outcome != "relay" {
		t.Errorf("upgrade: %+v", s)
	}
	if s := step(16, StepPortmap); s.From != "alice" || s.Proto != TCP || s.Port != 8080 || s.PublicPort != 8080 || s.Lifetime != DefaultPortmapLifetime || s.Expect.Outcome != "ok" {
		t.Errorf("portmap with defaults: %+v", s)
	}
	if s := step(17, StepPortmap); s.Proto != UDP || s.PublicPort != 1 || s.Lifetime != time.Second || s.Expect.Outcome != "fail" {
		t.Errorf("portmap: %+v", s)
	}
	if s := step(19, StepPortmap); s.Lifetime != 90*time.Second {
		t.Errorf("portmap lifetime in seconds: %+v", s)
	}
	if s := step(20, StepTunnel); s.From != "bob" || s.Server != "relay2" || s.Port != 8080 || s.PublicPort != 0 || s.Expect.Outcome != "ok" {
		t.Errorf("tunnel with defaults: %+v", s)
	}
	if s := step(21, StepTunnel); s.Server != "tun" || s.PublicPort != 1024 || s.Expect.Outcome != "fail" {
		t.Errorf("tunnel: %+v", s)
	}
	if got := topo.Node("home").NAT.PortMapping; got != PortMappingNATPMP {
		t.Errorf("home's port mapping is %q", got)
	}
	if got := topo.Node("office").NAT.PortMapping; got != "" {
		t.Errorf("office's port mapping is %q", got)
	}
	// An IPv4-only lab has no IPv6 at all.
	if topo.Internet6.IsValid() || topo.Internet6Segment.IsValid() || topo.Node("home").NAT.Firewall6 != "" || len(topo.Node("alice").Addresses6) != 0 {
		t.Errorf("IPv6 in an IPv4-only lab")
	}
	alice := topo.Node("alice")
	if p := topo.Uplink6(alice); p.IsValid() {
		t.Errorf("alice's IPv6 uplink is %s in an IPv4-only lab", p)
	}
	if gw, ok := topo.Gateway6(alice); ok {
		t.Errorf("alice's IPv6 gateway is %s in an IPv4-only lab", gw)
	}
}

// TestDualStack checks the IPv6 values of dual-stack.yaml.
func TestDualStack(t *testing.T) {
	topo, err := ParseFile("testdata/valid/dual-stack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prefix, addr := netip.MustParsePrefix, netip.MustParseAddr
	if topo.Internet6 != prefix("2001:db8::/32") || topo.Internet6Segment != prefix("2001:db8::/64") {
		t.Errorf("internet6 %s, segment %s", topo.Internet6, topo.Internet6Segment)
	}
	for _, tc := range []struct {
		node      string
		addrs     []string
		lan6, gw6 string
		firewall  nat.Dependence
	}{
		{node: "stun", addrs: []string{"2001:db8::1", "2001:db8::2"}},
		{node: "relay", addrs: []string{"2001:db8::100"}},
		{node: "web", addrs: []string{"2001:db8::4", "2001:db8::5", "2001:db8::6"}},
		{node: "carrier", addrs: []string{"2001:db8::7"}, lan6: "2001:db8:0:1::/64", gw6: "2001:db8:0:1::1", firewall: ""},
		{node: "home-a", addrs: []string{"2001:db8:0:1::2"}, lan6: "2001:db8:0:3::/64", gw6: "2001:db8:0:3::1", firewall: nat.EndpointIndependent},
		{node: "home-b", addrs: []string{"2001:db8:0:1::99"}, lan6: "2001:db8:0:2::/64", gw6: "2001:db8:0:2::1", firewall: nat.AddressDependent},
		{node: "office", addrs: []string{"2001:db8::3"}, lan6: "2001:db8:0:4::/64", gw6: "2001:db8:0:4::1", firewall: nat.AddressAndPortDependent},
		{node: "cafe", addrs: []string{"2001:db8::8"}, lan6: "2001:db8:0:5::/64", gw6: "2001:db8:0:5::1", firewall: nat.AddressAndPortDependent},
		{node: "alice", addrs: []string{"2001:db8:0:3::2"}},
		{node: "bob", addrs: []string{"2001:db8:0:2::b0b"}},
		{node: "friend", addrs: []string{"2001:db8::9"}},
	} {
		n := topo.Node(tc.node)
		var got []string
		for _, a := range n.Addresses6 {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tc.addrs) {
			t.Errorf("%s has IPv6 addresses %v, want %v", tc.node, got, tc.addrs)
		}
		if tc.lan6 == "" {
			continue
		}
		if n.NAT.LAN6 != prefix(tc.lan6) || n.NAT.Gateway6 != addr(tc.gw6) || n.NAT.Firewall6 != tc.firewall {
			t.Errorf("%s: lan6 %s gateway %s firewall6 %q", tc.node, n.NAT.LAN6, n.NAT.Gateway6, n.NAT.Firewall6)
		}
	}

	alice, friend := topo.Node("alice"), topo.Node("friend")
	if got := topo.Uplink6(alice); got != prefix("2001:db8:0:3::/64") {
		t.Errorf("alice's IPv6 uplink is %s", got)
	}
	if gw, ok := topo.Gateway6(alice); !ok || gw != addr("2001:db8:0:3::1") {
		t.Errorf("alice's IPv6 gateway is %s, %v", gw, ok)
	}
	if got := topo.Uplink6(friend); got != topo.Internet6Segment {
		t.Errorf("friend's IPv6 uplink is %s", got)
	}
	if gw, ok := topo.Gateway6(friend); ok {
		t.Errorf("friend has the IPv6 gateway %s on the internet", gw)
	}

	steps := topo.Steps
	if s := steps[0]; s.Family != FamilyIPv6 || s.To != "alice" || s.ToAddr.IsValid() {
		t.Errorf("send over IPv6 to a node: %+v", s)
	}
	if s := steps[1]; s.ToAddr != netip.MustParseAddrPort("[2001:db8:0:2::b0b]:8080") || s.Port != 8080 {
		t.Errorf("send over IPv6 to an address: %+v", s)
	}
	if s := steps[2]; s.SeenAs != "alice" || s.SeenAsAddr != netip.AddrPortFrom(addr("2001:db8:0:3::2"), 0) {
		t.Errorf("send over IPv6 seen as a node: %+v", s)
	}
	if s := steps[4]; s.SeenAs != "" || s.SeenAsAddr != netip.MustParseAddrPort("[2001:db8:0:2::b0b]:5000") {
		t.Errorf("send over IPv6 seen as an address and port: %+v", s)
	}
	if s := steps[5]; s.Family != FamilyIPv4 || s.SeenAsAddr != netip.MustParseAddrPort("203.0.113.4:0") {
		t.Errorf("send over IPv4 seen as a node: %+v", s)
	}
	if s := steps[7]; s.Kind != StepPunch || s.Family != FamilyIPv6 || s.Name != "punch ipv6 alice bob" {
		t.Errorf("punch over IPv6: %+v", s)
	}
	if s := steps[9]; s.Kind != StepSTUN || s.Family != "" {
		t.Errorf("a stun step has a family: %+v", s)
	}
}
