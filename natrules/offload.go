package natrules

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/nat"
)

// Offloading. On a kernel with the nftables flowtable (Config.Offload),
// a NAT hands its established UDP flows to the flowtable, whose packets
// then skip netfilter: conntrack, natlab's rules and all. The track
// chain, which refreshes a mapping with every packet, would no longer see
// them, so an offloaded NAT's UDP mappings live as long as conntrack's
// entries of their flows instead: each element of the ports and mappings
// maps counts those entries ("ct count over 0", which only a map without
// timeouts may hold) and the kernel removes it once none is left. The
// flowtable keeps an offloaded flow's entry alive, and conntrack's
// timeouts are the NAT's (the lab sets them in its namespace), so a
// mapping expires its timeout after its last packet, in either direction,
// as the refresh knob's default (both) has it, to within about a second:
// the set's garbage collection, which removes an element whose entries
// are gone, runs once a second, and the flowtable refreshes a flow's
// timeout at most once a second (docs/performance.md, "The flowtable").
// TCP keeps the per-packet rules (transport.held).

// TraceMark is the bit of a packet's mark that natlab trace sets on
// every packet it sees arrive: a NAT does not offload a flow whose
// packets carry it, so that a trace sees every packet of the flows that
// start or go on while it runs. (A flow offloaded before the trace began
// passes it by.) Nothing else reads the mark before the claim chain,
// which sets all of it.
const TraceMark = 1 << 24

// OffloadMinLifetime is the shortest UDP timeout a NAT offloads with:
// a second off is then at most 5% of the lifetime. Shorter ones, which
// tests and lessons use to watch mappings expire, keep the per-packet
// rules, exact to the millisecond.
const OffloadMinLifetime = 20 * time.Second

// Flowtable names the flowtable of an offloaded NAT's table.
const Flowtable = "fastpath"

// OffloadProblem says why a NAT configured as c cannot offload its
// flows, "" if it can. What needs to see every packet of a flow keeps the
// per-packet rules.
func (c *Config) OffloadProblem() string {
	b := c.Behaviour
	switch {
	case c.OneToOne.IsValid():
		return "a one-to-one NAT is not offloaded"
	case b.Refresh == nat.RefreshOutbound:
		return "refresh outbound: inbound packets must not keep a mapping alive, and conntrack refreshes its entries with both"
	case b.Filtering == nat.AddressDependent:
		return "address-dependent filtering: its permits are refreshed by every outbound packet"
	case c.pooled():
		return "a pool of public addresses is not offloaded"
	case c.blocked():
		return "port blocks are not offloaded: a freed port rests for the reuse delay from its mapping's last packet"
	case c.PortMapping:
		return "port mapping's leases are not offloaded"
	case b.Hairpin && b.Filtering == nat.AddressAndPortDependent && b.Mapping != nat.AddressAndPortDependent:
		// The mapping a refused hairpinned packet makes is kept, for a
		// hairpin punch between two hosts behind the NAT to use: its
		// flow is dropped, and conntrack would keep nothing.
		return "hairpinning with address-and-port-dependent filtering: the mapping a refused hairpinned packet makes must outlive its dropped flow"
	case b.Timeout.UDP < OffloadMinLifetime || b.Timeout.UDP%time.Second != 0:
		return fmt.Sprintf("UDP timeout %s: offloaded mappings are timed to about a second, so only whole seconds from %s are",
			nat.FormatDuration(b.Timeout.UDP), nat.FormatDuration(OffloadMinLifetime))
	}
	return ""
}

// holdElement is the expression an offloaded NAT's map elements carry:
// they count the conntrack entries that made or used them.
func holdElement() expr.Any { return &expr.Connlimit{Count: 0, Flags: connlimitOver} }

// connlimitOver is NFT_CONNLIMIT_F_INV of linux/netfilter/nf_tables.h
// ("ct count over N"), which golang.org/x/sys/unix does not name.
const connlimitOver = 1

// hold enters key -> data in map name with an element that lives as long
// as the conntrack entries of the flows that make or use it: an entry
// the element already counts is counted once.
func hold(name string, key, data []field) stmt {
	return dynset("update", name, " ct count over 0",
		&expr.Dynset{Operation: unix.NFT_DYNSET_OP_UPDATE, Exprs: []expr.Any{holdElement()}}, key, data)
}

