package labtest

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

// Spec is a scenario as a Go value, for UpSpec: the nodes of a lab and
// what sits where. A field left at its zero value is left out of the
// scenario and gets natlab's default, as a key left out of a file does;
// Server, NAT and Host make the common nodes in one call each:
//
//	labtest.Spec{Nodes: []labtest.NodeSpec{
//		labtest.Server("stun", topology.ServiceSTUN),
//		labtest.NAT("home", nat.Symmetric),
//		labtest.Host("alice", "home"),
//	}}
//
// The scenario it stands for is checked exactly as a file is.
type Spec struct {
	// Internet is the internet's subnet; 203.0.113.0/24 if zero.
	Internet netip.Prefix
	// Internet6 makes the lab dual-stack (internet6:).
	Internet6 netip.Prefix
	// Nodes are the lab's machines.
	Nodes []NodeSpec
}

// NodeSpec is one node of a Spec. Which fields apply depends on Kind, as
// in a file: Services only to servers, the NAT knobs only to NATs,
// Firewall only to hosts, Behind to hosts and NATs.
type NodeSpec struct {
	// Name is the node's name: 1 to 32 of a-z, 0-9 and -.
	Name string
	// Kind is server, nat or host.
	Kind topology.Kind
	// Behind is the NAT whose LAN the node is on; "" is the internet.
	Behind string
	// Addresses are a server's addresses, a host's address (one) or a
	// NAT's public address (one); allocated in order if none.
	Addresses []netip.Addr
	// Services run on a server.
	Services []topology.Service

	// Type is a NAT's classic type; Mapping and Filtering set the RFC
	// 4787 behaviour knob by knob instead.
	Type nat.Type
	// The NAT's knobs, each one of topology.NATKnobs, named by its knob
	// tag and written as a file writes it (the fields' tests check that
	// every knob has one). Mapping and Filtering are what remote
	// endpoints a mapping is shared with and lets in.
	Mapping   nat.Dependence `knob:"mapping"`
	Filtering nat.Dependence `knob:"filtering"`
	// Ports is how a NAT picks public ports.
	Ports nat.PortAllocation `knob:"ports"`
	// PortRange is the public ports a NAT's mappings take.
	PortRange nat.PortRange `knob:"port-range"`
	// Hairpin, if not nil, turns a NAT's hairpinning on or off.
	Hairpin *bool `knob:"hairpin"`
	// Timeouts, if not nil, is how long a NAT keeps an idle mapping, by
	// protocol (UDP, TCP established and transitory, ICMP).
	Timeouts *nat.Timeouts `knob:"timeout"`
	// Timeout is how long a NAT keeps an idle UDP mapping, the others
	// keeping their defaults, as timeout: 2m in a file; Timeouts, if
	// set, is used instead.
	Timeout time.Duration
	// Refresh is which packets keep a NAT's mapping alive: both
	// directions (the default) or only outbound ones.
	Refresh nat.Refresh `knob:"refresh"`
	// LAN is the subnet behind a NAT.
	LAN netip.Prefix
	// Firewall is a host's own firewall: topology.FirewallStateful, or
	// none when empty.
	Firewall topology.Firewall

	// Extra holds any other keys of the node, by their name in a
	// scenario file, such as "forward" or "port-mapping".
	Extra map[string]any
}

// Server is a server on the internet running services.
func Server(name string, services ...topology.Service) NodeSpec {
	return NodeSpec{Name: name, Kind: topology.KindServer, Services: services}
}

// NAT is a NAT of type typ on the internet; set Behind for one behind
// another NAT, as carrier-grade NAT is.
func NAT(name string, typ nat.Type) NodeSpec {
	return NodeSpec{Name: name, Kind: topology.KindNAT, Type: typ}
}

// Host is a host behind the NAT called behind, or on the internet if
// behind is "".
func Host(name, behind string) NodeSpec {
	return NodeSpec{Name: name, Kind: topology.KindHost, Behind: behind}
}

// YAML is the scenario file the Spec stands for.
func (s Spec) YAML() (string, error) {
	var doc yaml.MapSlice
	if s.Internet.IsValid() {
		doc = append(doc, yaml.MapItem{Key: "internet", Value: s.Internet.String()})
	}
	if s.Internet6.IsValid() {
		doc = append(doc, yaml.MapItem{Key: "internet6", Value: s.Internet6.String()})
	}
	var nodes yaml.MapSlice
	for _, n := range s.Nodes {
		nodes = append(nodes, yaml.MapItem{Key: n.Name, Value: n.fields()})
	}
	doc = append(doc, yaml.MapItem{Key: "nodes", Value: nodes})
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("spec to YAML: %w", err)
	}
	return string(out), nil
}

// fields are the node's keys in a file's words, in a file's order.
func (n NodeSpec) fields() yaml.MapSlice {
	m := yaml.MapSlice{{Key: "kind", Value: string(n.Kind)}}
	add := func(key string, v any) { m = append(m, yaml.MapItem{Key: key, Value: v}) }
	if n.Behind != "" {
		add("behind", n.Behind)
	}
	if len(n.Addresses) > 0 {
		var addrs []string
		for _, a := range n.Addresses {
			addrs = append(addrs, a.String())
		}
		switch n.Kind {
		case topology.KindServer:
			add("addresses", addrs)
		case topology.KindNAT:
			add("public", addrs[0])
		default:
			add("address", addrs[0])
		}
		// The keys of hosts and NATs take one address; a second is
		// passed on under the same key, so the parser reports it.
		if n.Kind != topology.KindServer && len(addrs) > 1 {
			m[len(m)-1].Value = addrs
		}
	}
	if len(n.Services) > 0 {
		var svcs []string
		for _, s := range n.Services {
			svcs = append(svcs, string(s))
		}
		add("services", svcs)
	}
	if n.Type != "" {
		add("type", string(n.Type))
	}
	if n.Timeouts == nil && n.Timeout != 0 {
		t := nat.UDPOnly(n.Timeout)
		n.Timeouts = &t
	}
	v := reflect.ValueOf(n)
	for i := range topology.NATKnobs {
		k := &topology.NATKnobs[i]
		f, ok := knobField(k.Key)
		if !ok {
			continue
		}
		if x := v.FieldByIndex(f.Index); !x.IsZero() {
			add(k.Key, k.ValueOf(reflect.Indirect(x).Interface()))
		}
	}
	if n.LAN.IsValid() {
		add("lan", n.LAN.String())
	}
	if n.Firewall != topology.FirewallNone {
		add("firewall", string(n.Firewall))
	}
	for _, k := range slices.Sorted(maps.Keys(n.Extra)) {
		add(k, n.Extra[k])
	}
	return m
}

// knobField is the field of NodeSpec for the NAT knob key: the one with
// that knob tag.
func knobField(key string) (reflect.StructField, bool) {
	t := reflect.TypeFor[NodeSpec]()
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("knob") == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
