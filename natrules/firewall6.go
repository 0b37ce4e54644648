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
	// Timeout is how long an outbound UDP flow keeps its pinhole open,
	// and TCPTimeout an outbound TCP one (the NAT's established TCP
	// timeout; zero for Timeout).
	Timeout, TCPTimeout time.Duration
}

// BuildFirewall6 returns the IPv6 firewall table. Replies to outbound
// flows always get in (conntrack); endpoint-independent filtering also
// lets anyone reach an inside endpoint that has sent out, and
// address-dependent filtering anyone at an address it has sent to: for
// UDP and for TCP alike (RFC 5382 asks of TCP what RFC 4787 asks of UDP),
// each protocol with its own pinholes.
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
	tcpTimeout := c.TCPTimeout
	if tcpTimeout == 0 {
		tcpTimeout = c.Timeout
	}
	protos := []struct {
		name, open, permits string
		timeout             time.Duration
		sport, dport        field
	}{
		{"udp", setOpen6, setPermits6, c.Timeout, udpSport, udpDport},
		{"tcp", setTCPOpen6, setTCPPermits6, tcpTimeout, packetPort("tcp", sportOffset, "sport"), packetPort("tcp", dportOffset, "dport")},
	}
	for _, p := range protos {
		what := map[string]string{"udp": "", "tcp": "TCP: "}[p.name]
		switch c.Filtering {
		case nat.EndpointIndependent:
			r.sets = append(r.sets, newSet(t, p.open, what+"inside endpoints that have sent out: anyone may answer them", []nftables.SetDatatype{ip6, svc}, nil))
		case nat.AddressDependent:
			r.sets = append(r.sets, newSet(t, p.permits, what+"remote address . inside endpoint: whom each endpoint has sent to", []nftables.SetDatatype{ip6, ip6, svc}, nil))
		}
	}
	for i, s := range r.sets {
		s.spec.ID = uint32(i + 1)
		s.spec.KeyByteOrder = binaryutil.BigEndian
	}

	fwd := b.chain(chainForward, nftables.ChainHookForward, nftables.ChainTypeFilter, nftables.ChainPriorityFilter, nftables.ChainPolicyDrop)
	fwd.add("", ctEstablishedRelated(), accept())
	out := []stmt{iifname(c.LAN), oifname(c.WAN)}
	for _, p := range protos {
		what := map[string]string{"udp": "", "tcp": "TCP: "}[p.name]
		switch c.Filtering {
		case nat.EndpointIndependent:
			fwd.add(what+"an inside endpoint that sends out may be reached by anyone",
				append(out, l4proto(p.name, false), update(p.open, p.timeout, []field{ip6Saddr, p.sport}, nil))...)
		case nat.AddressDependent:
			fwd.add(what+"an inside endpoint that sends out may be reached from that address",
				append(out, l4proto(p.name, false), update(p.permits, p.timeout, []field{ip6Daddr, ip6Saddr, p.sport}, nil))...)
		}
	}
	fwd.add("the inside may start flows out", append(out, accept())...)
	for _, p := range protos {
		what := map[string]string{"udp": "", "tcp": "TCP: "}[p.name]
		switch c.Filtering {
		case nat.EndpointIndependent:
			fwd.add(what+"endpoint-independent filtering: anyone may reach an endpoint that has sent out",
				iifname(c.WAN), oifname(c.LAN), l4proto(p.name, false), inSet(p.open, ip6Daddr, p.dport), accept())
		case nat.AddressDependent:
			fwd.add(what+"address-dependent filtering: addresses an endpoint has sent to may reach it",
				iifname(c.WAN), oifname(c.LAN), l4proto(p.name, false), inSet(p.permits, ip6Saddr, ip6Daddr, p.dport), accept())
		}
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
