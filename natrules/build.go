package natrules

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/nat"
)

// The prefixes of the rules that drop packets, as natlab trace reports
// them.
const (
	DropInput   = "wall: unsolicited, to the NAT"
	DropForward = "wall: not admitted through"
	DropNoPort  = "no free public port"
	DropClash   = "the host talks to this remote through another mapping"
	DropHairpin = "hairpin: the filtering does not admit the sender"
	DropExpired = "expired: inbound traffic does not refresh the mapping"
	DropPool    = "wall: not the address of this mapping"
)

// randomAttempts is how many random ports a new mapping tries when its
// preferred port is taken. With T of N ports taken all of them fail with
// probability (T/N)^8: about 1 in 400 with three quarters of the range
// taken. Ranges of up to scanLimit ports are then also tried port by
// port, so a mapping is refused only when every port is taken.
const (
	randomAttempts = 8
	scanLimit      = 64
)

// Build returns the ruleset that makes a NAT behave as c describes.
func Build(c Config) (*Ruleset, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("natrules: %w", err)
	}
	b := &builder{Config: c, b: c.Behaviour, transports: transports(c.Behaviour), r: &Ruleset{
		table: Table(),
	}}
	b.transports[0].held = c.Offload
	if c.OneToOne.IsValid() {
		b.oneToOne()
		return b.r, nil
	}
	b.sets()
	for i, s := range b.r.sets {
		s.spec.ID = uint32(i + 1)
	}
	b.prerouting()
	b.postrouting()
	b.outbound()
	for _, p := range b.transports {
		b.claim(p)
	}
	b.poolWall()
	b.quota()
	b.track()
	b.expire()
	b.permit()
	b.clash()
	b.hairpin()
	b.forward()
	b.input()
	return b.r, nil
}

type builder struct {
	Config
	b nat.Behaviour
	// transports are UDP and TCP, in that order.
	transports []transport
	r          *Ruleset
}

func (b *builder) sets() {
	t := b.r.table
	inetService, ipv4 := nftables.TypeInetService, nftables.TypeIPAddr
	udp, tcp := b.transports[0], b.transports[1]
	b.mappingSets(udp)
	if b.PortMapping {
		for _, p := range []struct{ name, proto string }{{PortMapTCP, "TCP"}, {PortMapUDP, "UDP"}} {
			m := newSet(t, p.name, "public "+p.proto+" port -> private endpoint, as hosts asked by NAT-PMP or PCP",
				[]nftables.SetDatatype{inetService}, []nftables.SetDatatype{ipv4, inetService})
			m.spec.Dynamic = false
			b.r.sets = append(b.r.sets, m)
		}
	}
	b.filterSets(udp)
	if b.pooled() {
		b.poolSets()
	}
	if b.blocked() {
		b.blockSets()
	}
	b.mappingSets(tcp)
	b.filterSets(tcp)
}

// mappingSets declares p's ports map and its mappings map, if its
// mapping has one, with the static forwards of p in them.
func (b *builder) mappingSets(p transport) {
	t := b.r.table
	inetService, ipv4 := nftables.TypeInetService, nftables.TypeIPAddr
	ports := newSet(t, p.ports, fmt.Sprintf("public port -> private endpoint: the owner of every public %s port", p.upper()),
		[]nftables.SetDatatype{inetService}, []nftables.SetDatatype{ipv4, inetService})
	b.held(p, ports)
	for _, f := range b.Forwards {
		if f.Proto == p.name {
			o := Owner{Public: f.Port, Private: f.To}
			ports.elements = append(ports.elements, o.Element(0))
			ports.elementText = append(ports.elementText, o.text())
		}
	}
	b.r.sets = append(b.r.sets, ports)

	switch b.b.Mapping {
	case nat.EndpointIndependent:
		m := newSet(t, p.mappings, p.comment("private endpoint -> public port (endpoint-independent mapping)"),
			[]nftables.SetDatatype{ipv4, inetService}, []nftables.SetDatatype{inetService})
		b.held(p, m)
		for _, f := range b.Forwards {
			if f.Proto == p.name {
				e := Mapping{Private: f.To, Public: f.Port}
				m.elements = append(m.elements, e.Element(0))
				m.elementText = append(m.elementText, e.text())
			}
		}
		b.r.sets = append(b.r.sets, m)
	case nat.AddressDependent:
		m := newSet(t, p.mappings, p.comment("private endpoint . remote address -> public port (address-dependent mapping)"),
			[]nftables.SetDatatype{ipv4, inetService, ipv4}, []nftables.SetDatatype{inetService})
		b.held(p, m)
		b.r.sets = append(b.r.sets, m)
	}
}