// lookupInto loads into reg what map name holds for the key; if it holds
// nothing the rule does not match.
func lookupInto(reg uint32, name string, key ...field) (stmt, field) {
	_, text, exprs := concat(reg1, key...)
	text += " map @" + name
	return stmt{exprs: append(exprs, &expr.Lookup{SourceRegister: reg1, DestRegister: reg, IsDestRegSet: true, SetName: name})},
		inRegister(reg, text)
}

// holdNew has conntrack keep the mappings of p's flows that start: the
// first packet of a flow counts its entry in its mapping's elements,
// which then live as long as some flow of theirs does. A new mapping's
// first flow is counted by the claim chain, which makes the elements; a
// flow started inside that reuses a mapping (endpoint- or
// address-dependent mapping) finds its public port in the mappings map,
// before its source NAT; a flow let in (filtering, forwards) has it as
// its original destination. Like the per-packet rules it sits in the
// track chain's two directions, where the private endpoint is in the
// header, but it matches only a flow's first packet.
func (b *builder) holdNew(out, in *chain, p transport) {
	priv := []field{ipSaddr, p.sport()}
	switch b.b.Mapping {
	case nat.EndpointIndependent, nat.AddressDependent:
		key := priv
		if b.b.Mapping == nat.AddressDependent {
			key = append(key, ipDaddrF)
		}
		look, public := lookupInto(reg3, p.mappings, key...)
		// The lookup's key is in reg1, where hold loads it again.
		out.add(p.comment("a new flow reusing its private endpoint's mapping: the flow keeps it too"),
			l4proto(p.name, false), ctStateNew(), look, hold(p.mappings, key, []field{public}), hold(p.ports, []field{public}, priv), accept())
	}
	priv = []field{ipDaddrF, p.dport()}
	public := ctPort(expr.CtKeyPROTODST, original)
	stmts := []stmt{l4proto(p.name, false), ctStateNew(), ctStatusDNAT(), hold(p.ports, []field{public}, priv)}
	switch b.b.Mapping {
	case nat.EndpointIndependent:
		stmts = append(stmts, hold(p.mappings, priv, []field{public}))
	case nat.AddressDependent:
		stmts = append(stmts, hold(p.mappings, append(priv, ipSaddr), []field{public}))
	}
	in.add(p.comment("a new flow let in to a mapping: the flow keeps it too"), append(stmts, accept())...)
}

// offload hands a NAT's established flows through it to the flowtable,
// ahead of the forward chain's rules: only flows the wall let through are
// established. Hairpinned flows stay, whose permits their packets
// refresh.
func (b *builder) offload(c *chain) {
	b.r.flowtable = &nftables.Flowtable{Table: b.r.table, Name: Flowtable, Hooknum: nftables.FlowtableHookIngress,
		Priority: nftables.FlowtablePriorityFilter, Devices: []string{b.WAN, b.LAN}, Flags: flowtableCounter}
	add := stmt{"flow add @" + Flowtable, []expr.Any{&expr.FlowOffload{Name: Flowtable}}}
	established := ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED, "ct state established")
	untraced := stmt{fmt.Sprintf("meta mark & 0x%08x == 0x00000000", TraceMark), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: markBytes(TraceMark), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: make([]byte, 4)},
	}}
	udp := l4proto("udp", true)
	c.add("the fast path: an established UDP flow out skips netfilter from here on, unless a trace watches", udp, established, untraced, iifname(b.LAN), oifname(b.WAN), add)
	c.add("the fast path: an established UDP flow in skips netfilter from here on, unless a trace watches", udp, established, untraced, iifname(b.WAN), oifname(b.LAN), add)
}

// flowtableCounter makes the flowtable count offloaded packets in their
// conntrack entries (NFT_FLOWTABLE_COUNTER), which natlab table shows.
const flowtableCounter = nftables.FlowtableFlagsCounter

// flowtableText is the flowtable as nft lists it.
func flowtableText(f *nftables.Flowtable) string {
	return fmt.Sprintf("\tflowtable %s {\n\t\thook ingress priority filter\n\t\tdevices = { %s }\n\t\tcounter\n\t}\n", f.Name, strings.Join(f.Devices, ", "))
}
