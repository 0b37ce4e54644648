package topology

import (
	"fmt"

	"github.com/natlab/natlab/nat"
)

// A one-to-one nat (type: one-to-one) gives its public address to one
// private address, as a cloud provider's 1:1 NAT gives a VM its public
// address: the address of the one host behind it. Until a nat can have
// several public addresses, each owned by one private address, exactly
// one node is behind a one-to-one nat, and it is a host (a nat behind one
// would make the private address a router's, and renumbering that nat
// would silently take the binding from it). What would choose among ports
// or mappings, or hand ports to someone, has nothing to do on it: the
// knobs that say so (notOneToOne), port-mapping and forward are refused.

// checkOneToOneKeys reports the keys a one-to-one nat n does not take
// besides the knobs (which behaviour reports): port-mapping, for its host
// owns every port without asking, and forward, for every port is
// forwarded to its host already. node is n's mapping in the file.
func (p *parser) checkOneToOneKeys(n *nodeSpec, node *value) {
	if n.node.NAT.Type != nat.OneToOne {
		return
	}
	if e := node.get("port-mapping"); e != nil && len(n.node.NAT.PortMapping) > 0 {
		p.errs.errorf(e.val.pos, "%s.port-mapping: a one-to-one nat takes no port-mapping: its host owns every port of the public address without asking for one; remove port-mapping, or choose another type", n.path)
	}
	if e := node.get("forward"); e != nil && e.val.kind != kindNull {
		p.errs.errorf(e.val.pos, "%s.forward: a one-to-one nat takes no forward: it sends every port of its public address to its host already; remove forward, or choose another type", n.path)
		n.nat.forwardVal = nil
	}
}

// checkOneToOne reports each one-to-one nat that has not exactly one host
// behind it, once who is behind whom is known: at its type when nothing
// is behind it, else at the behind of each node but the first host.
func (p *parser) checkOneToOne() {
	for _, t := range p.nodes {
		if !t.ok || t.nat == nil || t.node.NAT.Type != nat.OneToOne {
			continue
		}
		var owner *nodeSpec
		for _, n := range p.nodes {
			if n.parent != t {
				continue
			}
			switch {
			case n.node.Kind != KindHost:
				p.errs.errorf(n.behindVal.pos, "%s.behind: %s is a one-to-one nat, and only a host can be behind one: it gives that host its public address; make %s a host, or choose another type for %s",
					n.path, t.node.Name, n.node.Name, t.node.Name)
			case owner != nil:
				p.errs.errorf(n.behindVal.pos, "%s.behind: %s is a one-to-one nat, and its public address is %s's already (%s, line %d): a one-to-one nat has one host behind it; put %s behind another nat",
					n.path, t.node.Name, owner.node.Name, owner.path, owner.node.Pos.Line, n.node.Name)
			default:
				owner = n
			}
		}
		if owner == nil && len(t.children) == 0 {
			p.errs.errorf(t.nat.knobs.typVal.pos, "%s.type: a one-to-one nat gives its public address to the one host behind it, and no node is behind %s; put a host behind it (behind: %s)",
				t.path, t.node.Name, t.node.Name)
		}
	}
}

// OneToOneHost returns the host behind one-to-one nat n, whose private
// address owns n's public address, or a message saying why n cannot be a
// one-to-one nat of t: it is one only with exactly one node behind it,
// and that a host. A parsed topology's one-to-one nats always have their
// host; a nat switched to one-to-one on a running lab may not.
func (t *Topology) OneToOneHost(n *Node) (*Node, string) {
	behind := t.Behind(n.Name)
	switch {
	case n.NAT == nil:
		return nil, fmt.Sprintf("%s is a %s, not a nat", n.Name, n.Kind)
	case len(behind) == 0:
		return nil, fmt.Sprintf("no node is behind %s, and a one-to-one nat gives its public address to the one host behind it", n.Name)
	case len(behind) > 1:
		return nil, fmt.Sprintf("%d nodes are behind %s, and a one-to-one nat has one host behind it", len(behind), n.Name)
	case behind[0].Kind != KindHost:
		return nil, fmt.Sprintf("%s, behind %s, is a %s, and only a host can be behind a one-to-one nat", behind[0].Name, n.Name, behind[0].Kind)
	}
	return behind[0], ""
}
