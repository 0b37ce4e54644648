package topology

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// String describes the topology in a stable, human-readable form with every
// default spelt out, one node per line plus a line for each NAT's behaviour,
// its IPv6 firewall in a dual-stack lab, and its forwards, then one line
// per step. natlab show prints it; tests compare it with golden files.
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
// addresses (IPv4, then "and" IPv6 in a dual-stack lab), then its LANs or
// services.
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
		fmt.Fprintf(&b, ", lan %s gateway %s", n.NAT.LAN, n.NAT.Gateway)
		if n.NAT.LAN6.IsValid() {
			fmt.Fprintf(&b, ", lan6 %s gateway %s", n.NAT.LAN6, n.NAT.Gateway6)
		}
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
// phrase, unlike nat.Behaviour.String, which leaves out defaults.
func (t *NAT) describeBehaviour() string {
	var s strings.Builder
	s.WriteString(cmp.Or(string(t.Type), "no classic type") + ": ")
	for i := range NATKnobs {
		k := &NATKnobs[i]
		if i > 0 {
			s.WriteString(cmp.Or(k.sep, ", "))
		}
		s.WriteString(k.phrase(k.get(t.Behaviour)))
	}
	fmt.Fprintf(&s, ", port-mapping %s", cmp.Or(t.PortMapping, "none"))
	return s.String()
}

// String describes the forward: "forward udp 3478 to alice 192.168.1.2:3478".
func (f Forward) String() string {
	to := f.To.String()
	if f.ToNode != "" {
		to = f.ToNode + " " + to
	}
	return fmt.Sprintf("forward %s %d to %s", f.Proto, f.Port, to)
}

// String describes the step on one line with every default spelt out:
// `step "punch alice bob": punch between alice and bob, stun server stun, ...`.
func (s Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %s: %s", strconv.Quote(s.Name), s.Kind)
	switch s.Kind {
	case StepSTUN:
		port := "any"
		if s.Port != 0 {
			port = strconv.Itoa(int(s.Port))
		}
		server := "server " + s.Server
		if len(s.Servers) > 0 {
			server = "servers " + strings.Join(s.Servers, " ")
		}
		fmt.Fprintf(&b, " from %s, local port %s, %s", s.From, port, server)
	case StepPunch:
		rendezvous := "by natlab"
		if s.Rendezvous != "" {
			rendezvous = "server " + s.Rendezvous
		}
		predict := "no port prediction"
		if s.Predict {
			predict = "port prediction"
		}
		explain := "no explanation"
		if s.Explain {
			explain = "explanation"
		}
		fmt.Fprintf(&b, " over %s between %s and %s, stun server %s, rendezvous %s, %s, %s, timeout %s",
			s.Family, s.Between[0], s.Between[1], s.Server, rendezvous, predict, explain, fmtDuration(s.Timeout))
		if s.Keepalive > 0 {
			fmt.Fprintf(&b, ", keepalive every %s", fmtDuration(s.Keepalive))
		}
	case StepRelay:
		fmt.Fprintf(&b, " between %s and %s, turn server %s, timeout %s", s.Between[0], s.Between[1], s.Server, fmtDuration(s.Timeout))
	case StepUpgrade:
		fmt.Fprintf(&b, " between %s and %s, turn server %s, stun server %s, timeout %s",
			s.Between[0], s.Between[1], s.Server, s.STUN, fmtDuration(s.Timeout))
	case StepICE:
		fmt.Fprintf(&b, " between %s and %s, timeout %s", s.Between[0], s.Between[1], fmtDuration(s.Timeout))
	case StepSend:
		to := fmt.Sprintf("%s port %d", s.To, s.Port)
		if s.ToAddr.IsValid() {
			to = s.ToAddr.String()
		}
		fmt.Fprintf(&b, " %s over %s from %s to %s", s.Proto, s.Family, s.From, to)
		if s.SeenAsAddr.IsValid() || s.SeenAs != "" {
			b.WriteString(", seen as ")
			if s.SeenAs != "" {
				fmt.Fprintf(&b, "%s ", s.SeenAs)
			}
			if s.SeenAsAddr.Port() == 0 {
				fmt.Fprintf(&b, "%s any port", s.SeenAsAddr.Addr())
			} else {
				b.WriteString(s.SeenAsAddr.String())
			}
		}
	case StepPortmap:
		fmt.Fprintf(&b, " %s from %s port %d, public port %d, lifetime %s", s.Proto, s.From, s.Port, s.PublicPort, fmtDuration(s.Lifetime))
	case StepTunnel:
		public := "any"
		if s.PublicPort != 0 {
			public = strconv.Itoa(int(s.PublicPort))
		}
		fmt.Fprintf(&b, " from %s port %d, server %s, public port %s", s.From, s.Port, s.Server, public)
	case StepTable:
		fmt.Fprintf(&b, " of %s", s.Node)
	case StepWait:
		fmt.Fprintf(&b, " %s", fmtDuration(s.Duration))
		return b.String()
	case StepExec:
		fmt.Fprintf(&b, " on %s", s.Node)
		if s.Shell && len(s.Command) == 1 {
			fmt.Fprintf(&b, ", sh -c %s", strconv.Quote(s.Command[0]))
		} else {
			b.WriteString(", argv")
			for _, arg := range s.Command {
				fmt.Fprintf(&b, " %s", strconv.Quote(arg))
			}
		}
		fmt.Fprintf(&b, ", timeout %s", fmtDuration(s.Timeout))
	}
	if s.Kind == StepTable && s.Expect.Mappings == nil && s.Expect.Flows == nil {
		b.WriteString(", expect anything")
		return b.String()
	}
	fmt.Fprintf(&b, ", expect %s", s.Expect)
	return b.String()
}

// String describes the expectation: "ok", "dropped", "any connection" for
// an ice step without one, the classification a stun step expects, or the
// size of the table a table step expects ("{mappings 2, flows 3}", or
// "anything" when it expects none).
func (e Expect) String() string {
	switch {
	case e.Classification != nil:
		return e.Classification.String()
	case e.Mappings != nil || e.Flows != nil:
		var parts []string
		if e.Mappings != nil {
			parts = append(parts, fmt.Sprintf("mappings %d", *e.Mappings))
		}
		if e.Flows != nil {
			parts = append(parts, fmt.Sprintf("flows %d", *e.Flows))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case e.Outcome == "":
		return "any connection"
	}
	return e.Outcome
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
	if c.Hairpin != nil {
		if *c.Hairpin {
			parts = append(parts, "hairpin")
		} else {
			parts = append(parts, "no hairpin")
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
