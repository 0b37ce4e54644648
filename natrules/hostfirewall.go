package natrules

import (
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// HostFirewallConfig is a host's own stateful firewall, as ufw keeps a
// laptop's: it holds no address, so that it stays right when the host
// moves to another LAN.
type HostFirewallConfig struct {
	// IPv6 says the host has IPv6 (a dual-stack lab), which needs
	// neighbour discovery let in to work at all.
	IPv6 bool
}

// DropHostFirewall is the prefix of the rule of a host's firewall that
// drops what the host did not ask for.
const DropHostFirewall = "firewall: unsolicited, to the host"

// BuildHostFirewall returns the table of a host's stateful firewall,
// loaded in the host's own namespace: an input chain, policy drop, that
// lets in the replies to flows the host started and the ICMP errors
// about them (conntrack's established and related), its loopback and,
// with IPv6, neighbour solicitations and adverts, which conntrack does not
// track; everything else is counted and dropped. Conntrack matches a
// reply by the whole tuple, so the filtering is address-and-port-
// dependent: a host on the internet with this firewall is as reachable as
// one behind a port-restricted cone NAT. One inet table covers both
// families. What the host sends is not filtered.
func BuildHostFirewall(c HostFirewallConfig) *Ruleset {
	r := &Ruleset{table: TableHostFirewall()}
	b := &builder{r: r}
	in := b.chain(chainInput, nftables.ChainHookInput, nftables.ChainTypeFilter, nftables.ChainPriorityFilter, nftables.ChainPolicyDrop)
	in.add("replies to what the host sent, and the ICMP errors about it", ctEstablishedRelated(), accept())
	in.add("", iifname("lo"), accept())
	if c.IPv6 {
		for _, t := range []struct {
			typ  byte
			name string
		}{{ndNeighborSolicit, "nd-neighbor-solicit"}, {ndNeighborAdvert, "nd-neighbor-advert"}} {
			in.add("neighbour discovery keeps the link working", icmpv6Type(t.typ, t.name), accept())
		}
	}
	in.add("the firewall: what the host did not ask for is dropped", counter(), logDrop(DropHostFirewall), drop())
	return r
}

// ICMPv6 neighbour discovery's message types (RFC 4861).
const (
	ndNeighborSolicit = 135
	ndNeighborAdvert  = 136
)

// icmpv6Type matches an ICMPv6 message type in an inet table, with the
// dependencies nft adds there (an IPv6 packet carrying ICMPv6), which it
// does not print.
func icmpv6Type(typ byte, name string) stmt {
	return stmt{"icmpv6 type " + name, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.NFPROTO_IPV6}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{typ}},
	}}
}
