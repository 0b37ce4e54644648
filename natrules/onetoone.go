package natrules

import "github.com/google/nftables"

// oneToOne builds the table of a one-to-one NAT (nat.OneToOne), as a
// cloud provider's 1:1 NAT gives a VM its public address: everything sent
// to the public address from outside, whatever its protocol and port, goes
// to the private address with its port kept, and everything the private
// address sends out leaves from the public address with its own port.
// Destination NAT to an address alone and source NAT without a port range
// leave ports as they are, and with one private address behind the NAT no
// two flows can claim one public port, so conntrack never has to pick
// another. The NAT needs no maps, then: nothing about a binding that
// never changes has to be learnt or forgotten.
//
// Packets to the NAT itself meet destination NAT too, as at a real 1:1
// NAT, which answers nothing on the public address itself: an unsolicited
// packet to any port, ICMP echo included, reaches the host. Only replies
// to flows the NAT's own namespace started (conntrack knows them and
// translates nothing) reach the NAT. The forward and input chains are a
// classic NAT's, so a packet destination NAT did not admit still meets
// the wall, and natlab trace reads one-to-one NATs as any other.
func (b *builder) oneToOne() {
	host, hairpin := b.OneToOne, b.b.Hairpin
	pre := b.chain(chainPrerouting, nftables.ChainHookPrerouting, nftables.ChainTypeNAT, nftables.ChainPriorityNATDest, nftables.ChainPolicyAccept)
	pre.add("one-to-one: everything to the public address is the host's, on every port, the port kept",
		iifname(b.WAN), ipDaddr(b.Public), dnatToAddr(host))
	if hairpin {
		pre.add("hairpin: the host reaches itself through the public address",
			iifname(b.LAN), ipDaddr(b.Public), dnatToAddr(host))
	}
	post := b.chain(chainPostrouting, nftables.ChainHookPostrouting, nftables.ChainTypeNAT, nftables.ChainPriorityNATSource, nftables.ChainPolicyAccept)
	post.add("one-to-one: the host's packets leave from the public address, each with its own port",
		iifname(b.LAN), oifname(b.WAN), snatTo(fixedAddr(b.Public), false))
	if hairpin {
		post.add("hairpin: a packet the host sent itself arrives from the public address, as from outside",
			iifname(b.LAN), oifname(b.LAN), ctStatusDNAT(), snatTo(fixedAddr(b.Public), false))
	}
	b.forward()
	b.input()
}
