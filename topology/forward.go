package topology

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// forwardSpec is one item of a NAT's forward: list, read but not yet
// pointed at an address.
type forwardSpec struct {
	proto Protocol
	port  uint16
	to    *value
	path  string
	pos   Position
}

// forwardKeys are the keys a forward takes.
var forwardKeys = formatKeys[PortForward]()

const forwardExample = "{proto: udp, port: 3478, to: alice}"

// readForwards reads the forward: list of NAT n. Targets are resolved by
// resolveForwards once every node has its address.
func (p *parser) readForwards(n *nodeSpec) {
	v, path := n.nat.forwardVal, n.nat.forwardPath
	if v == nil {
		return
	}
	switch v.kind {
	case kindInvalid, kindNull:
		return
	case kindSeq:
	default:
		p.errs.errorf(v.pos, "%s: want a list of forwards such as [%s], not %s", path, forwardExample, v.describe())
		return
	}
	type protoPort struct {
		proto Protocol
		port  uint16
	}
	seen := make(map[protoPort]*forwardSpec)
	for i, item := range v.items {
		f, ok := p.readForward(item, indexPath(path, i))
		if !ok {
			continue
		}
		key := protoPort{f.proto, f.port}
		if first, dup := seen[key]; dup {
			p.errs.errorf(item.get("port").val.pos, "%s.port: %s port %d is already forwarded by %s at line %d", f.path, f.proto, f.port, first.path, first.pos.Line)
			continue
		}
		seen[key] = f
		n.nat.forwards = append(n.nat.forwards, *f)
	}
}

