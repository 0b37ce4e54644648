package linkshape

import (
	"encoding/binary"
	"fmt"
	"math"
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
		queueChain(conn, inet, p.Queue)
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

// queueChain adds the delay line's chain: at prerouting, before
// conntrack sees the packet (priority raw), the frames of the senders
// whose up direction it holds and, if the node's own down direction has
// a delay, everything that arrives on the uplink go to the queue.
//
//	meta iiftype ether ether saddr @senders queue num 0
//	meta iif UPLINK queue num 0
func queueChain(conn *nftables.Conn, t *nftables.Table, q *Queue) {
	c := conn.AddChain(&nftables.Chain{Name: "hold", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw})
	rule := func(comment string, exprs ...expr.Any) {
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: append(exprs, queueTarget()),
			UserData: userdata.AppendString(nil, userdata.TypeComment, comment)})
	}
	if len(q.Senders) > 0 {
		// Numbered here: google/nftables would number it from a global
		// counter, which labs coming up in parallel would race on.
		set := &nftables.Set{Table: t, Name: "senders", ID: 1, KeyType: nftables.TypeEtherAddr}
		var elems []nftables.SetElement
		for _, m := range sortedMACs(q.Senders) {
			elems = append(elems, nftables.SetElement{Key: m[:]})
		}
		// The error is for sets without a table or name, not this one.
		_ = conn.AddSet(set, elems)
		rule("the up directions of the neighbours",
			&expr.Meta{Key: expr.MetaKeyIIFTYPE, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint16(nil, unix.ARPHRD_ETHER)},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID})
	}
	if !q.Down.IsZero() {
		rule("the node's down direction",
			&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, uint32(q.UplinkIndex))})
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

func sortedMACs(m map[MAC]Hold) []MAC {
	macs := make([]MAC, 0, len(m))
	for k := range m {
		macs = append(macs, k)
	}
	slices.SortFunc(macs, func(a, b MAC) int { return slices.Compare(a[:], b[:]) })
	return macs
}