// held makes an offloaded NAT's mapping map one whose elements live as
// long as conntrack's entries of their flows: the kernel takes "ct
// count" only in a set without timeouts.
func (b *builder) held(p transport, s *set) {
	if p.held {
		s.spec.HasTimeout = false
	}
}

// filterSets declares the sets p's filtering needs.
func (b *builder) filterSets(p transport) {
	t := b.r.table
	inetService, ipv4 := nftables.TypeInetService, nftables.TypeIPAddr
	if b.b.Filtering == nat.AddressDependent {
		b.r.sets = append(b.r.sets, newSet(t, p.permits, p.comment("remote address . public port: whom each mapping has sent to (address-dependent filtering)"),
			[]nftables.SetDatatype{ipv4, inetService}, nil))
	}
	if b.b.Hairpin && b.b.Filtering == nat.AddressAndPortDependent {
		b.r.sets = append(b.r.sets, newSet(t, p.hairpins, p.comment("remote address . remote port . public port: the public endpoints each mapping has sent to by hairpinning (address-and-port-dependent filtering)"),
			[]nftables.SetDatatype{ipv4, inetService, inetService}, nil))
	}
}

func (b *builder) chain(name string, hook *nftables.ChainHook, typ nftables.ChainType, prio *nftables.ChainPriority, policy nftables.ChainPolicy) *chain {
	c := &chain{spec: &nftables.Chain{Name: name, Table: b.r.table}}
	if hook != nil {
		c.spec.Hooknum, c.spec.Type, c.spec.Priority, c.spec.Policy = hook, typ, prio, &policy
	}
	b.r.chains = append(b.r.chains, c)
	return c
}

func (c *chain) add(comment string, stmts ...stmt) {
	c.rules = append(c.rules, rule{stmts: stmts, comment: comment})
}

// prerouting admits new inbound connections to the public address by
// destination NAT: static forwards, then whatever the filtering knob allows.
// What it does not translate is addressed to the NAT itself and meets the
// input chain's wall.
func (b *builder) prerouting() {
	c := b.chain(chainPrerouting, nftables.ChainHookPrerouting, nftables.ChainTypeNAT, nftables.ChainPriorityNATDest, nftables.ChainPolicyAccept)
	for _, f := range b.Forwards {
		var stmts []stmt
		if !b.b.Hairpin {
			stmts = append(stmts, iifname(b.WAN))
		}
		name := f.Name
		if name == "" {
			name = f.To.String()
		}
		stmts = append(stmts, ipDaddr(b.Public), l4proto(f.Proto, false), dport(f.Proto, f.Port), dnatTo(f.To))
		c.add(fmt.Sprintf("forward %s %d to %s", f.Proto, f.Port, name), stmts...)
	}
	if b.PortMapping {
		for _, p := range []struct{ proto, set string }{{"tcp", PortMapTCP}, {"udp", PortMapUDP}} {
			var stmts []stmt
			if !b.b.Hairpin {
				stmts = append(stmts, iifname(b.WAN))
			}
			stmts = append(stmts, ipDaddr(b.Public), l4proto(p.proto, false), dnatViaMap(p.proto, p.set))
			c.add("a forward a host asked for by NAT-PMP or PCP", stmts...)
		}
	}
	for _, p := range b.transports {
		switch b.b.Filtering {
		case nat.EndpointIndependent:
			c.add(p.comment("endpoint-independent filtering: anyone may reach a mapped port"),
				iifname(b.WAN), b.toPublic(), l4proto(p.name, false), dnatToOwner(p))
		case nat.AddressDependent:
			c.add(p.comment("address-dependent filtering: remotes the mapping has sent to may reach it"),
				iifname(b.WAN), b.toPublic(), l4proto(p.name, false), inSet(p.permits, ipSaddr, p.dport()), dnatToOwner(p))
		case nat.AddressAndPortDependent:
			// Conntrack admits replies from the exact remote endpoint
			// (for TCP, also the peer's SYN of a simultaneous open, which
			// is a reply to our own SYN), and nothing else needs
			// translating.
		}
	}
	if b.b.Hairpin {
		for _, p := range b.transports {
			stmts := []stmt{iifname(b.LAN), b.toPublic()}
			if b.b.Filtering != nat.EndpointIndependent {
				// The filtering judges it in the hairpin chain, once source NAT
				// has given it the sender's public port.
				stmts = append(stmts, setCtMark(hairpinMark))
			}
			c.add(p.comment("hairpin: a packet from inside to a mapped public port goes to its owner"),
				append(stmts, l4proto(p.name, false), dnatToOwner(p))...)
		}
	}
}

