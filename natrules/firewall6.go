package natrules

import (
	"fmt"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"

	"github.com/natlab/natlab/nat"
)

// Firewall6Config is a NAT node's IPv6 side: no translation (every host
// has a global address), but a stateful firewall that filters inbound
// traffic with the same RFC 4787 filtering words as the NAT.
type Firewall6Config struct {
	WAN, LAN  string
	Filtering nat.Dependence
	// Timeout is how long an outbound UDP flow keeps its pinhole open.
	Timeout time.Duration
}

// BuildFirewall6 returns the IPv6 firewall table. Replies to outbound
// flows always get in (conntrack); endpoint-independent filtering also
// lets anyone reach an inside endpoint that has sent out, and
// address-dependent filtering anyone at an address it has sent to.
func BuildFirewall6(c Firewall6Config) (*Ruleset, error) {
	if _, err := nat.ParseDependence(string(c.Filtering)); err != nil {
		return nil, fmt.Errorf("natrules: firewall6 filtering: %w", err)
	}
	if c.Timeout < time.Second {
		return nil, fmt.Errorf("natrules: firewall6 timeout %v must be at least 1s", c.Timeout)
	}
	t := TableFirewall6()
	r := &Ruleset{table: t}
	b := &builder{r: r}
	ip6, svc := nftables.TypeIP6Addr, nftables.TypeInetService
	switch c.Filtering {
	case nat.EndpointIndependent:
		s := newSet(t, setOpen6, "inside endpoints that have sent out: anyone may answer them", []nftables.SetDatatype{ip6, svc}, nil)
		r.sets = append(r.sets, s)
	case nat.AddressDependent:
		s := newSet(t, setPermits6, "remote address . inside endpoint: whom each endpoint has sent to", []nftables.SetDatatype{ip6, ip6, svc}, nil)
		r.sets = append(r.sets, s)
	}
	for i, s := range r.sets {
		s.spec.ID = uint32(i + 1)
		s.spec.KeyByteOrder = binaryutil.BigEndian
	}

	fwd := b.chain(chainForward, nftables.ChainHookForward, nftables.ChainTypeFilter, nftables.ChainPriorityFilter, nftables.ChainPolicyDrop)
	fwd.add("", ctEstablishedRelated(), accept())
	out := []stmt{iifname(c.LAN), oifname(c.WAN)}
	switch c.Filtering {
	case nat.EndpointIndependent:
		fwd.add("an inside endpoint that sends out may be reached by anyone",
			append(out, l4proto("udp", false), update(setOpen6, c.Timeout, []field{ip6Saddr, udpSport}, nil))...)
	case nat.AddressDependent:
		fwd.add("an inside endpoint that sends out may be reached from that address",
			append(out, l4proto("udp", false), update(setPermits6, c.Timeout, []field{ip6Daddr, ip6Saddr, udpSport}, nil))...)
	}
	fwd.add("the inside may start flows out", append(out, accept())...)
	switch c.Filtering {
	case nat.EndpointIndependent:
		fwd.add("endpoint-independent filtering: anyone may reach an endpoint that has sent out",
			iifname(c.WAN), oifname(c.LAN), l4proto("udp", false), inSet(setOpen6, ip6Daddr, udpDport), accept())
	case nat.AddressDependent:
		fwd.add("address-dependent filtering: addresses an endpoint has sent to may reach it",
			iifname(c.WAN), oifname(c.LAN), l4proto("udp", false), inSet(setPermits6, ip6Saddr, ip6Daddr, udpDport), accept())
	}
	fwd.add("the wall: nothing else is forwarded", counter(), logDrop(DropForward), drop())

	in := b.chain(chainInput, nftables.ChainHookInput, nftables.ChainTypeFilter, nftables.ChainPriorityFilter, nftables.ChainPolicyDrop)
	in.add("", ctEstablishedRelated(), accept())
	in.add("", iifname("lo"), accept())
	in.add("the LAN may reach the router", iifname(c.LAN), accept())
	in.add("neighbour discovery keeps the link working", l4proto("ipv6-icmp", true), accept())
	in.add("the wall: unsolicited packets from outside are dropped", counter(), logDrop(DropInput), drop())
	return r, nil
}

const (
	ip6SaddrOffset = 8
	ip6DaddrOffset = 24
)

func loadIP6(offset, reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 16}
}

var (
	ip6Saddr = field{size: 16, text: "ip6 saddr", load: func(reg uint32) expr.Any { return loadIP6(ip6SaddrOffset, reg) }}
	ip6Daddr = field{size: 16, text: "ip6 daddr", load: func(reg uint32) expr.Any { return loadIP6(ip6DaddrOffset, reg) }}
)
