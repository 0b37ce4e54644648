package natrules

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/nat"
)

func natExpr(typ expr.NATType, addrReg, protoReg uint32) *expr.NAT {
	return &expr.NAT{Type: typ, Family: unix.NFPROTO_IPV4, RegAddrMin: addrReg, RegProtoMin: protoReg, Specified: protoReg != 0}
}

func immediate(reg uint32, data []byte) *expr.Immediate {
	return &expr.Immediate{Register: reg, Data: data}
}

// dnatTo translates to a fixed address and port.
func dnatTo(to netip.AddrPort) stmt {
	return stmt{fmt.Sprintf("dnat to %v", to), []expr.Any{
		immediate(reg1, to.Addr().AsSlice()),
		immediate(reg2, encodePort(to.Port())),
		natExpr(expr.NATTypeDestNAT, reg1, reg2),
	}}
}

// dnatToAddr translates to a fixed address, leaving the port (and ICMP's
// echo identifier) as it is.
func dnatToAddr(to netip.Addr) stmt {
	return stmt{fmt.Sprintf("dnat to %v", to), []expr.Any{
		immediate(reg1, to.AsSlice()),
		natExpr(expr.NATTypeDestNAT, reg1, 0),
	}}
}

// dnatViaMap translates to the private endpoint a map holds for the
// destination port.
func dnatViaMap(proto, set string) stmt {
	return stmt{fmt.Sprintf("dnat ip to %s dport map @%s", proto, set), []expr.Any{
		loadPort(dportOffset, reg1),
		&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: set},
		natExpr(expr.NATTypeDestNAT, reg1, reg32(1)),
	}}
}

// dnatToOwner translates to the private endpoint that owns the destination
// port in p's ports map; packets to ports nobody owns are left alone.
func dnatToOwner(p transport) stmt { return dnatViaMap(p.name, p.ports) }

func inSet(name string, fields ...field) stmt {
	_, text, exprs := concat(reg1, fields...)
	return stmt{text + " @" + name, append(exprs, &expr.Lookup{SourceRegister: reg1, SetName: name})}
}

// notInSet matches if the key is not in the set.
func notInSet(name string, fields ...field) stmt {
	_, text, exprs := concat(reg1, fields...)
	return stmt{text + " != @" + name, append(exprs, &expr.Lookup{SourceRegister: reg1, SetName: name, Invert: true})}
}

// addrSrc is a public address a source NAT translates to: the
// expressions that leave it in reg1 and their nft text.
type addrSrc struct {
	text  string
	exprs []expr.Any
}

// fixedAddr is one fixed address.
func fixedAddr(a netip.Addr) addrSrc {
	return addrSrc{a.String(), []expr.Any{immediate(reg1, a.AsSlice())}}
}

// snatFromMap translates to the public port the mappings map of p holds
// for the key; if there is none the rule does not match.
func snatFromMap(p transport, public addrSrc, key ...field) stmt {
	_, text, loads := concat(reg2, key...)
	exprs := append(slices.Clone(public.exprs), loads...)
	exprs = append(exprs,
		&expr.Lookup{SourceRegister: reg2, DestRegister: reg2, IsDestRegSet: true, SetName: p.mappings},
		natExpr(expr.NATTypeSourceNAT, reg1, reg2))
	return stmt{fmt.Sprintf("snat to %v:%s map @%s", public.text, text, p.mappings), exprs}
}

// snatToPort translates to the public address addr leaves in reg1 and
// the public port in reg.
func snatToPort(public addrSrc, port field) stmt {
	return stmt{fmt.Sprintf("snat to %v:%s", public.text, port.text), append(slices.Clone(public.exprs),
		natExpr(expr.NATTypeSourceNAT, reg1, port.reg),
	)}
}

// A new mapping's public port is chosen in two steps, because Linux
// before 6.5 refuses a lookup in a map that has no destination register
// ("udp sport != @ports", "netfilter: nf_tables: relax set/map validation
// checks"): a rule of the outbound chain offers a candidate port, putting
// it in the packet's mark and jumping to the claim chain; there the first
// rule returns if a mapping owns the port (a lookup with a destination, not
// inverted, which every kernel takes) and the second takes it. The mark
// carries the candidate from one rule to the next, so a random or
// sequential candidate is drawn once, as in a single rule. It holds the
// port in network byte order, as a register holds a two-byte key. Nothing
// else in a NAT node reads marks, and the mark is cleared when the packet
// leaves the node's namespace (a veth crossing namespaces scrubs it).

func markSet(text string, load ...expr.Any) stmt {
	return stmt{"meta mark set " + text, append(load, &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg3})}
}

// markPort is the candidate port in the mark, loaded into reg3.
var markPort = inRegister(reg3, "meta mark")

func loadMark() stmt {
	return stmt{exprs: []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: reg3}}}
}