// readForward reads one forward; it reports false after reporting why it
// is unusable.
func (p *parser) readForward(v *value, path string) (*forwardSpec, bool) {
	switch v.kind {
	case kindInvalid:
		return nil, false
	case kindMap:
	default:
		p.errs.errorf(v.pos, "%s: want a forward such as %s, not %s", path, forwardExample, v.describe())
		return nil, false
	}
	f := &forwardSpec{path: path, pos: v.pos}
	ok := true
	for _, e := range v.entries {
		epath := joinPath(path, e.key)
		switch e.key {
		case "proto":
			proto, pok := p.protocol(e.val, epath)
			f.proto, ok = proto, ok && pok
		case "port":
			port, pok := p.port(e.val, epath)
			f.port, ok = port, ok && pok
		case "to":
			if _, sok := p.str(e.val, epath, "NODE or NODE:PORT"); sok {
				f.to = e.val
			} else {
				ok = false
			}
		default:
			p.unknownKey(e, epath, "a forward", forwardKeys)
		}
	}
	var missing []string
	for _, k := range forwardKeys {
		if v.get(k) == nil {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		p.errs.errorf(v.pos, "%s: missing %s; a forward takes proto, port and to, such as %s", path, strings.Join(missing, " and "), forwardExample)
		return nil, false
	}
	return f, ok
}

// protocol reads tcp or udp.
func (p *parser) protocol(v *value, path string) (Protocol, bool) {
	s, ok := p.str(v, path, "tcp or udp")
	switch {
	case !ok:
	case s != string(TCP) && s != string(UDP):
		p.errs.errorf(v.pos, "%s: unknown protocol %q; want tcp or udp", path, s)
	default:
		return Protocol(s), true
	}
	return "", false
}

// port reads a port number.
func (p *parser) port(v *value, path string) (uint16, bool) {
	n, ok := v.integer()
	switch {
	case v.kind == kindInvalid:
	case !ok:
		p.errs.errorf(v.pos, "%s: want a port number from 1 to 65535, not %s", path, v.describe())
	case n < 1 || n > 65535:
		p.errs.errorf(v.pos, "%s: port %s is out of range; want 1 to 65535", path, v.text)
	default:
		return uint16(n), true
	}
	return 0, false
}

// resolveForwards points each forward at its target: a node behind the NAT
// by name (NODE or NODE:PORT), or an address on the NAT's LAN (ADDR or
// ADDR:PORT).
func (p *parser) resolveForwards() {
	for _, n := range p.nodes {
		if !n.ok || n.nat == nil {
			continue
		}
		for _, f := range n.nat.forwards {
			if fw, ok := p.resolveForward(n, f); ok {
				n.node.NAT.Forwards = append(n.node.NAT.Forwards, fw)
			}
		}
	}
}

// resolveForward resolves f of NAT n. When n's LAN is invalid, addresses
// cannot be checked, but names still can.
func (p *parser) resolveForward(n *nodeSpec, f forwardSpec) (Forward, bool) {
	v, path := f.to, f.path+".to"
	target := strings.TrimSpace(v.text)
	fw := Forward{Proto: f.proto, Port: f.port, Pos: f.pos}
	seg := n.nat.seg
	lanName := "the LAN of " + n.node.Name
	if seg != nil {
		lanName = seg.name
	}
	if strings.Count(target, ":") > 1 || strings.HasPrefix(target, "[") {
		p.errs.errorf(v.pos, "%s: %q is IPv6, which needs no forward: nodes behind a nat have IPv6 addresses of their own, and its firewall6 decides what reaches them; want NODE, NODE:PORT or an IPv4 address on %s", path, target, lanName)
		return fw, false
	}
	host, portText, hasPort := strings.Cut(target, ":")
	toPort := f.port
	if hasPort {
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil || port == 0 {
			p.errs.errorf(v.pos, "%s: invalid port %q in %q; want NODE or NODE:PORT with a port from 1 to 65535", path, portText, target)
			return fw, false
		}
		toPort = uint16(port)
	}

	// Node names have no dots, so anything with one is meant as an address.
	if strings.Contains(host, ".") {
		a, err := netip.ParseAddr(host)
		switch {
		case err != nil || !a.Is4():
			p.errs.errorf(v.pos, "%s: invalid IPv4 address %q; want NODE, NODE:PORT or an address on %s", path, host, lanName)
			return fw, false
		case seg == nil:
			return fw, false
		}
		if msg := seg.problem(a); msg != "" {
			p.errs.errorf(v.pos, "%s: %s; a nat forwards only to its LAN", path, msg)
			return fw, false
		}
		if o, ok := seg.ownerOf(a); ok {
			if o.gateway {
				p.errs.errorf(v.pos, "%s: %s is %s's own address on its LAN; forward to a node behind it", path, a, n.node.Name)
				return fw, false
			}
			fw.ToNode = o.node.node.Name
		}
		fw.To = netip.AddrPortFrom(a, toPort)
		return fw, true
	}

	t, found := p.byName[host]
	switch {
	case !found && len(n.children) == 0:
		p.errs.errorf(v.pos, "%s: no node named %q, and nothing is behind %s to forward to", path, host, n.node.Name)
	case !found:
		p.errs.errorf(v.pos, "%s: no node named %q; the nodes behind %s are %s", path, host, n.node.Name, listNames(n.children))
	case !t.ok || !t.uplinkKnown:
		// Already reported.
	case t == n:
		p.errs.errorf(v.pos, "%s: %s is this nat itself; forward to a node behind it", path, host)
	case t.parent != n:
		p.errs.errorf(v.pos, "%s: %s %s, not behind %s; a nat forwards only to nodes behind it", path, host, whereIs(t), n.node.Name)
	case len(t.node.Addresses) == 0:
		// Its address was already reported.
	default:
		fw.ToNode = host
		fw.To = netip.AddrPortFrom(t.node.Addresses[0], toPort)
		return fw, true
	}
	return fw, false
}

// whereIs says where node n is, for messages.
func whereIs(n *nodeSpec) string {
	switch {
	case n.parent != nil:
		return "is behind " + n.parent.node.Name
	case n.node.Kind == KindServer:
		return "is a server on the internet"
	}
	return fmt.Sprintf("is a %s on the internet", n.node.Kind)
}
