package topology

import (
	"fmt"
	"net/netip"
)

// segment is one subnet nodes have addresses on: the internet or a NAT's
// LAN. It tracks who holds which address; addresses are unique within a
// segment but not across segments, since two homes behind different NATs
// may well both use 192.168.1.0/24.
type segment struct {
	prefix netip.Prefix
	// name says which segment this is in messages: "192.168.1.0/24, the
	// LAN of nat-a".
	name string
	// network and broadcast bound the host addresses, as numbers.
	network, broadcast uint32
	owners             map[uint32]owner
	// next is where the search for a free address resumes. Addresses are
	// only ever taken, never freed, so everything below next is in use and
	// allocation is linear overall however many nodes share a segment.
	next uint32

	// short counts addresses that did not fit and firstShort is the node
	// that first missed out, for one message per full segment.
	short      int
	firstShort *nodeSpec
}

// owner is who holds an address: a node, or a NAT as its gateway.
type owner struct {
	node    *nodeSpec
	gateway bool
}

func (o owner) String() string {
	if o.gateway {
		return o.node.node.Name + "'s gateway"
	}
	return o.node.node.Name
}

func newSegment(prefix netip.Prefix, what string) *segment {
	network, broadcast := bounds(prefix)
	return &segment{
		prefix:    prefix.Masked(),
		name:      segmentName(prefix.Masked(), what),
		network:   network,
		broadcast: broadcast,
		owners:    make(map[uint32]owner),
		next:      network + 1,
	}
}

// problem says why a cannot be an address of a node on s, or "".
func (s *segment) problem(a netip.Addr) string {
	u := toU32(a)
	switch {
	case !s.prefix.Contains(a):
		return fmt.Sprintf("%s is outside %s", a, s.name)
	case u == s.network:
		return fmt.Sprintf("%s is the network address of %s", a, s.name)
	case u == s.broadcast:
		return fmt.Sprintf("%s is the broadcast address of %s", a, s.name)
	}
	return ""
}

// take gives a to o, or returns who has it already.
func (s *segment) take(a netip.Addr, o owner) (holder owner, taken bool) {
	u := toU32(a)
	if h, ok := s.owners[u]; ok {
		return h, true
	}
	s.owners[u] = o
	return owner{}, false
}

// alloc gives o the lowest free host address.
func (s *segment) alloc(o owner) (netip.Addr, bool) {
	for ; s.next < s.broadcast; s.next++ {
		if _, used := s.owners[s.next]; !used {
			s.owners[s.next] = o
			return fromU32(s.next), true
		}
	}
	return netip.Addr{}, false
}

// ownerOf returns who holds a.
func (s *segment) ownerOf(a netip.Addr) (owner, bool) {
	o, ok := s.owners[toU32(a)]
	return o, ok
}

// addresses checks the addresses the file gives and allocates the rest.
// Every given address is taken before any is allocated, so a default never
// lands on an address the file gives a node further down; gateways are
// taken first of all, since lan: fixes them.
func (p *parser) addresses() {
	var internet *segment
	if p.inetOK {
		internet = newSegment(p.topo.Internet, "the internet")
	}
	for _, n := range p.nodes {
		if n.ok && n.nat != nil && n.nat.lanOK {
			n.nat.seg = newSegment(n.node.NAT.LAN, "the LAN of "+n.node.Name)
			n.nat.seg.take(n.node.NAT.Gateway, owner{node: n, gateway: true})
		}
	}
	uplink := func(n *nodeSpec) *segment {
		switch {
		case !n.ok || !n.uplinkKnown:
			return nil
		case n.parent == nil:
			return internet
		}
		return n.parent.nat.seg
	}

	for _, n := range p.nodes {
		seg := uplink(n)
		for _, as := range n.addrs {
			a, ok := p.addr(as.val, as.path)
			if !ok || seg == nil {
				continue
			}
			if msg := seg.problem(a); msg != "" {
				p.errs.errorf(as.val.pos, "%s: %s", as.path, msg)
				continue
			}
			if holder, taken := seg.take(a, owner{node: n}); taken {
				p.errs.errorf(as.val.pos, "%s: %s", as.path, takenMessage(a, holder, n, seg))
				continue
			}
			n.node.Addresses = append(n.node.Addresses, a)
		}
	}

	var full []*segment
	for _, n := range p.nodes {
		seg := uplink(n)
		if seg == nil || n.addrsGiven {
			continue
		}
		for range n.wantAddrs {
			a, ok := seg.alloc(owner{node: n})
			if !ok {
				if seg.firstShort == nil {
					seg.firstShort = n
					full = append(full, seg)
				}
				seg.short++
				continue
			}
			n.node.Addresses = append(n.node.Addresses, a)
		}
	}
	for _, seg := range full {
		n := seg.firstShort
		p.errs.errorf(n.node.Pos, "%s: no address left on %s: it has %d host addresses, and its nodes need %d more; give it a larger prefix",
			n.path, seg.name, hostCount(seg.prefix), seg.short)
	}
}

// takenMessage says that a, which n wants, is held by holder already.
func takenMessage(a netip.Addr, holder owner, n *nodeSpec, seg *segment) string {
	msg := fmt.Sprintf("%s is taken by %s, on %s", a, holder, seg.name)
	switch {
	case holder.node == n && !holder.gateway:
		return fmt.Sprintf("%s is listed twice", a)
	case holder.gateway && holder.node.nat.lanVal == nil:
		return msg + fmt.Sprintf("; %s has no lan:, so it gets a default LAN with the gateway on its first address", holder.node.node.Name)
	case holder.gateway && holder.node.nat.gatewayImplicit:
		return msg + fmt.Sprintf("; lan: %s puts the gateway on the first address, and lan: %s would put it on the last",
			seg.prefix, netip.PrefixFrom(fromU32(seg.broadcast-1), seg.prefix.Bits()))
	}
	return msg
}