// offerNumgen offers a port drawn from the range (incrementally or at
// random). numgen yields host byte order, so the value is converted first
// (nat-behaviour.md, trap 7).
func offerNumgen(kind uint32, r nat.PortRange) stmt {
	word := map[uint32]string{unix.NFT_NG_INCREMENTAL: "inc", unix.NFT_NG_RANDOM: "random"}[kind]
	text := fmt.Sprintf("numgen %s mod %d offset %d", word, r.Size(), r.First)
	if r.First == 0 {
		// nft writes no offset of 0.
		text = fmt.Sprintf("numgen %s mod %d", word, r.Size())
	}
	return markSet(text,
		&expr.Numgen{Register: reg3, Type: kind, Modulus: uint32(r.Size()), Offset: uint32(r.First)},
		&expr.Byteorder{SourceRegister: reg3, DestRegister: reg3, Op: expr.ByteorderHton, Len: 2, Size: 2})
}

// offerSport offers the source port, if it lies in the range.
func offerSport(p transport, r nat.PortRange) []stmt {
	stmts := []stmt{l4proto(p.name, false)}
	if r != (nat.PortRange{First: 1, Last: 65535}) {
		stmts = append(stmts, stmt{fmt.Sprintf("%s sport %d-%d", p.name, r.First, r.Last), []expr.Any{
			loadPort(sportOffset, reg3),
			&expr.Range{Op: expr.CmpOpEq, Register: reg3, FromData: encodePort(r.First), ToData: encodePort(r.Last)},
		}})
	}
	return append(stmts, markSet(p.name+" sport", loadPort(sportOffset, reg3)))
}

// offerPort offers a fixed port. nft lists the mark as the number the
// register's bytes make in host byte order; the rule's comment names the
// port.
func offerPort(port uint16) stmt {
	data := append(encodePort(port), 0, 0)
	return markSet(fmt.Sprintf("0x%08x", binary.NativeEndian.Uint32(data)), immediate(reg3, data))
}

// markTaken matches if a mapping owns the port in the mark: a lookup in
// the ports map with a destination register, not inverted, the only
// lookup in a map Linux before 6.5 accepts. The lookup leaves the owner in
// reg2 and the rule compares it with zero, which no owner is (its address
// is a host's), so that nft lists the rule as the test it is rather than
// as a bare verdict.
func markTaken(p transport) stmt {
	return stmt{"meta mark map @" + p.ports + " != 0x0 [invalid type]", []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg3},
		&expr.Lookup{SourceRegister: reg3, DestRegister: reg2, IsDestRegSet: true, SetName: p.ports},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg2, Data: make([]byte, ip4Len)},
	}}
}

// portOwned matches if a mapping owns the public port the field loads:
// the lookup markTaken makes, of a conntrack port instead of the mark.
func portOwned(p transport, public field) stmt {
	return stmt{public.text + " map @" + p.ports + " != 0x0 [invalid type]", []expr.Any{
		public.load(reg3),
		&expr.Lookup{SourceRegister: reg3, DestRegister: reg2, IsDestRegSet: true, SetName: p.ports},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg2, Data: make([]byte, ip4Len)},
	}}
}

// snatTo translates the source address and lets conntrack choose the port:
// the same as the private one where that is unique, or random.
func snatTo(public addrSrc, random bool) stmt {
	s := stmt{fmt.Sprintf("snat to %v", public.text), append(slices.Clone(public.exprs),
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, Random: random},
	)}
	if random {
		s.text += " random"
	}
	return s
}

// update adds key (and data, for a map) to a dynamic set or refreshes it,
// with the mapping timeout.
func update(name string, timeout time.Duration, key, data []field) stmt {
	return dynset("update", name, " timeout "+nat.FormatDuration(timeout),
		&expr.Dynset{Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: timeout}, key, data)
}

// dynset is d on set name with key (and data, for a map), as nft writes
// it: "WORD @NAME { KEY[HOW] : DATA }". Key and data go to separate
// registers from reg1 and reg2 on, so neither overwrites the other.
func dynset(word, name, how string, d *expr.Dynset, key, data []field) stmt {
	keyReg, keyText, exprs := concat(reg1, key...)
	text := fmt.Sprintf("%s @%s { %s%s", word, name, keyText, how)
	d.SrcRegKey, d.SetName = keyReg, name
	if len(data) > 0 {
		dataReg, dataText, dataExprs := concat(reg2, data...)
		exprs = append(exprs, dataExprs...)
		d.SrcRegData = dataReg
		text += " : " + dataText
	}
	return stmt{text + " }", append(exprs, d)}
}

// dynsetOpDelete is NFT_DYNSET_OP_DELETE of linux/netfilter/nf_tables.h,
// which golang.org/x/sys/unix does not name.
const dynsetOpDelete = 2

// remove deletes the key's element from set name. A map's element is
// named by its key alone, but the kernel refuses a delete from a map
// without data to go with it (nft_dynset_init), which the delete then
// ignores: data is whatever fills the map's data type.
func remove(name string, key, data []field) stmt {
	return dynset("delete", name, "", &expr.Dynset{Operation: dynsetOpDelete}, key, data)
}
