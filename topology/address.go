package topology

import (
	"net/netip"
	"strings"
)

// reservedRanges are IPv4 ranges no segment may use: the kernel gives them
// special meaning, so a lab built on them would not behave like a network.
var reservedRanges = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// maxSegmentBits is the longest prefix a segment may have: a /30 leaves
// two host addresses, a NAT's gateway and one node.
const maxSegmentBits = 30

// prefix reads an IPv4 prefix a segment can use; example shows the form.
// Host bits are left as written: for a LAN they name the gateway.
func (p *parser) prefix(v *value, path, example string) (netip.Prefix, bool) {
	s, ok := p.str(v, path, "an IPv4 prefix such as "+example)
	if !ok {
		return netip.Prefix{}, false
	}
	s = strings.TrimSpace(s)
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			p.errs.errorf(v.pos, "%s: %s is an address; want a prefix with its length, such as %s", path, s, example)
		} else if strings.Contains(s, ":") {
			p.errs.errorf(v.pos, "%s: %s is IPv6; want an IPv4 prefix such as %s (IPv6 goes in %s)", path, s, example, key6(path))
		} else {
			p.errs.errorf(v.pos, "%s: invalid prefix %q; want an IPv4 prefix such as %s", path, s, example)
		}
	case !pfx.Addr().Is4():
		p.errs.errorf(v.pos, "%s: %s is IPv6; want an IPv4 prefix such as %s (IPv6 goes in %s)", path, s, example, key6(path))
	case pfx.Bits() > maxSegmentBits:
		p.errs.errorf(v.pos, "%s: %s is too small; a segment needs at least a /%d, which has two host addresses", path, s, maxSegmentBits)
	default:
		for _, r := range reservedRanges {
			if pfx.Overlaps(r.prefix) {
				p.errs.errorf(v.pos, "%s: %s overlaps %s, the %s range; choose another range", path, s, r.prefix, r.what)
				return netip.Prefix{}, false
			}
		}
		return pfx, true
	}
	return netip.Prefix{}, false
}

// addr reads one IPv4 address.
func (p *parser) addr(v *value, path string) (netip.Addr, bool) {
	s, ok := p.str(v, path, "an IPv4 address")
	if !ok {
		return netip.Addr{}, false
	}
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		if pfx, err := netip.ParsePrefix(s); err == nil && pfx.Addr().Is4() {
			p.errs.errorf(v.pos, "%s: want an address without a length, such as %s; the length comes from the segment it is on", path, pfx.Addr())
		} else if strings.Contains(s, ":") {
			p.errs.errorf(v.pos, "%s: %s is IPv6; want an IPv4 address such as 203.0.113.10 (IPv6 goes in %s)", path, s, key6(path))
		} else {
			p.errs.errorf(v.pos, "%s: invalid IPv4 address %q; want an address such as 203.0.113.10", path, s)
		}
	case !a.Is4():
		p.errs.errorf(v.pos, "%s: %s is IPv6; want an IPv4 address such as 203.0.113.10 (IPv6 goes in %s)", path, s, key6(path))
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// lastKey is the key path ends in, without an index: addresses for
// nodes.stun.addresses[1].
func lastKey(path string) string {
	k := path[strings.LastIndexByte(path, '.')+1:]
	if i := strings.IndexByte(k, '['); i >= 0 {
		k = k[:i]
	}
	return k
}

// key6 names the IPv6 counterpart of the key path ends in: lan6 for
// nodes.home.lan.
func key6(path string) string { return lastKey(path) + "6" }

// IPv4 arithmetic on addresses as numbers.

func toU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromU32(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

// bounds returns the network and broadcast address of an IPv4 prefix as
// numbers.
func bounds(pfx netip.Prefix) (network, broadcast uint32) {
	network = toU32(pfx.Masked().Addr())
	return network, network | (1<<(32-pfx.Bits()) - 1)
}

// hostCount is how many addresses of pfx nodes can have.
func hostCount(pfx netip.Prefix) int64 {
	return 1<<(32-pfx.Bits()) - 2
}
