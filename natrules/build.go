package natrules

import (
	"fmt"

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
	b := &builder{Config: c, b: c.Behaviour, r: &Ruleset{
		table: Table(),
	}}
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
	b.claim()
	b.poolWall()
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
	r *Ruleset
}

func (b *builder) sets() {
	t := b.r.table
	inetService, ipv4 := nftables.TypeInetService, nftables.TypeIPAddr

	ports := newSet(t, setPorts, "public port -> private endpoint: the owner of every public UDP port",
		[]nftables.SetDatatype{inetService}, []nftables.SetDatatype{ipv4, inetService})
	for _, f := range b.Forwards {
		if f.Proto == "udp" {
			o := Owner{Public: f.Port, Private: f.To}
			ports.elements = append(ports.elements, o.Element(0))
			ports.elementText = append(ports.elementText, o.text())
		}
	}
	b.r.sets = append(b.r.sets, ports)

	switch b.b.Mapping {
	case nat.EndpointIndependent:
		m := newSet(t, setMappings, "private endpoint -> public port (endpoint-independent mapping)",
			[]nftables.SetDatatype{ipv4, inetService}, []nftables.SetDatatype{inetService})
		for _, f := range b.Forwards {
			if f.Proto == "udp" {
				e := Mapping{Private: f.To, Public: f.Port}
				m.elements = append(m.elements, e.Element(0))
				m.elementText = append(m.elementText, e.text())
			}
		}
		b.r.sets = append(b.r.sets, m)
	case nat.AddressDependent:
		b.r.sets = append(b.r.sets, newSet(t, setMappings, "private endpoint . remote address -> public port (address-dependent mapping)",
			[]nftables.SetDatatype{ipv4, inetService, ipv4}, []nftables.SetDatatype{inetService}))
	}

	if b.PortMapping {
		for _, p := range []struct{ name, proto string }{{PortMapTCP, "TCP"}, {PortMapUDP, "UDP"}} {
			m := newSet(t, p.name, "public "+p.proto+" port -> private endpoint, as hosts asked by NAT-PMP or PCP",
				[]nftables.SetDatatype{inetService}, []nftables.SetDatatype{ipv4, inetService})
			m.spec.Dynamic = false
			b.r.sets = append(b.r.sets, m)
		}
	}
	if b.b.Filtering == nat.AddressDependent {
		b.r.sets = append(b.r.sets, newSet(t, setPermits, "remote address . public port: whom each mapping has sent to (address-dependent filtering)",
			[]nftables.SetDatatype{ipv4, inetService}, nil))
	}
	if b.b.Hairpin && b.b.Filtering == nat.AddressAndPortDependent {
		b.r.sets = append(b.r.sets, newSet(t, setHairpins, "remote address . remote port . public port: the public endpoints each mapping has sent to by hairpinning (address-and-port-dependent filtering)",
			[]nftables.SetDatatype{ipv4, inetService, inetService}, nil))
	}
	if b.pooled() {
		b.poolSets()
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
	switch b.b.Filtering {
	case nat.EndpointIndependent:
		c.add("endpoint-independent filtering: anyone may reach a mapped port",
			iifname(b.WAN), b.toPublic(), l4proto("udp", false), dnatToOwner())
	case nat.AddressDependent:
		c.add("address-dependent filtering: remotes the mapping has sent to may reach it",
			iifname(b.WAN), b.toPublic(), l4proto("udp", false), inSet(setPermits, ipSaddr, udpDport), dnatToOwner())
	case nat.AddressAndPortDependent:
		// Conntrack admits replies from the exact remote endpoint, and
		// nothing else needs translating.
	}
	if b.b.Hairpin {
		stmts := []stmt{iifname(b.LAN), b.toPublic()}
		if b.b.Filtering != nat.EndpointIndependent {
			// The filtering judges it in the hairpin chain, once source NAT
			// has given it the sender's public port.
			stmts = append(stmts, setCtMark(hairpinMark))
		}
		c.add("hairpin: a packet from inside to a mapped public port goes to its owner",
			append(stmts, l4proto("udp", false), dnatToOwner())...)
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

// outbound picks the public source of a new flow. UDP follows the mapping
// and port knobs exactly and records a new mapping as it makes it;
// everything else is left to conntrack.
func (b *builder) outbound() {
	c := b.chain(chainOutbound, nil, "", nil, 0)
	priv := []field{ipSaddr, udpSport}
	// With arbitrary pooling the address's hash of udp sport implies
	// the protocol, and nft leaves it out.
	shown := b.Pooling != nat.PoolingArbitrary
	switch b.b.Mapping {
	case nat.EndpointIndependent:
		c.add("endpoint-independent mapping: reuse this private endpoint's public port",
			l4proto("udp", shown), snatFromMap(b.srcAddr(true), priv...))
	case nat.AddressDependent:
		c.add("address-dependent mapping: reuse the public port this private endpoint uses towards that address",
			l4proto("udp", shown), snatFromMap(b.srcAddr(true), append(priv, ipDaddrF)...))
	}
	// Each candidate port is offered to the claim chain, which returns
	// if a mapping owns it and otherwise takes it (see markTaken).
	pr := b.b.PortRange
	offer := func(comment string, stmts ...stmt) {
		c.add(comment, append(stmts, jump(chainClaim))...)
	}
	udp := l4proto("udp", true)
	switch b.b.Ports {
	case nat.PortPreserve:
		offer("new mapping: keep the private port when no other mapping owns it", offerSport(pr)...)
	case nat.PortSequential:
		offer(fmt.Sprintf("new mapping: the next port from %d, if free", pr.First), udp, offerNumgen(unix.NFT_NG_INCREMENTAL, pr))
	}
	for i := 0; i < min(randomAttempts, pr.Size()); i++ {
		offer(fmt.Sprintf("new mapping: a random port from %v, if free", pr), udp, offerNumgen(unix.NFT_NG_RANDOM, pr))
	}
	if pr.Size() <= scanLimit {
		for p := int(pr.First); p <= int(pr.Last); p++ {
			offer(fmt.Sprintf("new mapping: port %d, if free", p), udp, offerPort(uint16(p)))
		}
	}
	c.add("no free public port: refuse the mapping", l4proto("udp", true), counter(), logDrop(DropNoPort), drop())
	random := b.b.Mapping == nat.AddressAndPortDependent
	c.add("TCP, ICMP and the rest: conntrack picks the port", snatTo(b.srcAddr(false), random))
}

// claim takes the port the outbound chain offers in the mark for a new
// mapping, unless a mapping owns it already: then it returns, and the
// outbound chain offers the next candidate.
func (b *builder) claim() {
	c := b.chain(chainClaim, nil, "", nil, 0)
	c.add("the port is taken: offer the next", markTaken(), ret())
	stmts := []stmt{l4proto("udp", false), loadMark()}
	stmts = append(stmts, b.recordNew(markPort)...)
	c.add("a new mapping takes the port", append(stmts, snatToPort(b.srcAddr(true), markPort))...)
}

// recordNew enters a new mapping from the private source of the packet to
// the public port just picked.
func (b *builder) recordNew(public field) []stmt {
	t := b.b.Timeout.UDP
	priv := []field{ipSaddr, udpSport}
	stmts := []stmt{update(setPorts, t, []field{public}, priv)}
	switch b.b.Mapping {
	case nat.EndpointIndependent:
		stmts = append(stmts, update(setMappings, t, priv, []field{public}))
	case nat.AddressDependent:
		stmts = append(stmts, update(setMappings, t, append(priv, ipDaddrF), []field{public}))
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
func (b *builder) track() {
	c := b.chain(chainTrack, nftables.ChainHookForward, nftables.ChainTypeFilter, prio(*nftables.ChainPriorityFilter-10), nftables.ChainPolicyAccept)
	t := b.b.Timeout.UDP
	out := []field{ipSaddr, udpSport}
	in := []field{ipDaddrF, udpDport}
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
			stmts := []stmt{iifname(dir.iif), oifname(dir.oif), l4proto("udp", false), flow.status}
			if dir.iif == b.WAN && b.b.Refresh == nat.RefreshOutbound {
				c.add(fmt.Sprintf("%s: inbound traffic refreshes nothing (refresh outbound); the mapping must still be there", flow.comment),
					iifname(dir.iif), oifname(dir.oif), l4proto("udp", true), flow.status, jump(chainExpire))
				continue
			}
			stmts = append(stmts, update(setPorts, t, []field{flow.public}, dir.priv))
			switch b.b.Mapping {
			case nat.EndpointIndependent:
				stmts = append(stmts, update(setMappings, t, dir.priv, []field{flow.public}))
			case nat.AddressDependent:
				stmts = append(stmts, update(setMappings, t, append(dir.priv, dir.remote), []field{flow.public}))
			}
			c.add(fmt.Sprintf("%s: %s traffic refreshes the mapping", flow.comment, dir.comment), stmts...)
		}
	}
}

// udpFlow is a kind of UDP flow through the NAT, by how conntrack marks
// it, and where its public port is in its tuples.
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
		c.add(flow.comment+": its mapping still owns its public port", flow.status, portOwned(flow.public), ret())
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
	c.add("a mapping that sends to an address may hear back from it",
		oifname(b.WAN), b.fromPublic(), l4proto("udp", false),
		update(setPermits, b.b.Timeout.UDP, []field{ipDaddrF, udpSport}, nil))
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
// of its type would). Endpoint-independent filtering admits every
// hairpinned packet and needs none of this.
func (b *builder) hairpin() {
	if !b.b.Hairpin || b.b.Filtering == nat.EndpointIndependent {
		return
	}
	c := b.chain(chainHairpin, nftables.ChainHookPostrouting, nftables.ChainTypeFilter, prio(*nftables.ChainPriorityNATSource+10), nftables.ChainPolicyAccept)
	looped := []stmt{iifname(b.LAN), oifname(b.LAN), b.fromPublic(), l4proto("udp", false)}
	t := b.b.Timeout.UDP
	// The remote a hairpinned packet was sent to is the NAT's public
	// address, which after source NAT is the packet's source too.
	remote := ipSaddr
	switch b.b.Filtering {
	case nat.AddressDependent:
		if b.pooled() {
			b.poolHairpinPermits(c, looped, func(remote field, dir uint32) []field { return []field{remote, udpSport} })
		} else {
			c.add("a mapping that sends to the public address may hear back from it",
				append(looped, update(setPermits, t, []field{remote, udpSport}, nil))...)
		}
		c.add("address-dependent filtering: a hairpinned packet reaches a mapping that has sent to the public address",
			iifname(b.LAN), oifname(b.LAN), ctMarkIs(hairpinMark), ctStateNew(), l4proto("udp", true),
			notInSet(setPermits, ipSaddr, ctPort(expr.CtKeyPROTODST, original)),
			counter(), logDrop(DropHairpin), drop())
	case nat.AddressAndPortDependent:
		// The public port the packet was sent to is the destination of
		// its direction of the flow, before destination NAT.
		if b.pooled() {
			b.poolHairpinPermits(c, looped, func(remote field, dir uint32) []field {
				return []field{remote, ctPort(expr.CtKeyPROTODST, dir), udpSport}
			})
		} else {
			for _, dir := range []uint32{original, reply} {
				c.add("a mapping that sends to a public endpoint may hear back from it",
					append(looped, ctDirection(dir), update(setHairpins, t, []field{remote, ctPort(expr.CtKeyPROTODST, dir), udpSport}, nil))...)
			}
		}
		c.add("address-and-port-dependent filtering: a hairpinned packet reaches a mapping that has sent to the sender's public endpoint",
			iifname(b.LAN), oifname(b.LAN), ctMarkIs(hairpinMark), ctStateNew(), l4proto("udp", false),
			notInSet(setHairpins, ipSaddr, udpSport, ctPort(expr.CtKeyPROTODST, original)),
			counter(), logDrop(DropHairpin), drop())
	}
}

// forward lets the inside out and only admitted traffic in.
func (b *builder) forward() {
	c := b.chain(chainForward, nftables.ChainHookForward, nftables.ChainTypeFilter, nftables.ChainPriorityFilter, nftables.ChainPolicyDrop)
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
