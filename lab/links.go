package lab

import (
	"github.com/natlab/natlab/linkshape"
	"github.com/natlab/natlab/topology"
)

// Wires describes each node's uplink in lab name as Up builds it, for
// package linkshape: the node's end, the bridge's end, and the segment.
func Wires(name string, topo *topology.Topology) []linkshape.Wire {
	segments := map[string][]*topology.Node{}
	for _, n := range topo.Nodes {
		segments[n.Behind] = append(segments[n.Behind], n)
	}
	ports := map[string]map[string]string{}
	for owner, nodes := range segments {
		ports[owner] = portNames(nodes)
	}
	wires := make([]linkshape.Wire, 0, len(topo.Nodes))
	for _, n := range topo.Nodes {
		w := linkshape.Wire{
			Node:        n.Name,
			NS:          NamespaceName(name, n.Name),
			Uplink:      Uplink(n),
			UplinkIndex: uplinkIndex,
			ParentNS:    NamespaceName(name, topology.Internet),
			Port:        ports[n.Behind][n.Name],
			Bridge:      InternetBridge,
			Segment:     n.Behind,
		}
		if n.Behind != "" {
			w.ParentNS, w.Bridge, w.Routed = NamespaceName(name, n.Behind), NATLAN, true
		}
		w.Addrs = append(append(w.Addrs, n.Addresses...), n.Addresses6...)
		wires = append(wires, w)
	}
	return wires
}