// postrouting sends everything leaving the LAN (and, with hairpinning,
// everything looped back into it) through the outbound chain.
func (b *builder) postrouting() {
	c := b.chain(chainPostrouting, nftables.ChainHookPostrouting, nftables.ChainTypeNAT, nftables.ChainPriorityNATSource, nftables.ChainPolicyAccept)
	c.add("", iifname(b.LAN), oifname(b.WAN), jump(chainOutbound))
	if b.b.Hairpin {
		c.add("", iifname(b.LAN), oifname(b.LAN), ctStatusDNAT(), jump(chainOutbound))
	}
}

// outbound picks the public source of a new flow. UDP and TCP follow
// the mapping and port knobs exactly and record a new mapping as they
// make it; everything else is left to conntrack.
func (b *builder) outbound() {
	c := b.chain(chainOutbound, nil, "", nil, 0)
	for _, p := range b.transports {
		b.outboundOf(c, p)
	}
	random := b.b.Mapping == nat.AddressAndPortDependent
	c.add("ICMP and the rest: conntrack picks the port", snatTo(b.srcAddr(nil), random))
}

func (b *builder) outboundOf(c *chain, p transport) {
	priv := []field{ipSaddr, p.sport()}
	// With arbitrary pooling the address's hash of the source port
	// implies the protocol, and nft leaves it out.
	shown := b.Pooling != nat.PoolingArbitrary
	switch b.b.Mapping {
	case nat.EndpointIndependent:
		c.add(p.comment("endpoint-independent mapping: reuse this private endpoint's public port"),
			l4proto(p.name, shown), snatFromMap(p, b.srcAddr(&p), priv...))
	case nat.AddressDependent:
		c.add(p.comment("address-dependent mapping: reuse the public port this private endpoint uses towards that address"),
			l4proto(p.name, shown), snatFromMap(p, b.srcAddr(&p), append(priv, ipDaddrF)...))
	}
	// Each candidate port is offered to the claim chain, which returns
	// if a mapping owns it and otherwise takes it (see markTaken).
	pr := b.b.PortRange
	offer := func(comment string, stmts ...stmt) {
		c.add(p.comment(comment), append(stmts, jump(p.claim))...)
	}
	proto := l4proto(p.name, true)
	if b.blocked() {
		b.offerBlocks(offer, p)
		c.add(p.comment("every port of the subscriber's quota is taken: refuse the mapping (RFC 6888 REQ-8)"), l4proto(p.name, true), counter(), logDrop(DropQuota), drop())
		return
	}
	switch b.b.Ports {
	case nat.PortPreserve:
		offer("new mapping: keep the private port when no other mapping owns it", offerSport(p, pr)...)
	case nat.PortSequential:
		offer(fmt.Sprintf("new mapping: the next port from %d, if free", pr.First), proto, offerNumgen(unix.NFT_NG_INCREMENTAL, pr))
	}
	for i := 0; i < min(randomAttempts, pr.Size()); i++ {
		offer(fmt.Sprintf("new mapping: a random port from %v, if free", pr), proto, offerNumgen(unix.NFT_NG_RANDOM, pr))
	}
	if pr.Size() <= scanLimit {
		for port := int(pr.First); port <= int(pr.Last); port++ {
			offer(fmt.Sprintf("new mapping: port %d, if free", port), proto, offerPort(uint16(port)))
		}
	}
	c.add(p.comment("no free public port: refuse the mapping"), l4proto(p.name, true), counter(), logDrop(DropNoPort), drop())
}

