package topology

import (
	"slices"
	"strings"
)

// validate checks what involves more than one node and fills in defaults,
// in the order the checks depend on each other: who is behind whom and
// how many nodes each segment holds, then the LANs, then the addresses on them (IPv4, then IPv6), then the
// forwards to those addresses.
func (p *parser) validate() {
	p.resolveBehind()
	p.checkSegmentSizes()
	p.checkOneToOne()
	p.checkSubscribers()
	p.findCycles()
	p.readLANs()
	p.defaultLANs()
	p.checkNestedLANs()
	p.addresses()
	p.lans6()
	p.addresses6()
	p.checkMTU6()
	p.resolveForwards()
	for _, n := range p.nodes {
		if n.ok {
			p.topo.Nodes = append(p.topo.Nodes, n.node)
		}
	}
}

// resolveBehind links every node to the NAT it is behind.
func (p *parser) resolveBehind() {
	for _, n := range p.nodes {
		if !n.ok || n.behindBad {
			continue
		}
		if n.behindVal == nil {
			n.uplinkKnown, n.rooted = true, true
			continue
		}
		name, v, path := n.node.Behind, n.behindVal, n.path+".behind"
		t, found := p.byName[name]
		switch {
		case name == n.node.Name:
			p.errs.errorf(v.pos, "%s: %s cannot be behind itself; name the nat it is behind, or leave behind out to put it on the internet", path, name)
		case !found && len(p.natNames) == 0:
			p.errs.errorf(v.pos, "%s: no node named %q, and there is no nat to be behind; add one with kind: nat", path, name)
		case !found:
			p.errs.errorf(v.pos, "%s: no node named %q; the nats are %s", path, name, listNames(p.natNames))
		case !t.ok:
			// Its kind was already reported.
		case t.node.Kind != KindNAT:
			p.errs.errorf(v.pos, "%s: %s is a %s; only a nat can have nodes behind it", path, name, t.node.Kind)
		default:
			n.parent, n.uplinkKnown = t, true
			t.children = append(t.children, n.node.Name)
			if n.nat != nil {
				t.natChildren = append(t.natChildren, n)
			}
		}
	}
	for _, n := range p.nodes {
		slices.Sort(n.children)
	}
}

// findCycles reports NATs that are behind each other in a circle, once per
// circle, and marks which nodes have a chain of NATs that ends on the
// internet. Each NAT has at most one parent, so following parents from
// every NAT once finds every cycle in linear time.
func (p *parser) findCycles() {
	const (
		unseen = iota
		onPath
		done
	)
	state := make(map[*nodeSpec]int, len(p.nodes))
	for _, start := range p.nodes {
		if state[start] != unseen {
			continue
		}
		var path []*nodeSpec
		x := start
		for ; x != nil && state[x] == unseen; x = x.parent {
			state[x] = onPath
			path = append(path, x)
		}
		rooted := x != nil && x.rooted
		if x != nil && state[x] == onPath {
			p.reportCycle(path, x)
			rooted = false
		}
		if x == nil {
			// The chain ended at a node that is on the internet or has
			// a broken behind.
			rooted = path[len(path)-1].rooted
		}
		for _, n := range path {
			state[n] = done
			n.rooted = rooted
		}
	}
}

// reportCycle reports the cycle that starts at from in path, at the member
// the file lists first.
func (p *parser) reportCycle(path []*nodeSpec, from *nodeSpec) {
	i := 0
	for path[i] != from {
		i++
	}
	cycle := path[i:]
	first := 0
	for j, n := range cycle {
		if p.index(n) < p.index(cycle[first]) {
			first = j
		}
	}
	names := make([]string, 0, len(cycle)+1)
	for j := range cycle {
		names = append(names, cycle[(first+j)%len(cycle)].node.Name)
	}
	names = append(names, names[0])
	n := cycle[first]
	p.errs.errorf(n.behindVal.pos, "%s.behind: nats behind each other in a cycle: %s; one of them must be on the internet", n.path, strings.Join(names, " -> "))
}

// index is n's place in the file, by the position of its name.
func (p *parser) index(n *nodeSpec) int {
	return n.node.Pos.Line<<20 + n.node.Pos.Column
}
