// Package topology reads a natlab scenario file into one validated,
// immutable description of a lab: its internet, its NATs with their RFC 4787
// behaviour, the hosts behind them and the servers on the internet.
//
// Parsing has no side effects: it never touches the kernel, so
// `natlab validate` needs no privileges. Every problem in a file is reported
// at once, each with its file, line and column and what would be accepted.
//
// The value Parse returns is shared read-only by everything downstream (rule
// building, the kernel layer, the scenario runner); nothing may modify it.
package topology

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/nat"
)

// Kind says what a node is.
type Kind string

const (
	// KindServer is a machine on the internet with one or more public
	// addresses, running services such as STUN or TURN.
	KindServer Kind = "server"
	// KindNAT is a router that translates between its LAN and its uplink
	// (the internet, or another NAT's LAN as in carrier-grade NAT).
	KindNAT Kind = "nat"
	// KindHost is an end device behind a NAT or directly on the internet.
	KindHost Kind = "host"
)

// Kinds lists the node kinds a scenario may use.
var Kinds = []Kind{KindServer, KindNAT, KindHost}

// Service is a program natlab runs on a server node.
type Service string

// The services a server can run.
const (
	// ServiceSTUN answers STUN binding requests, with RFC 5780 NAT
	// behaviour discovery when the server has two addresses.
	ServiceSTUN Service = "stun"
	// ServiceTURN relays traffic for clients that cannot connect directly.
	ServiceTURN Service = "turn"
	// ServiceRendezvous introduces peers to each other for hole punching.
	ServiceRendezvous Service = "rendezvous"
	// ServiceTunnel relays connections from a public port of the server
	// to a host that dialled out to it, as ngrok does: a reverse tunnel
	// that works from behind any NAT.
	ServiceTunnel Service = "tunnel"
	// ServiceDERP is Tailscale's relay (tailscale.com/derp), which an
	// upgrade step starts on before it finds a direct path.
	ServiceDERP Service = "derp"
)

// Services lists the services a server may run.
var Services = []Service{ServiceSTUN, ServiceTURN, ServiceRendezvous, ServiceTunnel, ServiceDERP}

// Internet is the name of the segment every top-level node is attached to.
// It cannot be used as a node name.
const Internet = "internet"

// DefaultInternet is the internet's subnet unless a scenario sets one:
// TEST-NET-3 from RFC 5737, the range the story's addresses come from.
var DefaultInternet = netip.MustParsePrefix("203.0.113.0/24")

// The address families a send or punch step can use.
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
)

// The port-mapping protocols a NAT may speak on its LAN, as
// NAT.PortMapping lists them.
const (
	// PortMappingNATPMP is NAT-PMP (RFC 6886).
	PortMappingNATPMP = "nat-pmp"
	// PortMappingPCP is the Port Control Protocol (RFC 6887), NAT-PMP's
	// successor, on the same port.
	PortMappingPCP = "pcp"
	// PortMappingUPnP is UPnP's Internet Gateway Device (IGD:1, its
	// WANIPConnection:1 service), found by SSDP.
	PortMappingUPnP = "upnp"
)

// PortMappingProtocols are the protocols port-mapping takes, in the order
// NAT.PortMapping lists them.
var PortMappingProtocols = []string{PortMappingNATPMP, PortMappingPCP, PortMappingUPnP}

// Position is a place in a scenario file; lines and columns count from 1.
type Position struct {
	File         string
	Line, Column int
}

// Topology is a validated lab description with every default filled in.
type Topology struct {
	// Name is the lab name: the file's name: key, or the file name without
	// its extension.
	Name string
	// Description is the file's one-line description: key, for listings.
	Description string
	// Source is the path the topology was read from, for messages.
	Source string
	// Internet is the subnet every top-level node's uplink is on.
	Internet netip.Prefix
	// Internet6 is the IPv6 prefix, /32 to /48, of a dual-stack lab: every
	// segment has a /64 of it. It is the zero Prefix when the lab is
	// IPv4 only, and then so is every other IPv6 field.
	Internet6 netip.Prefix
	// Internet6Segment is the internet's /64: the first of Internet6.
	Internet6Segment netip.Prefix
	// Nodes in the order the file lists them.
	Nodes []*Node
	// Steps are the script natlab runs on the lab, in order; none when
	// the file has no steps: key.
	Steps []Step
	// Warnings are what the file says that natlab reads in a way its
	// author may not have meant, each at its file, line and column, such
	// as a LAN written with host bits set. They do not stop the lab.
	Warnings ErrorList

	// index finds nodes by name; Parse fills it.
	index map[string]*Node
}

