package topology

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// IPv6 makes a lab dual stack. There is no NAT for IPv6: internet6 is cut
// into /64s, the first for the internet and one for each NAT's LAN, and a
// NAT routes between them, filtering what comes in with its firewall6.
// Since no LAN's prefix is inside another's, LANs cannot overlap the way
// IPv4 LANs of nested NATs can; they only have to be distinct.

// Limits of internet6. A /48 holds 65536 /64s, more than a lab of
// MaxNodes has NATs; a prefix shorter than a /32 is more than any lab
// needs.
const (
	minInternet6Bits = 32
	maxInternet6Bits = 48
	// lan6Bits is the length of every IPv6 segment.
	lan6Bits = 64
)

// internet6Example is the prefix messages suggest: the IPv6 documentation
// prefix of RFC 3849, as 203.0.113.0/24 is for IPv4.
const internet6Example = "2001:db8::/32"

// reservedRanges6 are IPv6 ranges no segment may use, as reservedRanges
// are for IPv4.
var reservedRanges6 = []struct {
	prefix netip.Prefix
	what   string
}{
	// ::/8 holds the unspecified and loopback addresses and IPv4-mapped
	// addresses.
	{netip.MustParsePrefix("::/8"), "reserved"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// reserved6 says which reserved range a holds, if any.
func reserved6(a netip.Addr) (netip.Prefix, string, bool) {
	for _, r := range reservedRanges6 {
		if r.prefix.Contains(a) {
			return r.prefix, r.what, true
		}
	}
	return netip.Prefix{}, "", false
}

// needInternet6 reports whether key f, which only a dual-stack lab takes,
// may be read; it reports the key when the file has no internet6.
func (p *parser) needInternet6(f entry, path string) bool {
	if p.inet6Set {
		return true
	}
	p.errs.errorf(f.keyPos, "%s: the lab is IPv4 only; add internet6: such as %s at the top level to make it dual stack", path, internet6Example)
	return false
}

func (p *parser) internet6(v *value) {
	p.inet6Set = true
	pfx, ok := p.prefix6(v, "internet6", internet6Example)
	if !ok {
		return
	}
	switch bits := pfx.Bits(); {
	case bits < minInternet6Bits:
		p.errs.errorf(v.pos, "internet6: %s is larger than a lab needs; want a /%d to /%d, such as %s", pfx, minInternet6Bits, maxInternet6Bits, internet6Example)
	case bits > maxInternet6Bits:
		p.errs.errorf(v.pos, "internet6: %s is too small; want a /%d to /%d, which holds a /64 for the internet and one for each nat's LAN, such as %s", pfx, minInternet6Bits, maxInternet6Bits, internet6Example)
	case pfx.Masked() != pfx:
		p.errs.errorf(v.pos, "internet6: %s has host bits set; write %s", pfx, pfx.Masked())
	default:
		for _, r := range reservedRanges6 {
			if pfx.Overlaps(r.prefix) {
				p.errs.errorf(v.pos, "internet6: %s overlaps %s, the %s range; choose another range, such as %s", pfx, r.prefix, r.what, internet6Example)
				return
			}
		}
		p.inet6OK = true
		p.topo.Internet6 = pfx
		p.topo.Internet6Segment = nth64(pfx, 0)
	}
}

// prefix6 reads an IPv6 prefix; example shows the form. Its length and
// host bits are for the caller to check.
func (p *parser) prefix6(v *value, path, example string) (netip.Prefix, bool) {
	s, ok := p.str(v, path, "an IPv6 prefix such as "+example)
	if !ok {
		return netip.Prefix{}, false
	}
	s = strings.TrimSpace(s)
	v4Key := strings.TrimSuffix(lastKey(path), "6")
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err == nil && pfx.Addr().Is4():
		p.errs.errorf(v.pos, "%s: %s is IPv4; want an IPv6 prefix such as %s (IPv4 goes in %s)", path, s, example, v4Key)
	case err == nil:
		return pfx, true
	default:
		a, aerr := netip.ParseAddr(s)
		switch {
		case aerr == nil && a.Is4():
			p.errs.errorf(v.pos, "%s: %s is IPv4; want an IPv6 prefix such as %s (IPv4 goes in %s)", path, s, example, v4Key)
		case aerr == nil:
			p.errs.errorf(v.pos, "%s: %s is an address; want a prefix with its length, such as %s", path, s, example)
		default:
			p.errs.errorf(v.pos, "%s: invalid prefix %q; want an IPv6 prefix such as %s", path, s, example)
		}
	}
	return netip.Prefix{}, false
}

// addr6 reads one IPv6 address of a node on seg, which is nil when the
// segment is not known.
func (p *parser) addr6(v *value, path string, seg *segment6) (netip.Addr, bool) {
	example := "2001:db8::10"
	if seg != nil {
		example = hostAddr6(seg.prefix, 0x10).String()
	}
	s, ok := p.str(v, path, "an IPv6 address such as "+example)
	if !ok {
		return netip.Addr{}, false
	}
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		if pfx, err := netip.ParsePrefix(s); err == nil && pfx.Addr().Is6() {
			p.errs.errorf(v.pos, "%s: want an address without a length, such as %s; the length comes from the segment it is on, a /64", path, pfx.Addr())
		} else if err == nil {
			p.errs.errorf(v.pos, "%s: %s is IPv4; want an IPv6 address such as %s (IPv4 goes in %s)", path, s, example, strings.TrimSuffix(lastKey(path), "6"))
		} else {
			p.errs.errorf(v.pos, "%s: invalid IPv6 address %q; want an address such as %s", path, s, example)
		}
	case a.Is4():
		p.errs.errorf(v.pos, "%s: %s is IPv4; want an IPv6 address such as %s (IPv4 goes in %s)", path, s, example, strings.TrimSuffix(lastKey(path), "6"))
	case a.Zone() != "":
		p.errs.errorf(v.pos, "%s: %s has a zone; want an address without one, such as %s", path, s, example)
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// nth64 is the i-th /64 of pfx, which is at most a /64.
func nth64(pfx netip.Prefix, i uint64) netip.Prefix {
	b := pfx.Masked().Addr().As16()
	binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])+i)
	return netip.PrefixFrom(netip.AddrFrom16(b), lan6Bits)
}

