package linkshape

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// TableName is the name of natlab's link tables, one of the netdev family
// (the ends' ingress and egress hooks) and one of the inet family (the
// delay line's queue), apart from a NAT's own table.
const TableName = "natlab-link"

// QueueNum is the delay line's queue in every namespace that has one.
const QueueNum = 0

// dupMark marks a duplicate made on an end's egress hook while it passes
// that hook again, so that it is not lost or duplicated once more.
const dupMark = 0x6e6c0d0b

// perMillion is the scale of the random numbers loss and duplication
// are drawn from: percentages to four decimals.
const perMillion = 1_000_000

// needsTables reports whether plan p needs a table of natlab's links.
func needsTables(p *Plan, mech Mechanism) bool {
	if mech == DelayLine && p.Queue != nil {
		return true
	}
	for _, d := range p.Devices {
		if d.Down || (mech == DelayLine && (d.Egress.Loss > 0 || d.Egress.Duplicate > 0)) {
			return true
		}
	}
	return false
}

// tables adds to conn the netdev and inet tables plan p needs, after
// deleting the ones there are if replace says they may be there, so that
// one transaction replaces them.
func tables(conn *nftables.Conn, p *Plan, mech Mechanism, replace bool) {
	netdev := &nftables.Table{Family: nftables.TableFamilyNetdev, Name: TableName}
	inet := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	if replace {
		// Adding first makes the delete valid whatever is there.
		for _, t := range []*nftables.Table{netdev, inet} {
			conn.AddTable(t)
			conn.DelTable(t)
		}
	}
	names := make([]string, 0, len(p.Devices))
	for n := range p.Devices {
		names = append(names, n)
	}
	slices.Sort(names)
	var netdevChains int
	for _, name := range names {
		d := p.Devices[name]
		e := d.Egress
		if mech == DelayLine && (e.Loss > 0 || e.Duplicate > 0) {
			if netdevChains == 0 {
				conn.AddTable(netdev)
			}
			netdevChains++
			egressChain(conn, netdev, d)
		}
		if d.Down {
			if netdevChains == 0 {
				conn.AddTable(netdev)
			}
			netdevChains++
			drop := nftables.ChainPolicyDrop
			conn.AddChain(&nftables.Chain{Name: "down-" + name, Table: netdev, Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityRef(0), Device: name, Policy: &drop})
		}
	}
	if mech == DelayLine && p.Queue != nil {
		conn.AddTable(inet)
		holdChains(conn, inet, p.Queue)
	}
}

// egressChain adds the chain of d's egress hook: loss and duplication.
//
//	meta mark 0x6e6c0d0b meta mark set 0 accept
//	numgen random mod 1000000 < LOSS drop
//	numgen random mod 1000000 < DUP meta mark set 0x6e6c0d0b dup to DEV meta mark set 0
func egressChain(conn *nftables.Conn, t *nftables.Table, d *Device) {
	c := conn.AddChain(&nftables.Chain{Name: "egress-" + d.Name, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookEgress, Priority: nftables.ChainPriorityRef(0), Device: d.Name})
	rule := func(comment string, exprs ...expr.Any) {
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: exprs, UserData: userdata.AppendString(nil, userdata.TypeComment, comment)})
	}
	setMark := func(v uint32) []expr.Any {
		return []expr.Any{
			&expr.Immediate{Register: 1, Data: binary.NativeEndian.AppendUint32(nil, v)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		}
	}
	rule("a duplicate passes once", append([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, dupMark)},
	}, append(setMark(0), &expr.Verdict{Kind: expr.VerdictAccept})...)...)
	if d.Egress.Loss > 0 {
		rule(fmt.Sprintf("loss %v%%", d.Egress.Loss), append(chance(d.Egress.Loss), &expr.Verdict{Kind: expr.VerdictDrop})...)
	}
	if d.Egress.Duplicate > 0 {
		exprs := append(chance(d.Egress.Duplicate), setMark(dupMark)...)
		exprs = append(exprs,
			&expr.Immediate{Register: 2, Data: binary.NativeEndian.AppendUint32(nil, uint32(d.Index))},
			&expr.Dup{RegDev: 2, IsRegDevSet: true})
		rule(fmt.Sprintf("duplicate %v%%", d.Egress.Duplicate), append(exprs, setMark(0)...)...)
	}
}

// chance matches a share of percent of packets, drawn at random for
// each: numgen random mod 1000000 < N. The number is in host order and
// cmp compares bytes, so it is turned to network order first, as nft does.
func chance(percent float64) []expr.Any {
	n := uint32(math.Round(percent * perMillion / 100))
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: perMillion, Type: unix.NFT_NG_RANDOM},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binary.BigEndian.AppendUint32(nil, n)},
	}
}

