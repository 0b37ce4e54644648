package topology

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/natlab/natlab/nat"
)

// TestActsNodes checks the nodes of acts.yaml beyond what their String
// shows in the golden file; package step checks its steps.
func TestActsNodes(t *testing.T) {
	topo, err := ParseFile("testdata/valid/acts.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Node("home").NAT.PortMapping; !slices.Equal(got, []string{PortMappingNATPMP}) {
		t.Errorf("home's port mapping is %q", got)
	}
	if got := topo.Node("office").NAT.PortMapping; got != nil {
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
	topo, err := ParseFile("testdata/valid/dual-stack.yaml", nil)
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

}