// Node is one machine of the lab, which natlab builds as one network namespace.
type Node struct {
	Name string
	Kind Kind
	// Pos is where the node is defined, for messages about it.
	Pos Position
	// Behind names the NAT whose LAN this node's uplink is on; empty for
	// nodes on the internet. Servers are always on the internet.
	Behind string
	// Addresses are the node's addresses on its uplink segment, first one
	// primary. Hosts have exactly one; NATs one, their public address, or
	// several, a pool (NAT.Pooling says how mappings pick from it); servers
	// have one or more.
	Addresses []netip.Addr
	// Addresses6 are the node's IPv6 addresses on its uplink segment's
	// /64, first one primary, in a dual-stack lab: one for hosts and
	// NATs, one or more for servers. None when the lab is IPv4 only.
	Addresses6 []netip.Addr
	// NAT is set for nodes of KindNAT.
	NAT *NAT
	// Services run on a server node.
	Services []Service
	// Link is the conditions of the node's uplink (delay, loss, rate,
	// MTU...); the zero Link is a perfect wire. Up is from the node
	// toward its NAT or the internet.
	Link linkcond.Link
	// Firewall is a host's own firewall, FirewallNone for none; only
	// hosts have one.
	Firewall Firewall
}

// NAT is the translating side of a NAT node.
type NAT struct {
	// Type is the classic name the file gave, or the one the knobs amount
	// to; empty when the knobs match no classic name.
	Type nat.Type
	// Behaviour holds every knob, defaults filled in.
	Behaviour nat.Behaviour
	// LAN is the subnet behind the NAT.
	LAN netip.Prefix
	// Gateway is the NAT's own address on its LAN, the default route of
	// every node behind it.
	Gateway netip.Addr
	// Forwards are static port forwards from the public address to a node
	// behind this NAT.
	Forwards []Forward
	// Pooling is how a new mapping picks its public address when the NAT
	// has several (Node.Addresses, RFC 4787 section 4.1): paired unless
	// the file says arbitrary. Empty with one address.
	Pooling nat.Pooling
	// PortMapping lists the protocols nodes behind the NAT can ask it
	// for a port mapping with, in the order of PortMappingProtocols; none
	// when they cannot.
	PortMapping []string
	// Blocks is the port block allocation of a carrier-grade NAT (RFC
	// 6888); zero for none. Its subscribers are the nodes behind it, in
	// the order of their addresses (Subscribers).
	Blocks nat.PortBlocks

	// LAN6 is the LAN's /64 in a dual-stack lab. IPv6 is not translated:
	// the NAT routes it, and filters what comes in with a stateful
	// firewall.
	LAN6 netip.Prefix
	// Gateway6 is the NAT's own IPv6 address on its LAN: ::1 of LAN6.
	Gateway6 netip.Addr
	// Firewall6 is the filtering of the NAT's IPv6 firewall, in the RFC
	// 4787 words filtering uses: which inbound packets are let through
	// once a node behind it has sent out. "" when the firewall is off
	// or the lab is IPv4 only.
	Firewall6 nat.Dependence
}

// Protocol is a transport protocol: the one a port forward applies to, or
// the one a send step uses.
type Protocol string

// The protocols of forwards and send steps.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Protocols lists the protocols a file may name.
var Protocols = []Protocol{TCP, UDP}

// Forward sends new connections to Port on the NAT's public address to To.
type Forward struct {
	Proto Protocol
	Port  uint16
	// ToNode is the node behind this NAT that receives the traffic.
	ToNode string
	// To is ToNode's address and the port traffic is sent to.
	To  netip.AddrPort
	Pos Position
}

// Classification is the NAT behaviour a stun step expects discovery to
// report. Only what the file gives is checked; the rest is zero.
type Classification struct {
	// Type is the classic name expected, "" if not given.
	Type nat.Type
	// Mapping and Filtering are "" if not given; when only Type is given
	// they are filled in from it.
	Mapping   nat.Dependence
	Filtering nat.Dependence
	// Ports is "" if not given.
	Ports nat.PortAllocation
	// Hairpin is nil if not given.
	Hairpin *bool
	// Pooling is "" if not given.
	Pooling nat.Pooling
}

