package natrules

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/nat"
)

// A carrier-grade NAT allocates ports in blocks (RFC 6888, Config.Blocks):
// each subscriber, a private address, holds blocks of public ports, and a
// new mapping takes a free port of its own subscriber's. The ports a
// subscriber may use, its quota, are numbered 0 to Quota-1 across its
// blocks, and the subscriber_ports map, written when the lab comes up,
// turns a subscriber's address and such a number into the port. The
// outbound chain then offers numbers rather than ports: a random one (or
// the next, for sequential ports), and then every one in turn, each
// turned into its port and offered to the claim chain as other NATs offer
// ports, so that a mapping is refused only when every port of the
// subscriber's quota is taken (RFC 6888 REQ-4: no mapping is taken away
// to make room). A refused flow is dropped and counted (REQ-8 a) and, with
// Blocks.ICMP, answered with an ICMP host unreachable (REQ-8 b) from the
// forward hook, where the kernel lets a rule reject (the NAT's own chains
// run at postrouting, where it does not): the quota chain there asks the
// same question of each new flow first.
//
// A freed port rests (Blocks.ReuseDelay, REQ-8's 120 s): each mapping's
// port is also in the rest_ports set, refreshed with the mapping but
// living ReuseDelay longer, and the claim chain takes no port that is in
// it, so a late packet of an expired flow never reaches a new one.

// The sets and chains of port blocks.
const (
	// SubscriberPortsSet maps subscriber address . number to the public
	// port: the ports of each subscriber's quota, in order.
	SubscriberPortsSet = "subscriber_ports"
	// RestPortsSet and TCPRestPortsSet hold the public ports of live
	// mappings, and of expired ones for ReuseDelay more.
	RestPortsSet    = "rest_ports"
	TCPRestPortsSet = "tcp_rest_ports"
	// chainQuota is not "quota", which nft takes for its keyword.
	chainQuota = "port_quota"
	// DropQuota is the log prefix of a flow the subscriber's quota
	// refuses.
	DropQuota = "quota: the subscriber's ports are all taken"
)

// Subscriber is a private address that holds port blocks.
type Subscriber struct {
	Addr   netip.Addr
	Blocks []nat.PortRange
}

func (c *Config) blocked() bool { return c.Blocks.Enabled() }

func (c *Config) validateBlocks() []error {
	var errs []error
	b := c.Blocks
	if b.Count < 1 || b.Quota < 1 || b.Quota > b.Size*b.Count || b.ReuseDelay < 0 {
		errs = append(errs, fmt.Errorf("port blocks %+v: want blocks, and a quota of 1 to their ports", b))
	}
	if c.OneToOne.IsValid() || c.PortMapping || len(c.Pool) > 0 || c.Behaviour.Ports == nat.PortPreserve {
		errs = append(errs, errors.New("port blocks: not with one-to-one, port mapping, a pool or ports preserve"))
	}
	seen := map[netip.Addr]bool{}
	for _, s := range c.Subscribers {
		if !s.Addr.Is4() || seen[s.Addr] || len(s.Blocks) != b.Count {
			errs = append(errs, fmt.Errorf("subscriber %v: want one IPv4 address each, with %d blocks (it has %d)", s.Addr, b.Count, len(s.Blocks)))
		}
		seen[s.Addr] = true
		for _, r := range s.Blocks {
			if r.Size() != b.Size || !c.Behaviour.PortRange.Contains(r.First) || !c.Behaviour.PortRange.Contains(r.Last) {
				errs = append(errs, fmt.Errorf("subscriber %v: block %v is not %d ports of the range %v", s.Addr, r, b.Size, c.Behaviour.PortRange))
			}
		}
	}
	return errs
}

// blockSets declares subscriber_ports, with every subscriber's ports, and
// the resting ports sets.
func (b *builder) blockSets() {
	t := b.r.table
	inetService, ipv4 := nftables.TypeInetService, nftables.TypeIPAddr
	m := newSet(t, SubscriberPortsSet, "subscriber address . number -> public port: the ports of each subscriber's quota, in order (RFC 6888 port blocks)",
		[]nftables.SetDatatype{ipv4, inetService}, []nftables.SetDatatype{inetService})
	m.spec.Dynamic, m.spec.HasTimeout = false, false
	// In the order nft lists them, which is the order of their keys
	// read as one number in host byte order: by number, then address.
	for o := range b.Blocks.Quota {
		for _, s := range b.Subscribers {
			port, _ := nat.Port(s.Blocks, o)
			m.elements = append(m.elements, nftables.SetElement{Key: encodeAddrPort(s.Addr, uint16(o)), Val: encodePort(port)})
			m.elementText = append(m.elementText, fmt.Sprintf("%v . %d : %d", s.Addr, o, port))
		}
	}
	b.r.sets = append(b.r.sets, m)
	if b.Blocks.ReuseDelay > 0 {
		for _, p := range b.transports {
			b.r.sets = append(b.r.sets, newSet(t, p.rest, p.comment(fmt.Sprintf("public port: the ports of live mappings, and of expired ones for %s more (RFC 6888 REQ-8)", nat.FormatDuration(b.Blocks.ReuseDelay))),
				[]nftables.SetDatatype{inetService}, nil))
		}
	}
}

// markField is the packet's mark as part of a concatenation.
var markField = field{text: "meta mark", load: func(reg uint32) expr.Any { return &expr.Meta{Key: expr.MetaKeyMARK, Register: reg} }}