// holdChains adds the delay line's chains (see Queue): what the
// namespace sends to an endpoint whose direction is held goes to the
// queue as it leaves, at output (priority raw, before conntrack) for its
// own packets and, a NAT's, at forward for what it forwards down to its
// LAN; what a NAT receives from a neighbour whose up direction is held,
// or through its own uplink if its down direction is, or forwards up to
// an endpoint, at prerouting (priority raw: before its conntrack, which
// must confirm each new flow's mapping before the next packet of the flow
// comes, else a symmetric NAT would map each anew).
//
//	chain out { type filter hook output priority raw
//	  oif UPLINK ip daddr @peers4 queue num 0
//	  ip daddr @lan4 queue num 0 }
//	chain pre { type filter hook prerouting priority raw
//	  iif UPLINK queue num 0                        # its down direction held
//	  iif UPLINK ip saddr @frompeers4 queue num 0   # or only its neighbours' up
//	  iif != UPLINK ip saddr @fromlan4 queue num 0
//	  iif != UPLINK ip daddr @peers4 queue num 0 }
//	chain fwd { type filter hook forward priority 100
//	  ip daddr @lan4 queue num 0 }
//
// (and the same for IPv6). The delay line tells the directions apart by
// the packet's devices and addresses.
func holdChains(conn *nftables.Conn, t *nftables.Table, q *Queue) {
	chain := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return conn.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: prio})
	}
	rule := func(c *nftables.Chain, comment string, exprs ...expr.Any) {
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: append(exprs, queueTarget()),
			UserData: userdata.AppendString(nil, userdata.TypeComment, comment)})
	}
	// Numbered here: google/nftables would number them from a global
	// counter, which labs coming up in parallel would race on.
	type sets [2]*nftables.Set // IPv4, IPv6
	newSets := func(name string, id uint32, ns map[string]Neighbour) sets {
		return sets{addrSet(conn, t, name+"4", id, ns, false), addrSet(conn, t, name+"6", id+1, ns, true)}
	}
	peers, lan := newSets("peers", 1, q.Peers), newSets("lan", 3, q.LAN)
	fromPeers, fromLAN := newSets("frompeers", 5, q.FromPeers), newSets("fromlan", 7, q.FromLAN)
	uplink := binary.NativeEndian.AppendUint32(nil, uint32(q.UplinkIndex))
	dev := func(key expr.MetaKey, op expr.CmpOp) []expr.Any {
		return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: uplink}}
	}
	each := func(c *nftables.Chain, comment string, s sets, match func(*nftables.Set) []expr.Any, before ...expr.Any) {
		for _, set := range s {
			if set != nil {
				rule(c, comment, append(slices.Clone(before), match(set)...)...)
			}
		}
	}
	out := chain("out", nftables.ChainHookOutput, nftables.ChainPriorityRaw)
	each(out, "to the endpoints beside it", peers, daddrIn, dev(expr.MetaKeyOIF, expr.CmpOpEq)...)
	each(out, "to the endpoints on its LAN", lan, daddrIn)
	if !q.Forwards {
		return
	}
	pre := chain("pre", nftables.ChainHookPrerouting, nftables.ChainPriorityRaw)
	if !q.Down.IsZero() {
		rule(pre, "the NAT's down direction", dev(expr.MetaKeyIIF, expr.CmpOpEq)...)
	} else {
		each(pre, "from the neighbours beside it", fromPeers, saddrIn, dev(expr.MetaKeyIIF, expr.CmpOpEq)...)
	}
	each(pre, "from its LAN", fromLAN, saddrIn, dev(expr.MetaKeyIIF, expr.CmpOpNeq)...)
	each(pre, "forwarded up to the endpoints beside it", peers, daddrIn, dev(expr.MetaKeyIIF, expr.CmpOpNeq)...)
	if lan[0] != nil || lan[1] != nil {
		fwd := chain("fwd", nftables.ChainHookForward, nftables.ChainPriorityRef(100))
		each(fwd, "forwarded down to the endpoints on its LAN", lan, daddrIn)
	}
}

// addrSet adds a set of the IPv4 (or, if v6, IPv6) addresses and
// prefixes of rs, nil if there are none. It is an interval set: each
// address or prefix is a range, its first address to the one past its
// last.
func addrSet(conn *nftables.Conn, t *nftables.Table, name string, id uint32, rs map[string]Neighbour, v6 bool) *nftables.Set {
	var ranges []netip.Prefix
	for _, node := range slices.Sorted(maps.Keys(rs)) {
		for _, a := range rs[node].Addrs {
			ranges = append(ranges, netip.PrefixFrom(a, a.BitLen()))
		}
		ranges = append(ranges, rs[node].Prefixes...)
	}
	var elems []nftables.SetElement
	for _, p := range ranges {
		if p.Addr().Is6() != v6 {
			continue
		}
		first, end := p.Masked().Addr(), lastOf(p).Next()
		elems = append(elems, nftables.SetElement{Key: first.AsSlice()})
		if end.IsValid() {
			elems = append(elems, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
	}
	if len(elems) == 0 {
		return nil
	}
	set := &nftables.Set{Table: t, Name: name, ID: id, KeyType: nftables.TypeIPAddr, Interval: true}
	if v6 {
		set.KeyType = nftables.TypeIP6Addr
	}
	// The error is for sets without a table or name, not this one.
	_ = conn.AddSet(set, elems)
	return set
}

// lastOf is the last address of prefix p.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// daddrIn matches packets of set's family whose destination is in it:
// meta nfproto ipv4 ip daddr @set.
func daddrIn(set *nftables.Set) []expr.Any { return addrIn(set, 16, 24) }

// saddrIn matches packets of set's family whose source is in it.
func saddrIn(set *nftables.Set) []expr.Any { return addrIn(set, 12, 8) }

// addrIn matches packets of set's family whose address at offset off4 of
// an IPv4 header (off6 of an IPv6 one) is in it.
func addrIn(set *nftables.Set, off4, off6 uint32) []expr.Any {
	proto, off, n := byte(unix.NFPROTO_IPV4), off4, uint32(4)
	if set.KeyType == nftables.TypeIP6Addr {
		proto, off, n = unix.NFPROTO_IPV6, off6, 16
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
	}
}

// queueTarget hands the packet to the delay line's queue: the xt NFQUEUE
// target (struct xt_NFQ_info_v3: queue number, number of queues, flags),
// through nftables' compat expression, as some kernels have no native
// nft queue. No flags: without a delay line bound to the queue packets are
// dropped, not let through unshaped.
func queueTarget() expr.Any {
	info := xt.Unknown(make([]byte, 8))
	binary.NativeEndian.PutUint16(info[0:], QueueNum)
	binary.NativeEndian.PutUint16(info[2:], 1)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