// Node returns the node called name, or nil.
func (t *Topology) Node(name string) *Node {
	if t.index != nil {
		return t.index[name]
	}
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Uplink returns the subnet node n's uplink is on: the internet, or the LAN
// of the NAT it is behind.
func (t *Topology) Uplink(n *Node) netip.Prefix {
	if n.Behind == "" {
		return t.Internet
	}
	return t.Node(n.Behind).NAT.LAN
}

// Gateway returns the address node n sends traffic for other subnets to:
// the LAN address of the NAT it is behind. Nodes on the internet have none
// (ok=false): the internet is one flat subnet.
func (t *Topology) Gateway(n *Node) (addr netip.Addr, ok bool) {
	if n.Behind == "" {
		return netip.Addr{}, false
	}
	return t.Node(n.Behind).NAT.Gateway, true
}

// Uplink6 returns the /64 node n's uplink is on: the internet's, or the
// LAN6 of the NAT it is behind. It is the zero Prefix when the lab is IPv4
// only.
func (t *Topology) Uplink6(n *Node) netip.Prefix {
	if n.Behind == "" {
		return t.Internet6Segment
	}
	return t.Node(n.Behind).NAT.LAN6
}

// Gateway6 returns the IPv6 address node n sends traffic for other subnets
// to: the NAT it is behind's Gateway6. Nodes on the internet have none
// (ok=false), as they have no IPv4 gateway, and neither has any node when
// the lab is IPv4 only.
func (t *Topology) Gateway6(n *Node) (addr netip.Addr, ok bool) {
	if n.Behind == "" {
		return netip.Addr{}, false
	}
	gw := t.Node(n.Behind).NAT.Gateway6
	return gw, gw.IsValid()
}

// Behind returns the nodes whose uplink is the LAN of the NAT called name,
// in file order.
func (t *Topology) Behind(name string) []*Node {
	var nodes []*Node
	for _, n := range t.Nodes {
		if n.Behind == name {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// AddressProblem says why a cannot become node n's address on its uplink,
// as when the ISP gives a NAT a new public address, or "" if it can: it
// must be an IPv4 host address of the uplink's subnet (not its network or
// broadcast address) that no node of the subnet, and no gateway, holds
// already; n's own current first address is refused too, for then nothing
// would change.
func (t *Topology) AddressProblem(n *Node, a netip.Addr) string {
	if n.NAT != nil && len(n.Addresses) > 1 {
		// Renumbering replaces the one public address; which of a pool's
		// to replace, and what becomes of the mappings of the others, is
		// not something natlab models yet.
		return fmt.Sprintf("%s has a pool of public addresses, and natlab renumbers only a nat with one", n.Name)
	}
	return t.addressProblem(n.Behind, n, a)
}

// addressProblem says why a cannot be self's address on the subnet of the
// nat behind ("" for the internet), or "". self is nil for a node that is
// not on that subnet yet.
func (t *Topology) addressProblem(behind string, self *Node, a netip.Addr) string {
	if !a.Is4() {
		return fmt.Sprintf("%s is not an IPv4 address", a)
	}
	pfx, what := t.Internet, "the internet"
	if behind != "" {
		pfx, what = t.Node(behind).NAT.LAN, "the LAN of "+behind
	}
	seg := newSegment(pfx, what)
	if msg := seg.problem(a); msg != "" {
		return msg
	}
	if behind != "" && t.Node(behind).NAT.Gateway == a {
		return fmt.Sprintf("%s is taken by %s's gateway, on %s", a, behind, seg.name)
	}
	for _, o := range t.Behind(behind) {
		if slices.Contains(o.Addresses, a) {
			if o == self && o.Addresses[0] == a {
				return fmt.Sprintf("%s is %s's address already", a, self.Name)
			}
			return fmt.Sprintf("%s is taken by %s, on %s", a, o.Name, seg.name)
		}
	}
	return ""
}

// freeAddress is the lowest address AddressProblem accepts for n, among
// the first 1024 of its uplink, or the zero Addr.
func (t *Topology) freeAddress(n *Node) netip.Addr {
	return t.freeAddressOn(n.Behind, n)
}

func (t *Topology) freeAddressOn(behind string, self *Node) netip.Addr {
	pfx := t.Internet
	if behind != "" {
		pfx = t.Node(behind).NAT.LAN
	}
	a := pfx.Masked().Addr()
	for range 1024 {
		if a = a.Next(); !pfx.Contains(a) {
			break
		}
		if t.addressProblem(behind, self, a) == "" {
			return a
		}
	}
	return netip.Addr{}
}

// MoveAddresses are the addresses host n gets when it moves behind the
// nat called nat, as a device that roams to another network gets one
// there: the lowest free IPv4 address of the nat's LAN and, in a
// dual-stack lab, the lowest free one of its LAN6 (zero when there is
// none). ok is false when the LAN is full.
func (t *Topology) MoveAddresses(n *Node, nat string) (a4, a6 netip.Addr, ok bool) {
	a4 = t.freeAddressOn(nat, nil)
	lan6 := t.Node(nat).NAT.LAN6
	if lan6.IsValid() {
		for id := uint64(2); id < 1<<16; id++ {
			a := hostAddr6(lan6, id)
			taken := false
			for _, o := range t.Behind(nat) {
				taken = taken || slices.Contains(o.Addresses6, a)
			}
			if !taken {
				a6 = a
				break
			}
		}
	}
	return a4, a6, a4.IsValid()
}

// MoveProblem says why host n cannot move behind the node called nat, or
// "": nat must be a nat, and another than the one n is behind. A host
// moves neither behind a one-to-one nat, whose one host it would join,
// nor away from one, which would leave its public address to nobody.
func (t *Topology) MoveProblem(n *Node, name string) string {
	to, from := t.Node(name), t.Node(n.Behind)
	switch {
	case n.Kind != KindHost:
		return fmt.Sprintf("%s is a %s; only a host moves", n.Name, n.Kind)
	case to == nil:
		return fmt.Sprintf("no node named %q", name)
	case to.NAT == nil:
		return fmt.Sprintf("%s is a %s, not a nat", name, to.Kind)
	case n.Behind == name:
		return fmt.Sprintf("%s is behind %s already", n.Name, name)
	case to.NAT.Type == nat.OneToOne:
		return fmt.Sprintf("%s is a one-to-one nat, which has one host behind it, and no host moves behind one", name)
	case to.NAT.Blocks.Enabled() || (from != nil && from.NAT != nil && from.NAT.Blocks.Enabled()):
		return fmt.Sprintf("%s or %s allocates ports in blocks, which its subscribers hold from the start; no host moves behind or away from one", name, n.Behind)
	case from != nil && from.NAT != nil && from.NAT.Type == nat.OneToOne:
		return fmt.Sprintf("%s owns the public address of %s, a one-to-one nat, which would be left to nobody; no host moves away from one", n.Name, from.Name)
	}
	if _, _, ok := t.MoveAddresses(n, name); !ok {
		return fmt.Sprintf("the LAN of %s has no free address left", name)
	}
	return ""
}

// Moved returns a copy of t in which host n is behind nat with the
// addresses a4 and a6 (a6 zero for none); the copy shares every other
// node with t.
func (t *Topology) Moved(n *Node, nat string, a4, a6 netip.Addr) *Topology {
	c := t.shallow()
	m := *n
	m.Behind, m.Addresses, m.Addresses6 = nat, []netip.Addr{a4}, nil
	if a6.IsValid() {
		m.Addresses6 = []netip.Addr{a6}
	}
	c.replace(&m)
	return c
}

// Renumbered returns a copy of t in which node n's first address is a;
// the copy shares every other node with t.
func (t *Topology) Renumbered(n *Node, a netip.Addr) *Topology {
	c := t.shallow()
	m := *n
	m.Addresses = append([]netip.Addr{a}, n.Addresses[1:]...)
	c.replace(&m)
	return c
}

// shallow copies t with its own list of nodes.
func (t *Topology) shallow() *Topology {
	c := *t
	c.Nodes = slices.Clone(t.Nodes)
	c.index = nil
	return &c
}

// replace puts m in the place of the node of its name.
func (t *Topology) replace(m *Node) {
	for i, o := range t.Nodes {
		if o.Name == m.Name {
			t.Nodes[i] = m
		}
	}
}

// Speaks reports whether nodes behind the NAT can ask it for a mapping
// with protocol (PortMappingNATPMP, PortMappingPCP...).
func (n *NAT) Speaks(protocol string) bool { return slices.Contains(n.PortMapping, protocol) }

// Subscriber is a node behind a nat with port blocks, and its blocks.
type Subscriber struct {
	Node   *Node
	Addr   netip.Addr
	Blocks []nat.PortRange
}

// Ranges are the subscriber's blocks as a file writes port ranges:
// 20000-20127.
func (s Subscriber) Ranges() []string {
	r := make([]string, len(s.Blocks))
	for i, b := range s.Blocks {
		r[i] = b.String()
	}
	return r
}

// Subscribers are the nodes behind nat n in the order of their
// addresses, each with the port blocks it holds (nat.PortBlocks.Blocks),
// none when n has no port blocks.
func (t *Topology) Subscribers(n *Node) []Subscriber {
	var subs []Subscriber
	for _, b := range t.Behind(n.Name) {
		if len(b.Addresses) > 0 {
			subs = append(subs, Subscriber{Node: b, Addr: b.Addresses[0]})
		}
	}
	slices.SortFunc(subs, func(a, b Subscriber) int { return a.Addr.Compare(b.Addr) })
	for i := range subs {
		subs[i].Blocks = n.NAT.Blocks.Blocks(i, n.NAT.Behaviour.PortRange)
	}
	return subs
}
