package topology

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/natlab/natlab/internal/suggest"
)

// What send and punch steps take beyond the basics: the address family,
// IPv6 addresses, and the source a send step's receiver must see.

// Family reads family:, the address family of a step, ipv4 by default.
// The addresses SendTo and SeenAs read are of this family, so it is read
// first.
func (r *StepFields) Family() string {
	r.family = r.readFamily()
	return r.family
}

func (r *StepFields) readFamily() string {
	v := r.field("family")
	if v == nil {
		return FamilyIPv4
	}
	path := joinPath(r.path, "family")
	s, ok := r.p.str(v, path, "ipv4 or ipv6")
	switch {
	case !ok:
	case s == FamilyIPv4:
		return s
	case s == FamilyIPv6:
		if !r.p.inet6Set {
			r.errorf(v.pos, "%s: the lab is IPv4 only; add internet6: such as %s at the top level to make it dual stack", path, internet6Example)
		}
		return s
	default:
		msg := fmt.Sprintf("%s: unknown family %q; want ipv4 or ipv6", path, s)
		if sug := familyHint(s); sug != "" {
			msg += "; did you mean " + sug + "?"
		}
		r.errorf(v.pos, "%s", msg)
	}
	r.ok, r.familyBad = false, true
	return FamilyIPv4
}

// familyHint guesses the family meant by another spelling: IPv6, inet6,
// v4, 6.
func familyHint(s string) string {
	lower := strings.ToLower(strings.TrimSpace(s))
	switch {
	case lower == FamilyIPv4 || lower == FamilyIPv6:
		return lower
	case strings.HasSuffix(lower, "6"):
		return FamilyIPv6
	case strings.HasSuffix(lower, "4"), lower == "inet":
		return FamilyIPv4
	case suggest.Distance(lower, FamilyIPv4) == suggest.Distance(lower, FamilyIPv6):
		// As close to both, such as ipv7: no guess.
		return ""
	}
	return suggest.Closest(lower, []string{FamilyIPv4, FamilyIPv6})
}

// isIPv6Text says whether an address as written is meant as IPv6: it has
// more than one colon, or brackets.
func isIPv6Text(s string) bool {
	return strings.Count(s, ":") > 1 || strings.HasPrefix(s, "[")
}

// example6 is an IPv6 address for messages: the internet's first.
func (p *parser) example6() string {
	if p.inet6OK {
		return hostAddr6(p.topo.Internet6Segment, 1).String()
	}
	return "2001:db8::1"
}

// wrongFamily reports target, an address of family got, when the step
// sends over the other family; want says what the field takes.
func (r *StepFields) wrongFamily(v *value, path, target, got, want string) bool {
	if r.familyBad || r.family == got {
		return false
	}
	if got == FamilyIPv6 {
		msg := fmt.Sprintf("%s: %q is IPv6, and this step sends over IPv4; add family: ipv6", path, target)
		if !r.p.inet6Set {
			msg += fmt.Sprintf(", and internet6: such as %s at the top level to make the lab dual stack", internet6Example)
		}
		r.errorf(v.pos, "%s", msg)
		return true
	}
	r.errorf(v.pos, "%s: %s is IPv4, and this step sends over IPv6; want %s, or leave family out to send over IPv4", path, target, want)
	return true
}

