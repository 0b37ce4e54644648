package cli

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/natlab/natlab/topology"
)

var labNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func checkLabName(name string) error {
	if len(name) > 32 || !labNamePattern.MatchString(name) {
		return usageError("--name %q: a lab name is 1 to 32 lowercase letters, digits and inner hyphens", name)
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
// addresses and, for a NAT, its behaviour.
func printNodes(w io.Writer, topo *topology.Topology) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tBEHIND\tADDRESS\tDETAILS")
	for _, n := range topo.Nodes {
		behind := n.Behind
		if behind == "" {
			behind = "internet"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.Kind, behind, joinAddrs(n), nodeDetails(n))
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

func nodeDetails(n *topology.Node) string {
	switch {
	case n.NAT != nil:
		d := fmt.Sprintf("LAN %v via %v; %s", n.NAT.LAN, n.NAT.Gateway, n.NAT.Behaviour)
		for _, f := range n.NAT.Forwards {
			d += fmt.Sprintf("; forward %s %d -> %v", f.Proto, f.Port, f.To)
		}
		return d
	case len(n.Services) > 0:
		var s []string
		for _, svc := range n.Services {
			s = append(s, string(svc))
		}
		return "services: " + strings.Join(s, ", ") + " (declared; natlab does not start services yet)"
	}
	return ""
}
