package labtest

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

// TestSpecYAML checks that a Spec becomes the scenario it stands for: the
// file natlab parses has the nodes, addresses and NAT behaviour the Go
// value gave, and the defaults where it gave none.
func TestSpecYAML(t *testing.T) {
	testutil.CheckRoutines(t)
	off := false
	tests := []struct {
		name  string
		spec  Spec
		check func(t *testing.T, topo *topology.Topology)
		err   string // a parse error containing this, instead of check
	}{
		{
			name: "constructors and defaults",
			spec: Spec{Nodes: []NodeSpec{Server("stun", topology.ServiceSTUN), NAT("home", nat.Symmetric), Host("alice", "home")}},
			check: func(t *testing.T, topo *topology.Topology) {
				if topo.Internet != topology.DefaultInternet {
					t.Errorf("internet %v", topo.Internet)
				}
				if s := topo.Node("stun"); s.Kind != topology.KindServer || len(s.Services) != 1 || s.Services[0] != topology.ServiceSTUN {
					t.Errorf("stun: %+v", s)
				}
				h := topo.Node("home").NAT
				if h.Type != nat.Symmetric || h.Behaviour.Ports != nat.PortRandom {
					t.Errorf("home: %s, ports %s", h.Type, h.Behaviour.Ports)
				}
				if a := topo.Node("alice"); a.Behind != "home" || !h.LAN.Contains(a.Addresses[0]) {
					t.Errorf("alice behind %q at %v, LAN %v", a.Behind, a.Addresses, h.LAN)
				}
			},
		},
		{
			name: "every field",
			spec: Spec{
				Internet: netip.MustParsePrefix("198.51.100.0/24"),
				Nodes: []NodeSpec{
					{Name: "srv", Kind: topology.KindServer, Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("198.51.100.11")}},
					{Name: "cgn", Kind: topology.KindNAT, Mapping: nat.EndpointIndependent, Filtering: nat.AddressDependent,
						Ports: nat.PortSequential, LAN: netip.MustParsePrefix("100.64.0.0/24"), Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.7")},
						Hairpin: &off, Timeout: 30 * time.Second, PortRange: nat.PortRange{First: 20000, Last: 20999}},
					{Name: "home", Kind: topology.KindNAT, Type: nat.FullCone, Behind: "cgn"},
					{Name: "pc", Kind: topology.KindHost, Behind: "home", Addresses: []netip.Addr{netip.MustParseAddr("192.168.1.50")},
						Firewall: topology.FirewallStateful},
				},
			},
			check: func(t *testing.T, topo *topology.Topology) {
				if f := topo.Node("pc").Firewall; f != topology.FirewallStateful {
					t.Errorf("pc's firewall %q, want stateful", f)
				}
				if got := topo.Node("srv").Addresses; len(got) != 2 || got[1].String() != "198.51.100.11" {
					t.Errorf("srv addresses %v", got)
				}
				cgn := topo.Node("cgn")
				b := cgn.NAT.Behaviour
				if cgn.Addresses[0].String() != "198.51.100.7" || cgn.NAT.LAN.String() != "100.64.0.0/24" || cgn.NAT.Type != nat.AddressRestrictedCone ||
					b.Ports != nat.PortSequential || b.Hairpin || b.Timeout != nat.UDPOnly(30*time.Second) || b.PortRange.First != 20000 || b.PortRange.Last != 20999 {
					t.Errorf("cgn: %v", cgn)
				}
				if h := topo.Node("home"); h.Behind != "cgn" || !cgn.NAT.LAN.Contains(h.Addresses[0]) {
					t.Errorf("home: %v", h)
				}
				if pc := topo.Node("pc"); pc.Addresses[0].String() != "192.168.1.50" {
					t.Errorf("pc: %v", pc)
				}
			},
		},
		{
			name: "a host with two addresses is the parser's to refuse",
			spec: Spec{Nodes: []NodeSpec{{Name: "pc", Kind: topology.KindHost, Addresses: []netip.Addr{netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("203.0.113.6")}}}},
			err:  "address",
		},
		{
			name: "a knob on the wrong kind is refused",
			spec: Spec{Nodes: []NodeSpec{{Name: "pc", Kind: topology.KindHost, Type: nat.FullCone}}},
			err:  "type",
		},
		{
			name: "a name YAML would misread stays one name",
			spec: Spec{Nodes: []NodeSpec{Host("a: b", "")}},
			err:  `invalid node name "a: b"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.spec.YAML()
			if err != nil {
				t.Fatal(err)
			}
			topo, err := topology.Parse("spec.yaml", []byte(data), nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want an error about %q, got %v\n%s", tc.err, err, data)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			tc.check(t, topo)
		})
	}
}

// TestNodeSpecHasEveryKnob checks that NodeSpec has a field for every NAT
// knob of topology.NATKnobs, of the knob's type (or a pointer to it, for
// a knob whose zero value is no way of leaving it out), and that Spec
// writes each into the scenario.
func TestNodeSpecHasEveryKnob(t *testing.T) {
	testutil.CheckRoutines(t)
	var n NodeSpec
	v := reflect.ValueOf(&n).Elem()
	for i := range topology.NATKnobs {
		k := &topology.NATKnobs[i]
		f, ok := knobField(k.Key)
		if !ok {
			t.Errorf("NodeSpec has no field tagged knob:%q", k.Key)
			continue
		}
		if f.Type != k.Field() && f.Type != reflect.PointerTo(k.Field()) {
			t.Errorf("NodeSpec.%s is a %s, the knob %s a %s", f.Name, f.Type, k.Key, k.Field())
		}
	}
	// A value off the default for each, as the registry's own test has.
	off := false
	timeouts := nat.Timeouts{UDP: 90 * time.Second, TCPEstablished: time.Hour, TCPTransitory: time.Minute, ICMP: 30 * time.Second}
	n = NodeSpec{Name: "cgn", Kind: topology.KindNAT, Mapping: nat.AddressDependent, Filtering: nat.EndpointIndependent,
		Ports: nat.PortSequential, PortRange: nat.PortRange{First: 20000, Last: 20999}, Hairpin: &off, Timeouts: &timeouts, Refresh: nat.RefreshOutbound}
	for i := range topology.NATKnobs {
		f, _ := knobField(topology.NATKnobs[i].Key)
		if v.FieldByIndex(f.Index).IsZero() {
			t.Errorf("the test leaves NodeSpec.%s out", f.Name)
		}
	}
	text, err := Spec{Nodes: []NodeSpec{n}}.YAML()
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Parse("spec.yaml", []byte(text), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	want := nat.Behaviour{Mapping: nat.AddressDependent, Filtering: nat.EndpointIndependent, Ports: nat.PortSequential,
		PortRange: nat.PortRange{First: 20000, Last: 20999}, Hairpin: false, Timeout: timeouts, Refresh: nat.RefreshOutbound}
	if got := topo.Node("cgn").NAT.Behaviour; got != want {
		t.Errorf("the spec's nat is %+v, want %+v\n%s", got, want, text)
	}
}