// claim takes the port the outbound chain offers in the mark for a new
// mapping of p, unless a mapping of p owns it already: then it returns,
// and the outbound chain offers the next candidate.
func (b *builder) claim(p transport) {
	c := b.chain(p.claim, nil, "", nil, 0)
	c.add(p.comment("the port is taken: offer the next"), markTaken(p), ret())
	if b.blocked() && b.Blocks.ReuseDelay > 0 {
		c.add(p.comment(fmt.Sprintf("the port's mapping expired less than %s ago: offer the next", nat.FormatDuration(b.Blocks.ReuseDelay))), markResting(p), ret())
	}
	stmts := []stmt{l4proto(p.name, false), loadMark()}
	stmts = append(stmts, b.recordNew(p, markPort)...)
	c.add(p.comment("a new mapping takes the port"), append(stmts, snatToPort(b.srcAddr(&p), markPort))...)
}

// recordNew enters a new mapping of p from the private source of the
// packet to the public port just picked.
func (b *builder) recordNew(p transport, public field) []stmt {
	t := p.fresh
	// An offloaded NAT's elements live as long as conntrack's entries
	// of their flows, this one's the first (offload.go).
	enter := func(name string, key, data []field) stmt {
		if p.held {
			return hold(name, key, data)
		}
		return update(name, t, key, data)
	}
	priv := []field{ipSaddr, p.sport()}
	stmts := append([]stmt{enter(p.ports, []field{public}, priv)}, b.rest(p, t, public)...)
	switch b.b.Mapping {
	case nat.EndpointIndependent:
		stmts = append(stmts, enter(p.mappings, priv, []field{public}))
	case nat.AddressDependent:
		stmts = append(stmts, enter(p.mappings, append(priv, ipDaddrF), []field{public}))
	}
	return stmts
}

// track keeps natlab's maps alive while a flow carries traffic, as
// conntrack keeps its entry alive: in either direction, or with refresh
// outbound only from inside, inbound packets then going through the
// expire chain instead. It runs on forwarded packets, where the private
// endpoint is still (or already) in the header and conntrack knows the
// public port. The first packet of a flow started inside is recorded by
// outbound instead: before its source NAT, conntrack does not know the
// public port yet, and "ct status snat" does not match.
//
// The base chain only sends each direction to a chain of its own, so
// that a packet meets two interface matches here, not two for each rule:
// matching an interface by name copies and compares the name, and the
// rules a packet meets are most of what the NAT costs a packet beyond
// conntrack's own work (docs/performance.md).
func (b *builder) track() {
	base := b.chain(chainTrack, nftables.ChainHookForward, nftables.ChainTypeFilter, prio(*nftables.ChainPriorityFilter-10), nftables.ChainPolicyAccept)
	base.add("outbound traffic", iifname(b.LAN), oifname(b.WAN), jump(chainTrackOutbound))
	base.add("inbound traffic", iifname(b.WAN), oifname(b.LAN), jump(chainTrackInbound))
	chains := map[string]*chain{b.LAN: b.chain(chainTrackOutbound, nil, "", nil, 0), b.WAN: b.chain(chainTrackInbound, nil, "", nil, 0)}
	for _, p := range b.transports {
		if p.held {
			b.holdNew(chains[b.LAN], chains[b.WAN], p)
			continue
		}
		t := p.live
		out := []field{ipSaddr, p.sport()}
		in := []field{ipDaddrF, p.dport()}
		for _, flow := range udpFlows() {
			for _, dir := range []struct {
				iif, oif string
				priv     []field
				remote   field
				comment  string
			}{
				{b.LAN, b.WAN, out, ipDaddrF, "outbound"},
				{b.WAN, b.LAN, in, ipSaddr, "inbound"},
			} {
				c := chains[dir.iif]
				stmts := []stmt{l4proto(p.name, false), flow.status}
				if dir.iif == b.WAN && p.refreshOutbound {
					c.add(fmt.Sprintf("%s: inbound traffic refreshes nothing (refresh outbound); the mapping must still be there", flow.comment),
						l4proto(p.name, true), flow.status, jump(chainExpire))
					continue
				}
				stmts = append(stmts, update(p.ports, t, []field{flow.public}, dir.priv))
				stmts = append(stmts, b.rest(p, t, flow.public)...)
				switch b.b.Mapping {
				case nat.EndpointIndependent:
					stmts = append(stmts, update(p.mappings, t, dir.priv, []field{flow.public}))
				case nat.AddressDependent:
					stmts = append(stmts, update(p.mappings, t, append(dir.priv, dir.remote), []field{flow.public}))
				}
				// Accepted here, the packet meets no more of track's rules;
				// the forward chain still decides whether it passes.
				stmts = append(stmts, accept())
				c.add(p.comment(fmt.Sprintf("%s: %s traffic refreshes the mapping", flow.comment, dir.comment)), stmts...)
			}
		}
	}
}