// hostAddr6 is the address with interface identifier id in the /64 pfx:
// ::1 for id 1.
func hostAddr6(pfx netip.Prefix, id uint64) netip.Addr {
	b := pfx.Masked().Addr().As16()
	binary.BigEndian.PutUint64(b[8:], id)
	return netip.AddrFrom16(b)
}

// count64 is how many /64s internet6 holds.
func count64(pfx netip.Prefix) uint64 {
	return 1 << (lan6Bits - pfx.Bits())
}

// lan6Example is a /64 of internet6 for messages: its second, the first
// a LAN can have.
func (p *parser) lan6Example() netip.Prefix {
	if p.inet6OK {
		return nth64(p.topo.Internet6, 1)
	}
	return netip.MustParsePrefix("2001:db8:0:1::/64")
}

// lans6 gives every NAT its /64: the lan6: the file gives, each checked,
// then for the others the lowest free ones in file order.
func (p *parser) lans6() {
	taken := make(map[netip.Prefix]*nodeSpec)
	for _, n := range p.nodes {
		if !n.ok || n.nat == nil || n.nat.lan6Val == nil {
			continue
		}
		v, path := n.nat.lan6Val, n.path+".lan6"
		pfx, ok := p.prefix6(v, path, p.lan6Example().String())
		if !ok {
			continue
		}
		inet6 := p.topo.Internet6
		switch {
		case pfx.Bits() != lan6Bits:
			p.errs.errorf(v.pos, "%s: %s is a /%d; a LAN is one /64, such as %s", path, pfx, pfx.Bits(), p.lan6Example())
			continue
		case pfx.Masked() != pfx:
			p.errs.errorf(v.pos, "%s: %s has host bits set; write %s (the nat's gateway is always ::1 of its LAN)", path, pfx, pfx.Masked())
			continue
		case p.inet6OK && !inet6.Contains(pfx.Addr()):
			p.errs.errorf(v.pos, "%s: %s is outside %s, internet6; every /64 of the lab is one of internet6's, such as %s", path, pfx, inet6, p.lan6Example())
			continue
		case p.inet6OK && pfx == p.topo.Internet6Segment:
			p.errs.errorf(v.pos, "%s: %s is the internet's /64, the first of internet6; choose another of %s, or leave lan6 out to get a free one", path, pfx, inet6)
			continue
		}
		if first, dup := taken[pfx]; dup {
			p.errs.errorf(v.pos, "%s: %s is already the LAN of %s, at line %d; each LAN has a /64 of its own, so choose another, or leave lan6 out to get a free one",
				path, pfx, first.node.Name, first.nat.lan6Val.pos.Line)
			continue
		}
		taken[pfx] = n
		p.setLAN6(n, pfx)
	}
	if !p.inet6OK {
		return
	}

	next, limit := uint64(1), count64(p.topo.Internet6)
	var first *nodeSpec
	missing := 0
	for _, n := range p.nodes {
		if !n.ok || n.nat == nil || n.nat.lan6Val != nil {
			continue
		}
		for next < limit && taken[nth64(p.topo.Internet6, next)] != nil {
			next++
		}
		if next >= limit {
			if first == nil {
				first = n
			}
			missing++
			continue
		}
		p.setLAN6(n, nth64(p.topo.Internet6, next))
		next++
	}
	if first != nil {
		more := ""
		if missing > 1 {
			more = fmt.Sprintf(" (nor for %d more nats after it)", missing-1)
		}
		p.errs.errorf(first.node.Pos, "%s: no /64 of %s, internet6, is left for this nat's LAN%s; give internet6 a shorter prefix",
			first.path, p.topo.Internet6, more)
	}
}

