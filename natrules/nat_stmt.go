package natrules

import (
	"fmt"
	"net/netip"
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
// port; packets to ports nobody owns are left alone.
func dnatToOwner() stmt {
	return stmt{"dnat ip to udp dport map @" + setPorts, []expr.Any{
		loadPort(dportOffset, reg1),
		&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: setPorts},
		natExpr(expr.NATTypeDestNAT, reg1, reg32(1)),
	}}
}

func inSet(name string, fields ...field) stmt {
	_, text, exprs := concat(reg1, fields...)
	return stmt{text + " @" + name, append(exprs, &expr.Lookup{SourceRegister: reg1, SetName: name})}
}

// notInSet matches if the key is not in the set.
func notInSet(name string, fields ...field) stmt {
	_, text, exprs := concat(reg1, fields...)
	return stmt{text + " != @" + name, append(exprs, &expr.Lookup{SourceRegister: reg1, SetName: name, Invert: true})}
}

// snatFromMap translates to the public port the mappings map holds for the
// key; if there is none the rule does not match.
func snatFromMap(public netip.Addr, key ...field) stmt {
	_, text, loads := concat(reg2, key...)
	exprs := []expr.Any{immediate(reg1, public.AsSlice())}
	exprs = append(exprs, loads...)
	exprs = append(exprs,
		&expr.Lookup{SourceRegister: reg2, DestRegister: reg2, IsDestRegSet: true, SetName: setMappings},
		natExpr(expr.NATTypeSourceNAT, reg1, reg2))
	return stmt{fmt.Sprintf("snat to %v:%s map @%s", public, text, setMappings), exprs}
}

// snatToPort translates to the public port in reg.
func snatToPort(public netip.Addr, port field) stmt {
	text := port.text
	if port.natText != "" {
		text = port.natText
	}
	return stmt{fmt.Sprintf("snat to %v:%s", public, text), []expr.Any{
		immediate(reg1, public.AsSlice()),
		natExpr(expr.NATTypeSourceNAT, reg1, port.reg),
	}}
}

// numgen draws a port from the range into reg3 (incrementally or at random)
// and matches if no mapping owns it. numgen yields host byte order, so the
// value is converted before use (nat-behaviour.md, trap 7).
func numgen(kind uint32, r nat.PortRange) (stmt, field) {
	word := map[uint32]string{unix.NFT_NG_INCREMENTAL: "inc", unix.NFT_NG_RANDOM: "random"}[kind]
	text := fmt.Sprintf("numgen %s mod %d offset %d", word, r.Size(), r.First)
	return stmt{text + " != @" + setPorts, []expr.Any{
		&expr.Numgen{Register: reg3, Type: kind, Modulus: uint32(r.Size()), Offset: uint32(r.First)},
		&expr.Byteorder{SourceRegister: reg3, DestRegister: reg3, Op: expr.ByteorderHton, Len: 2, Size: 2},
		&expr.Lookup{SourceRegister: reg3, SetName: setPorts, Invert: true},
	}}, inRegister(reg3, text)
}

// keepSport puts the source port in reg3 and matches if it lies in the
// range and no mapping owns it.
func keepSport(r nat.PortRange) (stmt, field) {
	exprs := []expr.Any{loadPort(sportOffset, reg3)}
	text := ""
	if r != (nat.PortRange{First: 1, Last: 65535}) {
		exprs = append(exprs, &expr.Range{Op: expr.CmpOpEq, Register: reg3, FromData: encodePort(r.First), ToData: encodePort(r.Last)})
		text = fmt.Sprintf("udp sport %d-%d ", r.First, r.Last)
	}
	exprs = append(exprs, &expr.Lookup{SourceRegister: reg3, SetName: setPorts, Invert: true})
	return stmt{text + "udp sport != @" + setPorts, exprs}, inRegister(reg3, "udp sport")
}

// portFree puts a fixed port in reg3 and matches if no mapping owns it.
// nft lists a constant looked up in a set without its type, as
// "0x9c40 [invalid type]"; the rule's comment names the port.
func portFree(port uint16) (stmt, field) {
	text := fmt.Sprintf("0x%04x [invalid type]", port)
	return stmt{text + " != @" + setPorts, []expr.Any{
		immediate(reg3, encodePort(port)),
		&expr.Lookup{SourceRegister: reg3, SetName: setPorts, Invert: true},
	}}, field{text: text, natText: fmt.Sprint(port), reg: reg3}
}

// snatTo translates the source address and lets conntrack choose the port:
// the same as the private one where that is unique, or random.
func snatTo(public netip.Addr, random bool) stmt {
	s := stmt{fmt.Sprintf("snat to %v", public), []expr.Any{
		immediate(reg1, public.AsSlice()),
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, Random: random},
	}}
	if random {
		s.text += " random"
	}
	return s
}

// update adds key (and data, for a map) to a dynamic set or refreshes it,
// with the mapping timeout. Key and data go to separate registers from
// reg1 and reg2 on, so neither overwrites the other.
func update(name string, timeout time.Duration, key, data []field) stmt {
	keyReg, keyText, exprs := concat(reg1, key...)
	text := fmt.Sprintf("update @%s { %s timeout %s", name, keyText, nat.FormatDuration(timeout))
	d := &expr.Dynset{SrcRegKey: keyReg, SetName: name, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: timeout}
	if len(data) > 0 {
		dataReg, dataText, dataExprs := concat(reg2, data...)
		exprs = append(exprs, dataExprs...)
		d.SrcRegData = dataReg
		text += " : " + dataText
	}
	return stmt{text + " }", append(exprs, d)}
}
