package topology

import (
	"slices"
	"strings"

	"github.com/natlab/natlab/nat"
)

// nodeSpec is a node as its entry in the file gives it, with what the checks
// across nodes need beyond the Node being filled in.
type nodeSpec struct {
	node *Node
	path string
	// mtuVal is the value of the node's link: mtu:, at mtuPath, nil if
	// none was given.
	mtuVal  *value
	mtuPath string
	// ok is false when the node's kind is missing or unknown. Such a node
	// is left out of every later check, and nothing that refers to it is
	// reported again.
	ok bool

	// behindVal is the behind: value, nil when the node is on the
	// internet; behindBad is set when it was not a name at all.
	behindVal *value
	behindBad bool
	// parent is the NAT the node is behind once resolved; uplinkKnown
	// says whether its uplink segment could be determined.
	parent      *nodeSpec
	uplinkKnown bool
	// children are the names of the nodes behind this NAT, sorted;
	// natChildren are those that are NATs.
	children    []string
	natChildren []*nodeSpec
	// rooted says the chain of NATs above this node ends on the internet
	// rather than in a cycle or a broken reference.
	rooted bool

	// addrs are the addresses the file gives. addrsGiven says the key was
	// there, so no default is allocated even when its value was bad.
	addrs      []addrSpec
	addrsGiven bool
	// wantAddrs is how many addresses to allocate when none are given.
	wantAddrs int
	// addrs6 and addrs6Given are the same for IPv6: address6, public6 or
	// addresses6.
	addrs6      []addrSpec
	addrs6Given bool

	nat *natSpec

	// servicesBad says the services: value or one of its items was
	// invalid, so a step that wants a service this server lacks is not
	// reported again.
	servicesBad bool
}

// natSpec is what a NAT node's entry gives beyond what every node has.
type natSpec struct {
	knobs knobs

	// lanVal is the lan: value, nil when the LAN is to be allocated.
	lanVal *value
	// lanOK says node.NAT.LAN and Gateway hold a usable LAN, given or
	// allocated; when it is false nothing behind this NAT is checked
	// against its LAN.
	lanOK bool
	// gatewayImplicit says the gateway is the LAN's first host address
	// because lan: gave none, or was left out.
	gatewayImplicit bool
	// seg is the LAN as a segment of addresses, once lanOK.
	seg *segment

	// lan6Val is the lan6: value, nil when the /64 is to be allocated;
	// lan6OK says node.NAT.LAN6 and Gateway6 hold a usable one, and
	// seg6 is it as a segment of addresses.
	lan6Val *value
	lan6OK  bool
	seg6    *segment6

	// forwardVal is the forward: value, resolved once addresses are known.
	forwardVal  *value
	forwardPath string
	forwards    []forwardSpec

	// pooling is the pooling: value, poolingVal nil when not given.
	pooling    nat.Pooling
	poolingVal *value

	// portBlock is the port-block: value, nil when not given or invalid.
	portBlock *portBlockSpec
}

// addrSpec is an address written in the file.
type addrSpec struct {
	val  *value
	path string
}

// kindKeys lists the keys each kind of node takes, in the order messages
// list them.
var kindKeys = map[Kind][]string{
	KindServer: formatKeys[ServerNode](),
	KindHost:   formatKeys[HostNode](),
	KindNAT:    formatKeys[NATNode](),
}

// kindList is the accepted kinds for messages: "server, nat or host".
func kindList() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func (p *parser) readNode(e entry) *nodeSpec {
	n := &nodeSpec{node: &Node{Name: e.key, Pos: e.keyPos}, path: joinPath("nodes", e.key), wantAddrs: 1}
	switch {
	case e.key == Internet:
		p.errs.errorf(e.keyPos, "%s: %q is reserved for the internet segment; choose another name", n.path, Internet)
	case !validName(e.key):
		p.errs.errorf(e.keyPos, "%s: invalid node name %q; %s", n.path, e.key, nameRule)
	}
	v := e.val
	switch v.kind {
	case kindInvalid:
		return n
	case kindMap:
	default:
		p.errs.errorf(v.pos, "%s: want a mapping such as {kind: host, behind: nat-a}, not %s", n.path, v.describe())
		return n
	}
	kind := v.get("kind")
	if kind == nil {
		p.errs.errorf(e.keyPos, "%s: missing kind; want kind: %s", n.path, kindList())
		return n
	}
	s, ok := p.str(kind.val, n.path+".kind", kindList())
	if !ok {
		return n
	}
	if !slices.Contains(Kinds, Kind(s)) {
		p.errs.errorf(kind.val.pos, "%s.kind: unknown kind %q; want %s", n.path, s, kindList())
		return n
	}
	n.node.Kind, n.ok = Kind(s), true
	if n.node.Kind == KindNAT {
		n.nat = &natSpec{}
		n.node.NAT = &NAT{}
	}
	for _, f := range v.entries {
		p.readNodeKey(n, f)
	}
	if n.nat != nil {
		n.node.NAT.Type, n.node.NAT.Behaviour = p.behaviour(n)
		n.node.NAT.PortMapping = n.nat.knobs.portMapping
		if p.inet6Set {
			n.node.NAT.Firewall6 = nat.AddressAndPortDependent
			if n.nat.knobs.firewall6Val != nil {
				n.node.NAT.Firewall6 = n.nat.knobs.firewall6
			}
		}
		p.checkOneToOneKeys(n, v)
		p.checkPool(n, v)
		p.checkPortBlock(n, v)
		p.readForwards(n)
	}
	if n.node.Kind == KindServer && slices.Contains(n.node.Services, ServiceSTUN) {
		// RFC 5780 NAT behaviour discovery needs a second address to
		// answer from.
		n.wantAddrs = 2
	}
	return n
}