// udpFlow is a kind of UDP or TCP flow through the NAT, by how conntrack
// marks it, and where its public port is in its tuples.
type udpFlow struct {
	status  stmt
	public  field
	comment string
}

// udpFlows are the two kinds: started inside, whose public port is its
// reply tuple's destination, and let in, whose public port is its original
// tuple's destination.
func udpFlows() []udpFlow {
	return []udpFlow{
		{ctStatusSNAT(), ctPort(expr.CtKeyPROTODST, reply), "a flow started inside"},
		{ctStatusDNAT(), ctPort(expr.CtKeyPROTODST, original), "a flow let in"},
	}
}

// expire drops inbound packets of a flow whose mapping has expired, for a
// NAT whose mappings only outbound traffic refreshes (RFC 4787 section
// 4.3). Conntrack refreshes its entry with every packet, in either
// direction, and would let the replies of a flow whose host no longer
// sends in for ever; natlab's maps are refreshed from inside only, so a
// mapping whose public port they no longer own has expired, and what the
// flow brings in is dropped, as a NAT that had forgotten the mapping
// would.
func (b *builder) expire() {
	if b.b.Refresh != nat.RefreshOutbound {
		return
	}
	c := b.chain(chainExpire, nil, "", nil, 0)
	for _, flow := range udpFlows() {
		c.add(flow.comment+": its mapping still owns its public port", flow.status, portOwned(b.transports[0], flow.public), ret())
	}
	c.add("the mapping has expired: only outbound traffic refreshes it", counter(), logDrop(DropExpired), drop())
}

// permit remembers whom each mapping has sent to, for address-dependent
// filtering. It runs after source NAT, where every packet leaving by the
// WAN shows its public port and its remote address.
func (b *builder) permit() {
	if b.b.Filtering != nat.AddressDependent {
		return
	}
	c := b.chain(chainPermit, nftables.ChainHookPostrouting, nftables.ChainTypeFilter, prio(*nftables.ChainPriorityNATSource+10), nftables.ChainPolicyAccept)
	for _, p := range b.transports {
		c.add(p.comment("a mapping that sends to an address may hear back from it"),
			oifname(b.WAN), b.fromPublic(), l4proto(p.name, false),
			update(p.permits, p.live, []field{ipDaddrF, p.sport()}, nil))
	}
}

// clash drops the one kind of inbound packet natlab cannot deliver as an
// RFC 4787 NAT would. With address- or port-dependent mapping, a host may
// talk to a remote through one mapping while the filter admits a packet
// from that same remote to another of its mappings. A NAT delivers it
// unchanged and answers through the first mapping; conntrack cannot hold
// both flows, so Linux would invent a new source port for the remote to
// keep them apart. Dropping the packet instead keeps every port real, and
// leaves hole punching with the outcome theory predicts (nat.PunchWorks).
// Endpoint-independent mapping never meets this: the answer to the same
// remote is the same flow.
func (b *builder) clash() {
	if b.b.Mapping == nat.EndpointIndependent || (b.b.Filtering == nat.AddressAndPortDependent && len(b.Forwards) == 0) {
		return
	}
	c := b.chain(chainClash, nftables.ChainHookPostrouting, nftables.ChainTypeFilter, prio(*nftables.ChainPriorityNATSource+5), nftables.ChainPolicyAccept)
	c.add("an admitted packet that conntrack could only deliver with an invented source port",
		iifname(b.WAN), ctStatusDNAT(), ctStatusSNAT(), counter(), logDrop(DropClash), drop())
}

