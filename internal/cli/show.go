package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// checkLabName refuses a --name that cannot name a lab, as a usage error.
func checkLabName(name string) error {
	if err := topology.CheckLabName(name); err != nil {
		return usageError("--name: %v", err)
	}
	return nil
}

func firstOfKind(topo *topology.Topology, kind topology.Kind) string {
	for _, n := range topo.Nodes {
		if n.Kind == kind {
			return n.Name
		}
	}
	return ""
}

// printNodes prints one line per node: what it is, where it sits, its
// addresses, its uplink's conditions (in a column of their own when a node
// has any) and, for a NAT, its behaviour.
func printNodes(w io.Writer, topo *topology.Topology) {
	links := slices.ContainsFunc(topo.Nodes, func(n *topology.Node) bool { return !n.Link.IsZero() })
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if links {
		fmt.Fprintln(tw, "NODE\tKIND\tBEHIND\tADDRESS\tLINK\tDETAILS")
	} else {
		fmt.Fprintln(tw, "NODE\tKIND\tBEHIND\tADDRESS\tDETAILS")
	}
	for _, n := range topo.Nodes {
		behind := n.Behind
		if behind == "" {
			behind = "internet"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t", n.Name, n.Kind, behind, joinAddrs(n))
		if links {
			link := "-"
			if !n.Link.IsZero() {
				link = n.Link.String()
			}
			fmt.Fprintf(tw, "%s\t", link)
		}
		fmt.Fprintf(tw, "%s\n", nodeDetails(topo, n))
	}
	tw.Flush()
}

func joinAddrs(n *topology.Node) string {
	var s []string
	for _, a := range n.Addresses {
		s = append(s, a.String())
	}
	return strings.Join(s, ", ")
}

func nodeDetails(topo *topology.Topology, n *topology.Node) string {
	d := nodeSummary(n)
	// A subscriber of a carrier-grade NAT's port blocks: which are its.
	if up := topo.Node(n.Behind); up != nil && up.NAT != nil && up.NAT.Blocks.Enabled() {
		for _, s := range topo.Subscribers(up) {
			if s.Node == n {
				d = strings.TrimPrefix(d+"; ports "+strings.Join(s.Ranges(), " ")+" of "+up.Name+"'s", "; ")
			}
		}
	}
	return d
}

func nodeSummary(n *topology.Node) string {
	switch {
	case n.NAT != nil:
		d := fmt.Sprintf("LAN %v via %v; %s", n.NAT.LAN, n.NAT.Gateway, n.NAT.Summary())
		if n.NAT.Pooling != "" {
			d += fmt.Sprintf("; pooling %s", n.NAT.Pooling)
		}
		if n.NAT.Blocks.Enabled() {
			d += "; " + n.NAT.Blocks.String()
		}
		for _, f := range n.NAT.Forwards {
			d += fmt.Sprintf("; forward %s %d -> %v", f.Proto, f.Port, f.To)
		}
		return d
	case len(n.Services) > 0:
		return serviceSummary(n)
	case n.Firewall != topology.FirewallNone:
		return fmt.Sprintf("firewall %s: only what it asked for gets in", n.Firewall)
	}
	return ""
}

// serviceSummary says where a server's services listen.
func serviceSummary(n *topology.Node) string {
	plan := service.PlanFor(n)
	var s []string
	if a := plan.STUNServer(); a.IsValid() {
		alt := "no RFC 5780: one address"
		if b := plan.STUNAlternate(); b.IsValid() {
			alt = "RFC 5780 alternate " + b.String()
		}
		s = append(s, fmt.Sprintf("stun %v (%s)", a, alt))
	}
	if plan.TURN.IsValid() {
		s = append(s, fmt.Sprintf("turn %v udp+tcp", plan.TURN))
	}
	if plan.Rendezvous.IsValid() {
		s = append(s, "rendezvous "+plan.RendezvousURL())
	}
	if plan.DERP.IsValid() {
		s = append(s, "derp "+plan.DERPURL())
	}
	if plan.Tunnel.IsValid() {
		s = append(s, fmt.Sprintf("tunnel %v tcp", plan.Tunnel))
	}
	return strings.Join(s, "; ")
}

// printServices says whether each service process runs, and the TURN
// credentials.
func printServices(w io.Writer, st *labstate.State, topo *topology.Topology) {
	for _, p := range st.Processes {
		if p.What == lab.DelayLineProcess {
			continue // printLinks says
		}
		state := "running"
		if !lab.ProcessAlive(p.PID, p.StartTime) {
			state = "NOT RUNNING (natlab down and up again)"
		}
		fmt.Fprintf(w, "  services of %s: %s, pid %d, log %s\n", p.Node, state, p.PID, filepath.Join(labstate.LogDir(st.Name), p.Node+".log"))
	}
	switch {
	case st.TURN.User != "":
		fmt.Fprintf(w, "  turn credentials: user %s, password %s, realm %s\n", st.TURN.User, st.TURN.Password, st.TURN.Realm)
	case runsTURN(topo):
		fmt.Fprintln(w, "  turn credentials: only root may read them (sudo natlab status)")
	}
}

func runsTURN(topo *topology.Topology) bool {
	for _, n := range topo.Nodes {
		if service.PlanFor(n).TURN.IsValid() {
			return true
		}
	}
	return false
}