// readNodeKey decodes one key of node n.
func (p *parser) readNodeKey(n *nodeSpec, f entry) {
	kind := n.node.Kind
	path := joinPath(n.path, f.key)
	switch {
	case f.key == "kind":
	case f.key == "link":
		p.readLink(n, f.val, path)
	case f.key == "behind" && kind == KindServer:
		if f.val.isScalar() && f.val.text == Internet {
			return
		}
		p.errs.errorf(f.keyPos, "%s: servers are on the internet; to put a machine behind a NAT, make it a host", path)
	case f.key == "behind":
		p.readBehind(n, f.val, path)
	case f.key == "addresses" && kind == KindServer:
		n.addrsGiven = true
		n.addrs = p.readAddressList(f.val, path, "203.0.113.10")
	case f.key == "services" && kind == KindServer:
		p.readServices(n, f.val, path)
	case f.key == "public" && kind == KindNAT && f.val.kind == kindSeq:
		// Several public addresses: a pool (pool.go).
		n.addrsGiven = true
		n.addrs = p.readAddressList(f.val, path, "203.0.113.1")
	case f.key == "address" && kind == KindHost, f.key == "public" && kind == KindNAT:
		n.addrsGiven = true
		n.addrs = append(n.addrs, addrSpec{val: f.val, path: path})
	case f.key == "addresses6" && kind == KindServer:
		if p.needInternet6(f, path) {
			n.addrs6Given = true
			n.addrs6 = p.readAddressList(f.val, path, "2001:db8::10")
		}
	case f.key == "firewall" && kind == KindHost:
		p.readFirewall(n, f.val, path)
	case f.key == "firewall":
		p.firewallNotHere(n, f, path)
	case f.key == "address6" && kind == KindHost, f.key == "public6" && kind == KindNAT:
		if p.needInternet6(f, path) {
			n.addrs6Given = true
			n.addrs6 = append(n.addrs6, addrSpec{val: f.val, path: path})
		}
	case kind == KindNAT && p.readNATKey(n, f, path):
	default:
		p.unknownKey(f, path, "a "+string(kind), kindKeys[kind])
	}
}

func (p *parser) readBehind(n *nodeSpec, v *value, path string) {
	s, ok := p.str(v, path, "the name of a nat")
	switch {
	case !ok:
		n.behindBad = true
	case s == Internet:
		// Saying so explicitly is the same as leaving behind out.
	default:
		n.behindVal = v
		n.node.Behind = s
	}
}

// readAddressList reads a server's addresses: or addresses6: list;
// example is an address of the family for messages.
func (p *parser) readAddressList(v *value, path, example string) []addrSpec {
	switch v.kind {
	case kindInvalid:
		return nil
	case kindSeq:
	default:
		p.errs.errorf(v.pos, "%s: want a list of addresses such as [%s], not %s", path, example, v.describe())
		return nil
	}
	if len(v.items) == 0 {
		p.errs.errorf(v.pos, "%s: want at least one address; leave %s out to get a default", path, lastKey(path))
		return nil
	}
	addrs := make([]addrSpec, 0, len(v.items))
	for i, item := range v.items {
		addrs = append(addrs, addrSpec{val: item, path: indexPath(path, i)})
	}
	return addrs
}

func (p *parser) readServices(n *nodeSpec, v *value, path string) {
	switch v.kind {
	case kindInvalid:
		n.servicesBad = true
		return
	case kindSeq:
	default:
		p.errs.errorf(v.pos, "%s: want a list of services such as [stun, turn], not %s", path, v.describe())
		n.servicesBad = true
		return
	}
	seen := make(map[Service]int)
	for i, item := range v.items {
		ipath := indexPath(path, i)
		s, ok := p.str(item, ipath, "a service ("+serviceList()+")")
		if !ok {
			n.servicesBad = true
			continue
		}
		svc := Service(s)
		if !slices.Contains(Services, svc) {
			p.errs.errorf(item.pos, "%s: unknown service %q; want %s", ipath, s, serviceList())
			n.servicesBad = true
			continue
		}
		if first, dup := seen[svc]; dup {
			p.errs.errorf(item.pos, "%s: %s is already listed at %s", ipath, s, indexPath(path, first))
			continue
		}
		seen[svc] = i
		n.node.Services = append(n.node.Services, svc)
	}
}

func serviceList() string {
	names := make([]string, len(Services))
	for i, s := range Services {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