// hairpin is the inbound half of a hairpinned packet. RFC 4787 (section
// 6, REQ-9) treats a packet from inside to one of the NAT's public
// endpoints as leaving by one mapping and arriving at another from the
// NAT's public address: its outbound half makes or refreshes the sender's
// mapping and remembers whom it sent to, and the filtering of the mapping
// it arrives at decides whether it is let in. Both halves are judged here,
// after source NAT, where the packet shows the sender's public port: the
// mapping it left by, which under address-and-port-dependent mapping is a
// new one nobody can have sent to. A packet the filtering refuses is
// dropped before conntrack confirms its flow, so it leaves no flow behind,
// only the sender's mapping and its permit, as a real NAT would (and which
// lets two hosts behind one NAT punch through it, as two behind two NATs
// of its type would). Under address-and-port-dependent mapping it leaves
// neither: that mapping was the dropped flow's own, which no later packet
// could use, and keeping it would hold another port each time the packet
// is sent again. Endpoint-independent filtering admits every hairpinned
// packet and needs none of this.
func (b *builder) hairpin() {
	if !b.b.Hairpin || b.b.Filtering == nat.EndpointIndependent {
		return
	}
	// Only hairpinned packets, which leave by the LAN they came from, go
	// on to the rules (as in track, two interface matches a packet).
	base := b.chain(chainHairpin, nftables.ChainHookPostrouting, nftables.ChainTypeFilter, prio(*nftables.ChainPriorityNATSource+10), nftables.ChainPolicyAccept)
	base.add("hairpinned: back out of the LAN it came in by", iifname(b.LAN), oifname(b.LAN), jump(chainHairpinned))
	c := b.chain(chainHairpinned, nil, "", nil, 0)
	for _, p := range b.transports {
		b.hairpinOf(c, p)
	}
	// The drop is a chain of its own, which holds no expression
	// google/nftables cannot read back, so that the wall's counters can
	// count it (nattable.WallDrops).
	w := b.chain(chainHairpinWall, nil, "", nil, 0)
	w.add("the wall: the filtering refuses the hairpinned packet", counter(), logDrop(DropHairpin), drop())
}

// A hairpinTarget is a public address a hairpinned packet may have been
// sent to: the rules that match a packet sent to it, and the address as a
// key's field. With one address it is the packet's source after source
// NAT; with a pool, one per address of the pool, matched on the flow's
// original destination (nft lists a conntrack address compared with a
// constant, not one in a concatenation).
type hairpinTarget struct {
	match  []stmt
	remote field
}

func (b *builder) hairpinTargets() []hairpinTarget {
	if !b.pooled() {
		return []hairpinTarget{{nil, ipSaddr}}
	}
	var ts []hairpinTarget
	for _, a := range b.Pool {
		ts = append(ts, hairpinTarget{[]stmt{ctAddrIs(expr.CtKeyDST, original, a)}, constAddr(a)})
	}
	return ts
}

