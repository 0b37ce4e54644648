package topology

import (
	"net/netip"
	"strings"
	"testing"
)

// AddressProblem refuses what no node could be given on its uplink, on
// the internet and on a NAT's LAN alike, and accepts a free address.
func TestAddressProblem(t *testing.T) {
	topo, err := Parse("t.yaml", []byte(`
nodes:
  srv:  {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  isp:  {kind: nat, public: 203.0.113.1, lan: 100.64.0.0/24}
  home: {kind: nat, behind: isp}
  h:    {kind: host, behind: home}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		node, addr, want string
	}{
		{"isp", "203.0.113.77", ""},
		{"isp", "198.51.100.1", "outside 203.0.113.0/24, the internet"},
		{"isp", "203.0.113.0", "network address"},
		{"isp", "203.0.113.255", "broadcast address"},
		{"isp", "203.0.113.11", "taken by srv"},
		{"isp", "203.0.113.1", "isp's address already"},
		{"isp", "2001:db8::1", "not an IPv4 address"},
		{"home", "100.64.0.9", ""},
		{"home", "100.64.0.1", "taken by isp's gateway"},
		{"home", "203.0.113.77", "outside 100.64.0.0/24, the LAN of isp"},
	} {
		got := topo.AddressProblem(topo.Node(tc.node), netip.MustParseAddr(tc.addr))
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("AddressProblem(%s, %s) = %q, want %q", tc.node, tc.addr, got, tc.want)
		}
	}
}