// subscriberPort turns the number in the mark into the subscriber's port
// it names, in the mark; the rule stops if the source is no subscriber.
func subscriberPort() stmt {
	keyReg, keyText, exprs := concat(reg1, ipSaddr, markField)
	return markSet(keyText+" map @"+SubscriberPortsSet,
		append(exprs, &expr.Lookup{SourceRegister: keyReg, DestRegister: reg3, IsDestRegSet: true, SetName: SubscriberPortsSet})...)
}

// offerNumber offers the number o of the subscriber's ports.
func offerNumber(o int) []stmt { return []stmt{offerPort(uint16(o)), subscriberPort()} }

// offerBlocks offers a new mapping of p the ports of its subscriber's
// quota: one drawn as the ports knob says, then each in turn.
func (b *builder) offerBlocks(offer func(string, ...stmt), p transport) {
	q := nat.PortRange{First: 0, Last: uint16(b.Blocks.Quota - 1)}
	proto := l4proto(p.name, true)
	if b.b.Ports == nat.PortSequential {
		offer("new mapping: the subscriber's next port, if free", proto, offerNumgen(unix.NFT_NG_INCREMENTAL, q), subscriberPort())
	} else {
		for i := 0; i < min(randomAttempts, b.Blocks.Quota); i++ {
			offer("new mapping: a random port of the subscriber's, if free", proto, offerNumgen(unix.NFT_NG_RANDOM, q), subscriberPort())
		}
	}
	for o := range b.Blocks.Quota {
		offer(fmt.Sprintf("new mapping: the subscriber's port number %d, if free", o), append([]stmt{proto}, offerNumber(o)...)...)
	}
}

// markResting matches if the port in the mark rests: a mapping has it,
// or had it less than ReuseDelay ago.
func markResting(p transport) stmt {
	return stmt{"meta mark @" + p.rest, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg3},
		&expr.Lookup{SourceRegister: reg3, SetName: p.rest},
	}}
}

// rest keeps the public port of a mapping of p resting for the
// mapping's lifetime and ReuseDelay more: nothing without port blocks or
// a reuse delay.
func (b *builder) rest(p transport, lifetime time.Duration, public field) []stmt {
	if !b.blocked() || b.Blocks.ReuseDelay == 0 {
		return nil
	}
	return []stmt{update(p.rest, lifetime+b.Blocks.ReuseDelay, []field{public}, nil)}
}

// quota answers a new flow its subscriber's quota refuses with an ICMP
// host unreachable, before the NAT's own chains drop it (see above).
func (b *builder) quota() {
	if !b.blocked() || !b.Blocks.ICMP {
		return
	}
	c := b.chain(chainQuota, nftables.ChainHookForward, nftables.ChainTypeFilter, prio(*nftables.ChainPriorityFilter-5), nftables.ChainPolicyAccept)
	for _, p := range b.transports {
		c.add(p.comment("a new flow out: is a port of its subscriber's free?"), iifname(b.LAN), oifname(b.WAN), ctStateNew(), l4proto(p.name, true), jump(quotaChain(p)))
		q := b.chain(quotaChain(p), nil, "", nil, 0)
		priv := []field{ipSaddr, p.sport()}
		switch b.b.Mapping {
		case nat.EndpointIndependent:
			q.add(p.comment("the private endpoint has its mapping"), l4proto(p.name, false), mappingHeld(p, priv), ret())
		case nat.AddressDependent:
			q.add(p.comment("the private endpoint has its mapping towards that address"), l4proto(p.name, false), mappingHeld(p, append(priv, ipDaddrF)), ret())
		}
		for o := range b.Blocks.Quota {
			q.add(p.comment(fmt.Sprintf("the subscriber's port number %d", o)), append(offerNumber(o), jump(freeChain(p)))...)
		}
		q.add(p.comment("every port of the subscriber's quota is taken: refuse the flow, and say so (RFC 6888 REQ-8)"),
			counter(), logDrop(DropQuota), rejectHostUnreachable())
		f := b.chain(freeChain(p), nil, "", nil, 0)
		f.add(p.comment("a mapping owns the port"), markTaken(p), ret())
		if b.Blocks.ReuseDelay > 0 {
			f.add(p.comment("the port rests"), markResting(p), ret())
		}
		f.add(p.comment("the port is free: the NAT will map the flow"), accept())
	}
}

func quotaChain(p transport) string { return p.name + "_quota" }
func freeChain(p transport) string  { return p.name + "_free" }

// mappingHeld matches if the mappings map of p has the key: a lookup
// with a destination register, as Linux before 6.5 asks of a map (see
// markTaken), compared with port 0, which no mapping has.
func mappingHeld(p transport, key []field) stmt {
	keyReg, keyText, exprs := concat(reg1, key...)
	return stmt{keyText + " map @" + p.mappings + " != 0x0 [invalid type]", append(exprs,
		&expr.Lookup{SourceRegister: keyReg, DestRegister: reg3, IsDestRegSet: true, SetName: p.mappings},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg3, Data: []byte{0, 0}},
	)}
}

// icmpHostUnreachable is ICMP's destination unreachable code 1 (RFC 792).
const icmpHostUnreachable = 1

// rejectHostUnreachable drops the packet and answers it with an ICMP
// destination unreachable, code 1 (host unreachable).
func rejectHostUnreachable() stmt {
	return stmt{"reject with icmp host-unreachable", []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpHostUnreachable}}}
}