func (p *parser) setLAN6(n *nodeSpec, lan netip.Prefix) {
	n.node.NAT.LAN6, n.node.NAT.Gateway6, n.nat.lan6OK = lan, hostAddr6(lan, 1), true
}

// segment6 is an IPv6 segment of addresses, a /64: the internet's or a
// NAT's LAN. Unlike an IPv4 segment it cannot fill up; a lab has far fewer
// nodes than a /64 has addresses.
type segment6 struct {
	prefix netip.Prefix
	// name says which segment this is in messages: "2001:db8:0:1::/64,
	// the LAN of nat-a".
	name   string
	owners map[netip.Addr]owner
	// next is the interface identifier the search for a free address
	// resumes at; everything below it is in use.
	next uint64
}

// newSegment6 makes the segment prefix, whose allocation starts at the
// interface identifier first.
func newSegment6(prefix netip.Prefix, what string, first uint64) *segment6 {
	return &segment6{
		prefix: prefix,
		name:   segmentName(prefix, what),
		owners: make(map[netip.Addr]owner),
		next:   first,
	}
}

// problem says why a cannot be an address of a node on s, or "".
func (s *segment6) problem(a netip.Addr) string {
	switch {
	case !s.prefix.Contains(a):
		return fmt.Sprintf("%s is outside %s", a, s.name)
	case a == s.prefix.Addr():
		return fmt.Sprintf("%s is the subnet-router anycast address of %s; host addresses start at %s", a, s.name, hostAddr6(s.prefix, 1))
	}
	return ""
}

// take gives a to o, or returns who has it already.
func (s *segment6) take(a netip.Addr, o owner) (holder owner, taken bool) {
	if h, ok := s.owners[a]; ok {
		return h, true
	}
	s.owners[a] = o
	return owner{}, false
}

// alloc gives o the lowest free address from where allocation resumes.
func (s *segment6) alloc(o owner) netip.Addr {
	for {
		a := hostAddr6(s.prefix, s.next)
		s.next++
		if _, used := s.owners[a]; !used {
			s.owners[a] = o
			return a
		}
	}
}

// addresses6 checks the IPv6 addresses the file gives and allocates the
// rest, as addresses does for IPv4: gateways first, then every address
// given, then the defaults in file order.
func (p *parser) addresses6() {
	if !p.inet6Set {
		return
	}
	var internet *segment6
	if p.inet6OK {
		// The internet has no gateway: its first address is a node's.
		internet = newSegment6(p.topo.Internet6Segment, "the internet", 1)
	}
	for _, n := range p.nodes {
		if n.ok && n.nat != nil && n.nat.lan6OK {
			n.nat.seg6 = newSegment6(n.node.NAT.LAN6, "the LAN of "+n.node.Name, 2)
			n.nat.seg6.take(n.node.NAT.Gateway6, owner{node: n, gateway: true})
		}
	}
	uplink := func(n *nodeSpec) *segment6 {
		switch {
		case !n.ok || !n.uplinkKnown:
			return nil
		case n.parent == nil:
			return internet
		}
		return n.parent.nat.seg6
	}

	for _, n := range p.nodes {
		seg := uplink(n)
		for _, as := range n.addrs6 {
			a, ok := p.addr6(as.val, as.path, seg)
			if !ok || seg == nil {
				continue
			}
			if msg := seg.problem(a); msg != "" {
				p.errs.errorf(as.val.pos, "%s: %s", as.path, msg)
				continue
			}
			if holder, taken := seg.take(a, owner{node: n}); taken {
				p.errs.errorf(as.val.pos, "%s: %s", as.path, takenMessage6(a, holder, n, seg))
				continue
			}
			n.node.Addresses6 = append(n.node.Addresses6, a)
		}
	}

	for _, n := range p.nodes {
		seg := uplink(n)
		if seg == nil || n.addrs6Given {
			continue
		}
		// As many as the node has IPv4 addresses: a STUN server answers
		// from a second one over IPv6 too.
		// A nat's pool is IPv4's alone: IPv6 is not translated.
		want := n.wantAddrs
		if n.addrsGiven && n.nat == nil {
			want = len(n.addrs)
		}
		for range want {
			n.node.Addresses6 = append(n.node.Addresses6, seg.alloc(owner{node: n}))
		}
	}
}

// takenMessage6 says that a, which n wants, is held by holder already.
func takenMessage6(a netip.Addr, holder owner, n *nodeSpec, seg *segment6) string {
	switch {
	case holder.node == n && !holder.gateway:
		return fmt.Sprintf("%s is listed twice", a)
	case holder.gateway:
		return fmt.Sprintf("%s is taken by %s, on %s; a nat's IPv6 gateway is always ::1 of its LAN", a, holder, seg.name)
	}
	return fmt.Sprintf("%s is taken by %s, on %s", a, holder, seg.name)
}