func (b *builder) hairpinOf(c *chain, p transport) {
	looped := []stmt{b.fromPublic(), l4proto(p.name, false)}
	t := p.live
	// The set of whom a mapping has sent to, and its key for the remote a
	// packet of direction dir was sent to.
	set, key := p.permits, func(remote field, dir uint32) []field { return []field{remote, p.sport()} }
	if b.b.Filtering == nat.AddressAndPortDependent {
		// The public port the packet was sent to is the destination of
		// its direction of the flow, before destination NAT.
		set, key = p.hairpins, func(remote field, dir uint32) []field {
			return []field{remote, ctPort(expr.CtKeyPROTODST, dir), p.sport()}
		}
	}
	if b.pooled() {
		b.poolHairpinPermits(c, p, looped, set, key)
	} else {
		// The remote a hairpinned packet was sent to is the NAT's
		// public address, which after source NAT is the packet's source
		// too. Under address-dependent filtering one rule does for both
		// directions; the other needs each direction's port.
		dirs := []uint32{original}
		if b.b.Filtering == nat.AddressAndPortDependent {
			dirs = append(dirs, reply)
		}
		for _, dir := range dirs {
			match := looped
			if len(dirs) > 1 {
				match = append(slices.Clone(looped), ctDirection(dir))
			}
			c.add(p.comment(map[bool]string{false: "a mapping that sends to the public address may hear back from it", true: "a mapping that sends to a public endpoint may hear back from it"}[len(dirs) > 1]),
				append(match, update(set, t, key(ipSaddr, dir), nil))...)
		}
	}
	comment := p.comment("address-dependent filtering: a hairpinned packet reaches a mapping that has sent to the public address")
	refused := notInSet(p.permits, ipSaddr, ctPort(expr.CtKeyPROTODST, original))
	if b.b.Filtering == nat.AddressAndPortDependent {
		comment = p.comment("address-and-port-dependent filtering: a hairpinned packet reaches a mapping that has sent to the sender's public endpoint")
		refused = notInSet(p.hairpins, ipSaddr, p.sport(), ctPort(expr.CtKeyPROTODST, original))
	}
	base := []stmt{ctMarkIs(hairpinMark), ctStateNew()}
	if b.b.Mapping != nat.AddressAndPortDependent {
		// nft shows the protocol unless a header field of it follows,
		// as address-and-port-dependent filtering's source port does.
		c.add(comment, append(base, l4proto(p.name, b.b.Filtering == nat.AddressDependent), refused, jump(chainHairpinWall))...)
		return
	}
	// Under address-and-port-dependent mapping the refused packet's
	// mapping is the new flow's, which conntrack forgets with the
	// dropped packet: the same packet sent again would get yet another
	// port. So what the packet recorded is removed with it: its public
	// port from the ports map (the data is the map's type; the delete
	// ignores it) and whom that port has sent to, which a new flow's
	// packet, of its original direction, recorded.
	for _, to := range b.hairpinTargets() {
		forget := []stmt{remove(p.ports, []field{p.sport()}, []field{ipSaddr, p.sport()}), remove(set, key(to.remote, original), nil)}
		rule := append(slices.Clone(base), to.match...)
		rule = append(rule, l4proto(p.name, false), refused)
		c.add(comment, append(append(rule, forget...), jump(chainHairpinWall))...)
	}
}

// forward lets the inside out and only admitted traffic in.
func (b *builder) forward() {
	c := b.chain(chainForward, nftables.ChainHookForward, nftables.ChainTypeFilter, nftables.ChainPriorityFilter, nftables.ChainPolicyDrop)
	if b.Offload {
		b.offload(c)
	}
	c.add("", ctEstablishedRelated(), accept())
	c.add("the inside may start flows out", iifname(b.LAN), oifname(b.WAN), accept())
	c.add("admitted by destination NAT: forwards, filtering, hairpin", ctStatusDNAT(), accept())
	c.add("the wall: nothing else is forwarded", counter(), logDrop(DropForward), drop())
}

// input protects the NAT itself. Dropping unsolicited inbound packets here,
// before conntrack confirms them, also keeps an early packet from a peer
// from claiming a public port that a mapping is about to take.
func (b *builder) input() {
	c := b.chain(chainInput, nftables.ChainHookInput, nftables.ChainTypeFilter, nftables.ChainPriorityFilter, nftables.ChainPolicyDrop)
	c.add("", ctEstablishedRelated(), accept())
	c.add("", iifname("lo"), accept())
	c.add("the LAN may reach the router", iifname(b.LAN), accept())
	c.add("the wall: unsolicited packets from outside are dropped", counter(), logDrop(DropInput), drop())
}

func prio(p nftables.ChainPriority) *nftables.ChainPriority { return &p }
