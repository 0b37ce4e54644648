package topology

import (
	"fmt"
	"strings"
)

// String describes the topology in a stable, human-readable form with every
// default spelt out, one node per line plus a line for each NAT's behaviour
// and forwards. natlab show prints it; tests compare it with golden files.
func (t *Topology) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s", t.Name)
	if t.Description != "" {
		fmt.Fprintf(&b, ": %s", t.Description)
	}
	fmt.Fprintf(&b, "\ninternet %s\n", t.Internet)
	for _, n := range t.Nodes {
		b.WriteString(n.String())
		b.WriteByte('\n')
		if n.NAT == nil {
			continue
		}
		fmt.Fprintf(&b, "  %s\n", n.NAT.describeBehaviour())
		for _, f := range n.NAT.Forwards {
			fmt.Fprintf(&b, "  %s\n", f)
		}
	}
	return b.String()
}

// String describes the node on one line: name, kind, where it is and its
// addresses, then its LAN or services.
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
	if n.NAT != nil {
		fmt.Fprintf(&b, ", lan %s gateway %s", n.NAT.LAN, n.NAT.Gateway)
	}
	if len(n.Services) > 0 {
		b.WriteString(", services")
		for _, s := range n.Services {
			fmt.Fprintf(&b, " %s", s)
		}
	}
	return b.String()
}

// describeBehaviour spells out every knob, unlike nat.Behaviour.String,
// which leaves out defaults.
func (t *NAT) describeBehaviour() string {
	b := t.Behaviour
	typ := string(t.Type)
	if typ == "" {
		typ = "no classic type"
	}
	hairpin := "hairpin"
	if !b.Hairpin {
		hairpin = "no hairpin"
	}
	return fmt.Sprintf("%s: mapping %s, filtering %s, ports %s %s, %s, timeout %s",
		typ, b.Mapping, b.Filtering, b.Ports, b.PortRange, hairpin, fmtDuration(b.Timeout))
}

// String describes the forward: "forward udp 3478 to alice 192.168.1.2:3478".
func (f Forward) String() string {
	to := f.To.String()
	if f.ToNode != "" {
		to = f.ToNode + " " + to
	}
	return fmt.Sprintf("forward %s %d to %s", f.Proto, f.Port, to)
}
