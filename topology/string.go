package topology

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/natlab/natlab/nat"
)

// String describes the topology in a stable, human-readable form with every
// default spelt out, one node per line plus a line for its link's
// conditions where it has any, for each NAT's behaviour, its IPv6
// firewall in a dual-stack lab, and its forwards, then one line per step. natlab show prints it; tests compare it with golden files.
func (t *Topology) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s", t.Name)
	if t.Description != "" {
		fmt.Fprintf(&b, ": %s", t.Description)
	}
	fmt.Fprintf(&b, "\ninternet %s\n", t.Internet)
	if t.Internet6.IsValid() {
		fmt.Fprintf(&b, "internet6 %s, internet segment %s\n", t.Internet6, t.Internet6Segment)
	}
	for _, n := range t.Nodes {
		b.WriteString(n.String())
		b.WriteByte('\n')
		if !n.Link.IsZero() {
			fmt.Fprintf(&b, "  link %s\n", n.Link)
		}
		if n.NAT == nil {
			continue
		}
		fmt.Fprintf(&b, "  %s\n", n.NAT.describeBehaviour())
		if t.Internet6.IsValid() {
			firewall := string(n.NAT.Firewall6)
			if firewall == "" {
				firewall = "off"
			}
			fmt.Fprintf(&b, "  firewall6 %s\n", firewall)
		}
		for _, f := range n.NAT.Forwards {
			fmt.Fprintf(&b, "  %s\n", f)
		}
	}
	for _, s := range t.Steps {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// String describes the node on one line: name, kind, where it is and its
// addresses (IPv4, then "and" IPv6 in a dual-stack lab), then its LANs,
// its firewall or its services.
func (n *Node) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s ", n.Kind, n.Name)
	if n.Behind == "" {
		b.WriteString("on the internet")
	} else {
		fmt.Fprintf(&b, "behind %s", n.Behind)
	}
	b.WriteString(" at")
	for _, a := range n.Addresses {
		fmt.Fprintf(&b, " %s", a)
	}
	if len(n.Addresses6) > 0 {
		b.WriteString(" and")
		for _, a := range n.Addresses6 {
			fmt.Fprintf(&b, " %s", a)
		}
	}
	if n.NAT != nil {
		if n.NAT.Pooling != "" {
			fmt.Fprintf(&b, ", pooling %s", n.NAT.Pooling)
		}
		if n.NAT.Blocks.Enabled() {
			fmt.Fprintf(&b, ", %s", n.NAT.Blocks)
		}
		fmt.Fprintf(&b, ", lan %s gateway %s", n.NAT.LAN, n.NAT.Gateway)
		if n.NAT.LAN6.IsValid() {
			fmt.Fprintf(&b, ", lan6 %s gateway %s", n.NAT.LAN6, n.NAT.Gateway6)
		}
	}
	if n.Firewall != FirewallNone {
		fmt.Fprintf(&b, ", firewall %s", n.Firewall)
	}
	if len(n.Services) > 0 {
		b.WriteString(", services")
		for _, s := range n.Services {
			fmt.Fprintf(&b, " %s", s)
		}
	}
	return b.String()
}

// describeBehaviour spells out every knob of NATKnobs, each in its own
// phrase, unlike nat.Behaviour.String, which leaves out defaults. A
// one-to-one nat has no value for the knobs it does not take, and says
// once instead that it keeps every port.
func (t *NAT) describeBehaviour() string {
	var s strings.Builder
	s.WriteString(cmp.Or(string(t.Type), "no classic type") + ": ")
	kept := false
	for i := range NATKnobs {
		k := &NATKnobs[i]
		phrase, sep := k.phrase(k.get(t.Behaviour)), cmp.Or(k.sep, ", ")
		if t.Type == nat.OneToOne && k.notOneToOne != "" {
			if kept {
				continue
			}
			kept, phrase, sep = true, oneToOnePorts, ", "
		}
		if i > 0 {
			s.WriteString(sep)
		}
		s.WriteString(phrase)
	}
	fmt.Fprintf(&s, ", port-mapping %s", cmp.Or(strings.Join(t.PortMapping, " and "), "none"))
	return s.String()
}

// oneToOnePorts is what a one-to-one nat does with ports, in the lines
// that describe a nat.
const oneToOnePorts = "every port to its host, kept"

// Summary describes the nat's behaviour in one line, as
// nat.Behaviour.String does, and for a one-to-one nat without the
// knobs it does not take: "one-to-one, every port to its host, kept,
// hairpin". natlab status prints it.
func (t *NAT) Summary() string {
	if t.Type != nat.OneToOne {
		return t.Behaviour.String()
	}
	hairpin := NATKnobNamed("hairpin")
	return fmt.Sprintf("%s, %s, %s", t.Type, oneToOnePorts, hairpin.phrase(hairpin.get(t.Behaviour)))
}

// String describes the forward: "forward udp 3478 to alice 192.168.1.2:3478".
func (f Forward) String() string {
	to := f.To.String()
	if f.ToNode != "" {
		to = f.ToNode + " " + to
	}
	return fmt.Sprintf("forward %s %d to %s", f.Proto, f.Port, to)
}

// String lists what the classification gives, in braces:
// "{type symmetric, mapping address-and-port-dependent, ...}".
func (c *Classification) String() string {
	var parts []string
	add := func(key, val string) {
		if val != "" {
			parts = append(parts, key+" "+val)
		}
	}
	add("type", string(c.Type))
	add("mapping", string(c.Mapping))
	add("filtering", string(c.Filtering))
	add("ports", string(c.Ports))
	add("pooling", string(c.Pooling))
	if c.Hairpin != nil {
		if *c.Hairpin {
			parts = append(parts, "hairpin")
		} else {
			parts = append(parts, "no hairpin")
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
