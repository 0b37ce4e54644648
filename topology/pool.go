package topology

import (
	"github.com/natlab/natlab/nat"
)

// A nat may have several public addresses, a pool (RFC 4787 section 4.1):
// public: takes a list, and pooling: says how a new mapping picks its
// address from it. With one address there is nothing to pick, so pooling:
// is refused there rather than silently meaning nothing.

// readPooling reads a nat's pooling: value.
func (p *parser) readPooling(n *nodeSpec, v *value, path string) {
	s, ok := p.str(v, path, "paired or arbitrary")
	if !ok {
		return
	}
	pl, err := nat.ParsePooling(s)
	if err != nil {
		p.errs.errorf(v.pos, "%s: %v", path, err)
		return
	}
	n.nat.pooling, n.nat.poolingVal = pl, v
}

// checkPool sets the pooling of nat n, whose entry in the file is node,
// and reports what does not go with its addresses: pooling: with one
// address, and a pool on a nat that has no use for one (one-to-one, whose
// host owns one public address) or whose port-mapping protocols would
// have to say which address a forward is on.
func (p *parser) checkPool(n *nodeSpec, node *value) {
	pooled := len(n.addrs) > 1
	if !pooled {
		if v := n.nat.poolingVal; v != nil {
			p.errs.errorf(v.pos, "%s.pooling: a nat with one public address has no pool to choose from; give public: a list of addresses, or remove pooling", n.path)
		}
		return
	}
	n.node.NAT.Pooling = nat.PoolingPaired
	if n.nat.poolingVal != nil {
		n.node.NAT.Pooling = n.nat.pooling
	}
	at := node.get("public").val
	switch {
	case n.node.NAT.Type == nat.OneToOne:
		p.errs.errorf(at.pos, "%s.public: a one-to-one nat has one public address, its host's; give public: one address", n.path)
	case len(n.node.NAT.PortMapping) > 0:
		p.errs.errorf(at.pos, "%s.public: port-mapping does not work with several public addresses yet (a grant names one address); give public: one address, or remove port-mapping", n.path)
	}
}
