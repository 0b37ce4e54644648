package topology

import (
	"fmt"
	"net/netip"
)

// readLANs reads the LANs the file gives. lan: 192.168.1.0/24 puts the
// gateway on the first host address; lan: 192.168.1.254/24, with host bits
// set, puts it on that address.
func (p *parser) readLANs() {
	for _, n := range p.nodes {
		if !n.ok || n.nat == nil || n.nat.lanVal == nil {
			continue
		}
		v, path := n.nat.lanVal, n.path+".lan"
		pfx, ok := p.prefix(v, path, "192.168.1.0/24")
		if !ok {
			continue
		}
		lan := pfx.Masked()
		network, broadcast := bounds(lan)
		gateway := fromU32(network + 1)
		n.nat.gatewayImplicit = pfx.Addr() == lan.Addr()
		if !n.nat.gatewayImplicit {
			gateway = pfx.Addr()
			if toU32(gateway) == broadcast {
				p.errs.errorf(v.pos, "%s: %s is the broadcast address of %s, so it cannot be the nat's gateway; write %s for the gateway %s, or set another host address", path, gateway, lan, lan, fromU32(network+1))
				continue
			}
			if toU32(gateway) != network+1 {
				p.topo.Warnings.warnf(v.pos, "%s: %s has host bits set, so natlab reads it as LAN %s with the nat on %s; write %s to put the nat on %s", path, pfx, lan, gateway, lan, fromU32(network+1))
			}
		}
		n.node.NAT.LAN, n.node.NAT.Gateway, n.nat.lanOK = lan, gateway, true
		if p.inetOK && lan.Overlaps(p.topo.Internet) {
			p.errs.errorf(v.pos, "%s: %s overlaps %s; a LAN must be apart from the internet", path, lan, p.internetSegment())
		}
	}
}

// defaultLANs gives each NAT without a lan: the first of 192.168.1.0/24 to
// 192.168.255.0/24 that overlaps no subnet written in the file, no LAN
// given before and not the internet. Default LANs are all distinct, which
// keeps them apart from each other even when NATs are nested.
func (p *parser) defaultLANs() {
	// blocked[i] says 192.168.i.0/24 is not free. The defaults start at
	// .1, as home routers' do.
	var blocked [256]bool
	blocked[0] = true
	block := func(pfx netip.Prefix) {
		if !pfx.Overlaps(defaultLANRange) {
			return
		}
		if pfx.Bits() <= defaultLANRange.Bits() {
			for i := range blocked {
				blocked[i] = true
			}
			return
		}
		network, broadcast := bounds(pfx)
		for i := network >> 8 & 0xff; i <= broadcast>>8&0xff; i++ {
			blocked[i] = true
		}
	}
	if p.inetOK {
		block(p.topo.Internet)
	}
	for _, n := range p.nodes {
		if n.ok && n.nat != nil && n.nat.lanOK {
			block(n.node.NAT.LAN)
		}
	}
	next := 1
	var first *nodeSpec
	missing := 0
	for _, n := range p.nodes {
		if !n.ok || n.nat == nil || n.nat.lanVal != nil {
			continue
		}
		for next < len(blocked) && blocked[next] {
			next++
		}
		if next >= len(blocked) {
			if first == nil {
				first = n
			}
			missing++
			continue
		}
		lan := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(next), 0}), 24)
		blocked[next] = true
		n.node.NAT.LAN, n.node.NAT.Gateway = lan, netip.AddrFrom4([4]byte{192, 168, byte(next), 1})
		n.nat.lanOK, n.nat.gatewayImplicit = true, true
	}
	if first != nil {
		more := ""
		if missing > 1 {
			more = fmt.Sprintf(" (nor for %d more nats after it)", missing-1)
		}
		p.errs.errorf(first.node.Pos, "%s: no default LAN is left for this nat%s: every one of 192.168.1.0/24 to 192.168.255.0/24 is taken or overlaps a subnet in the file; give it a lan:", first.path, more)
	}
}

// defaultLANRange holds the LANs nats get by default.
var defaultLANRange = netip.MustParsePrefix("192.168.0.0/16")

// checkNestedLANs reports a LAN that overlaps the LAN of a NAT above it: a
// packet for an address in both could not be routed. LANs of NATs side by
// side may overlap, as two homes both using 192.168.1.0/24 do; they never
// see each other's addresses.
//
// Two prefixes overlap only when one holds the other, so instead of
// comparing each LAN with every LAN above it (quadratic for a long chain
// of NATs) a depth-first walk keeps the LANs above the current NAT indexed
// by themselves and by each of their supernets, and asks at most 33
// questions per NAT.
func (p *parser) checkNestedLANs() {
	above := make(map[netip.Prefix][]*nodeSpec)  // LANs on the path, by prefix
	inside := make(map[netip.Prefix][]*nodeSpec) // LANs on the path, by each supernet
	depth := make(map[*nodeSpec]int)
	supernets := func(lan netip.Prefix, visit func(netip.Prefix)) {
		for bits := lan.Bits(); bits >= 0; bits-- {
			s, _ := lan.Addr().Prefix(bits)
			visit(s)
		}
	}
	check := func(n *nodeSpec) {
		lan := n.node.NAT.LAN
		var nearest *nodeSpec
		closer := func(a []*nodeSpec) {
			if len(a) > 0 && (nearest == nil || depth[a[len(a)-1]] > depth[nearest]) {
				nearest = a[len(a)-1]
			}
		}
		supernets(lan, func(s netip.Prefix) { closer(above[s]) })
		closer(inside[lan])
		if nearest != nil {
			p.errs.errorf(n.nat.lanVal.pos, "%s.lan: %s overlaps %s, the LAN of %s, which %s is behind; nested LANs must be apart (NATs side by side may share one)",
				n.path, lan, nearest.node.NAT.LAN, nearest.node.Name, n.node.Name)
		}
	}

	type step struct {
		n     *nodeSpec
		leave bool
	}
	var stack []step
	for _, n := range p.nodes {
		if n.ok && n.nat != nil && n.parent == nil && n.rooted {
			stack = append(stack, step{n: n})
		}
	}
	for len(stack) > 0 {
		st := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := st.n
		if st.leave {
			if n.nat.lanOK {
				lan := n.node.NAT.LAN
				above[lan] = above[lan][:len(above[lan])-1]
				supernets(lan, func(s netip.Prefix) { inside[s] = inside[s][:len(inside[s])-1] })
			}
			continue
		}
		if n.parent != nil {
			depth[n] = depth[n.parent] + 1
		}
		if n.nat.lanVal != nil && n.nat.lanOK {
			check(n)
		}
		if !n.nat.lanOK {
			// Nothing behind it is checked against a LAN it does not have.
			for _, c := range n.natChildren {
				stack = append(stack, step{n: c})
			}
			continue
		}
		lan := n.node.NAT.LAN
		above[lan] = append(above[lan], n)
		supernets(lan, func(s netip.Prefix) { inside[s] = append(inside[s], n) })
		stack = append(stack, step{n: n, leave: true})
		for _, c := range n.natChildren {
			stack = append(stack, step{n: c})
		}
	}
}
