package topology

// The kernel's limits a lab can run into, so that validate refuses a lab
// the kernel would refuse halfway through `natlab up`.
//
// natlab builds each segment (the internet, and each NAT's LAN) as one
// Linux bridge, and plugs every node on the segment into it with a veth
// pair: one bridge port per node. A NAT's own LAN address is on the bridge
// itself, not on a port.
//
// Interface names are no limit a file can reach: natlab names its own
// interfaces (eth0, wan0, lan0, internet), and a node's port on its bridge
// takes the node's name only where the kernel accepts it, a shortened
// name with a hash otherwise (lab.portNames).

// MaxNodesPerSegment is how many nodes one segment can hold: the ports of
// one Linux bridge. A bridge numbers its ports in BR_PORT_BITS (10) bits,
// BR_MAX_PORTS = 1 << BR_PORT_BITS (net/bridge/br_private.h), and port 0
// is reserved ("zero is reserved" in find_portno, net/bridge/br_if.c), so
// the 1024th port fails with EXFULL ("exchange full"). Tried on Linux
// 6.18: in a namespace of its own, a bridge took 1023 veth ports and
// refused the next with "RTNETLINK answers: Exchange full".
const MaxNodesPerSegment = 1023

// checkSegmentSizes reports each segment with more nodes than a bridge
// has ports, once, at the first node that would not fit.
func (p *parser) checkSegmentSizes() {
	count := map[*nodeSpec]int{} // by the NAT owning the segment, nil for the internet
	first := map[*nodeSpec]*nodeSpec{}
	var full []*nodeSpec
	for _, n := range p.nodes {
		if !n.ok || !n.uplinkKnown {
			continue
		}
		count[n.parent]++
		if count[n.parent] == MaxNodesPerSegment+1 {
			first[n.parent] = n
			full = append(full, n.parent)
		}
	}
	for _, owner := range full {
		n := first[owner]
		if owner == nil {
			p.errs.errorf(n.node.Pos, "%s: %d nodes are on the internet, and it holds at most %d: natlab plugs each into one Linux bridge, which has at most %d ports; put some behind a nat",
				n.path, count[owner], MaxNodesPerSegment, MaxNodesPerSegment)
			continue
		}
		p.errs.errorf(n.behindVal.pos, "%s.behind: %d nodes are behind %s, and a LAN holds at most %d: natlab plugs each into the LAN's Linux bridge, which has at most %d ports; put some behind another nat, which may itself be behind %s",
			n.path, count[owner], owner.node.Name, MaxNodesPerSegment, MaxNodesPerSegment, owner.node.Name)
	}
}