// addr6Text reads an IPv6 address written in a step: ADDRESS, or
// [ADDRESS]:PORT. The port is 0 when none is given, which is an error when
// needPort is set; want says what the field takes.
func (r *StepFields) addr6Text(v *value, path, target, want string, needPort bool) (netip.AddrPort, bool) {
	text, portText, hasPort := target, "", false
	if strings.HasPrefix(target, "[") {
		inner, rest, found := strings.Cut(target[1:], "]")
		if !found || rest != "" && !strings.HasPrefix(rest, ":") {
			r.errorf(v.pos, "%s: invalid address %q; want %s", path, target, want)
			return netip.AddrPort{}, false
		}
		text = inner
		if rest != "" {
			portText, hasPort = rest[1:], true
		}
	}
	a, err := netip.ParseAddr(text)
	switch {
	case err != nil || !a.Is6():
		r.errorf(v.pos, "%s: invalid IPv6 address %q; want %s", path, text, want)
	case a.Zone() != "":
		r.errorf(v.pos, "%s: %s has a zone, which no address of a lab has; want %s", path, a, want)
	case needPort && !hasPort:
		r.errorf(v.pos, "%s: %s has no port; want [ADDRESS]:PORT such as [%s]:%d", path, a, a, DefaultSendPort)
	default:
		var port uint64
		if hasPort {
			port, err = strconv.ParseUint(portText, 10, 16)
			if err != nil || port == 0 {
				alone := ""
				if !needPort {
					alone = ", or the address alone for any port"
				}
				r.errorf(v.pos, "%s: invalid port %q in %q; want [ADDRESS]:PORT with a port from 1 to 65535%s", path, portText, target, alone)
				return netip.AddrPort{}, false
			}
		}
		if pfx, what, ok := reserved6(a); ok {
			r.errorf(v.pos, "%s: %s is in %s, the %s range, where no node of a lab has an address", path, a, pfx, what)
			return netip.AddrPort{}, false
		}
		if r.p.inet6OK && !r.p.topo.Internet6.Contains(a) {
			r.errorf(v.pos, "%s: %s is outside %s, internet6, which holds every IPv6 address of the lab", path, a, r.p.topo.Internet6)
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(a, uint16(port)), true
	}
	return netip.AddrPort{}, false
}

// seenAsWant says what a send step's seen-as: takes.
func (r *StepFields) seenAsWant() string {
	if r.family == FamilyIPv6 {
		return fmt.Sprintf("a node, an IPv6 address, or [ADDRESS]:PORT such as [%s]:4000", r.p.example6())
	}
	return "a node, an IPv4 address, or ADDRESS:PORT such as 203.0.113.1:4000"
}

// SeenAs reads key as the source a send step's receiver must see: a
// node, which stands for its first address of the step's family and any
// port, an address with any port, or an address and port. node is the
// node named, if one is; addr is invalid when key is left out.
func (r *StepFields) SeenAs(key string) (node string, addr netip.AddrPort) {
	v := r.field(key)
	if v == nil {
		return "", netip.AddrPort{}
	}
	path := joinPath(r.path, key)
	r.seenAs(v, path, &node, &addr)
	return node, addr
}

func (r *StepFields) seenAs(v *value, path string, seenNode *string, seenAddr *netip.AddrPort) {
	text, ok := r.p.str(v, path, r.seenAsWant())
	if !ok {
		r.ok = false
		return
	}
	target := strings.TrimSpace(text)
	if isIPv6Text(target) {
		if r.wrongFamily(v, path, target, FamilyIPv6, r.seenAsWant()) {
			return
		}
		if ap, ok := r.addr6Text(v, path, target, r.seenAsWant(), false); ok {
			*seenAddr = ap
		}
		return
	}
	host, portText, hasPort := strings.Cut(target, ":")
	// Node names have no dots, so anything with one is meant as an
	// address.
	if !strings.Contains(host, ".") {
		if hasPort {
			addr := "ADDRESS"
			if n := r.p.byName[host]; n != nil {
				if addrs := r.familyAddrs(n); len(addrs) > 0 {
					addr = addrs[0].String()
					if addrs[0].Is6() {
						addr = "[" + addr + "]"
					}
				}
			}
			r.errorf(v.pos, "%s: %q: a node name stands for its address with any port; to check the port too, write the address, as in %s:%s", path, target, addr, portText)
			return
		}
		name, n := r.node(v, path, nodesOnly)
		*seenNode = name
		if n != nil {
			// The node's address as the steps before leave the lab: a
			// nat renumbered has its new one.
			if addrs := r.nodeAddrs(r.p.current().Node(name)); len(addrs) > 0 {
				*seenAddr = netip.AddrPortFrom(addrs[0], 0)
			}
		}
		return
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		r.errorf(v.pos, "%s: invalid IPv4 address %q; want %s", path, host, r.seenAsWant())
		return
	}
	if r.wrongFamily(v, path, target, FamilyIPv4, r.seenAsWant()) {
		return
	}
	var port uint64
	if hasPort {
		port, err = strconv.ParseUint(portText, 10, 16)
		if err != nil || port == 0 {
			r.errorf(v.pos, "%s: invalid port %q in %q; want ADDRESS:PORT with a port from 1 to 65535, or the address alone for any port", path, portText, target)
			return
		}
	}
	if r.reserved4(v, path, a) {
		return
	}
	*seenAddr = netip.AddrPortFrom(a, uint16(port))
}

// familyAddrs are the addresses of n in the step's family.
func (r *StepFields) familyAddrs(n *nodeSpec) []netip.Addr { return r.nodeAddrs(n.node) }

// nodeAddrs are the addresses of n in the step's family.
func (r *StepFields) nodeAddrs(n *Node) []netip.Addr {
	if r.family == FamilyIPv6 {
		return n.Addresses6
	}
	return n.Addresses
}

// sendToWant says what a send step's to: takes.
func (r *StepFields) sendToWant() string {
	if r.family == FamilyIPv6 {
		return fmt.Sprintf("a host, a server, or [ADDRESS]:PORT such as [%s]:5000", r.p.example6())
	}
	return "a host, a server, or ADDRESS:PORT such as 203.0.113.1:5000"
}

// SendTo reads key as the destination of a send step: a node (node), or
// an address of the step's family with a port (addr).
func (r *StepFields) SendTo(key string) (node string, addr netip.AddrPort) {
	v := r.field(key)
	if v == nil {
		return "", netip.AddrPort{}
	}
	r.sendTo(v, joinPath(r.path, key), &node, &addr)
	return node, addr
}

func (r *StepFields) sendTo(v *value, path string, toNode *string, toAddr *netip.AddrPort) {
	text, ok := r.p.str(v, path, r.sendToWant())
	if !ok {
		r.ok = false
		return
	}
	target := strings.TrimSpace(text)
	if isIPv6Text(target) {
		if r.wrongFamily(v, path, target, FamilyIPv6, r.sendToWant()) {
			return
		}
		ap, ok := r.addr6Text(v, path, target, r.sendToWant(), true)
		if ok {
			*toAddr = ap
		}
		return
	}
	host, portText, hasPort := strings.Cut(target, ":")
	// Node names have no dots, so anything with one is meant as an
	// address.
	if !strings.Contains(host, ".") {
		if hasPort {
			r.errorf(v.pos, "%s: %q: to send to a node, give its name and the port apart, as in {to: %s, port: %s}", path, target, host, portText)
			return
		}
		if n := r.p.byName[host]; r.p.nodesOK && n != nil && n.ok && n.node.Kind == KindNAT && len(n.node.Addresses) > 0 {
			if r.family == FamilyIPv6 {
				r.errorf(v.pos, "%s: %s is a nat, not a host or a server; over IPv6 the nodes behind it have addresses of their own, so send to one of them", path, host)
			} else {
				r.errorf(v.pos, "%s: %s is a nat, not a host or a server; to send to its public address, as to a forwarded port, write to: \"%s:PORT\"", path, host, n.node.Addresses[0])
			}
			return
		}
		*toNode, _ = r.node(v, path, hostOrServer)
		return
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		r.errorf(v.pos, "%s: invalid IPv4 address %q; want %s", path, host, r.sendToWant())
		return
	}
	if r.wrongFamily(v, path, target, FamilyIPv4, r.sendToWant()) {
		return
	}
	if !hasPort {
		r.errorf(v.pos, "%s: %s has no port; want ADDRESS:PORT such as %s:%d", path, a, a, DefaultSendPort)
		return
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		r.errorf(v.pos, "%s: invalid port %q in %q; want ADDRESS:PORT with a port from 1 to 65535", path, portText, target)
		return
	}
	if r.reserved4(v, path, a) {
		return
	}
	*toAddr = netip.AddrPortFrom(a, uint16(port))
}

// reserved4 reports an IPv4 address in a range no node has an address
// in.
func (r *StepFields) reserved4(v *value, path string, a netip.Addr) bool {
	for _, rr := range reservedRanges {
		if rr.prefix.Contains(a) {
			r.errorf(v.pos, "%s: %s is in %s, the %s range, where no node of a lab has an address", path, a, rr.prefix, rr.what)
			return true
		}
	}
	return false
}
