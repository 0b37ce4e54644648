package natrules

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// A stmt is one piece of a rule: the nft text for it and the expressions
// that implement it. Rules are sequences of stmts, so the text and the
// expressions cannot drift apart.
type stmt struct {
	text  string // empty for pieces nft does not print (implied dependencies)
	exprs []expr.Any
}

// Registers. nft loads single values into the 16-byte register 1 and
// concatenations into consecutive 4-byte registers starting at reg32(0),
// which overlaps register 1; these rules do the same.
const (
	reg1 = unix.NFT_REG_1
	reg2 = unix.NFT_REG_2
	reg3 = unix.NFT_REG_3
)

func reg32(n uint32) uint32 { return unix.NFT_REG32_00 + n }

func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func iifname(name string) stmt {
	return stmt{fmt.Sprintf("iifname %q", name), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ifname(name)},
	}}
}

func oifname(name string) stmt {
	return stmt{fmt.Sprintf("oifname %q", name), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ifname(name)},
	}}
}

// l4proto matches the transport protocol. nft leaves it out of the text
// where a later transport header match implies it (shown=false).
func l4proto(proto string, shown bool) stmt {
	num := map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "ipv6-icmp": unix.IPPROTO_ICMPV6}[proto]
	s := stmt{exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{num}},
	}}
	if shown {
		s.text = "meta l4proto " + proto
	}
	return s
}

// IPv4 header offsets and the offsets of ports in the TCP and UDP headers.
const (
	ipSaddrOffset = 12
	ipDaddrOffset = 16
	sportOffset   = 0
	dportOffset   = 2
)

func loadIP(offset, reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
}

func loadPort(offset, reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2}
}

func ipDaddr(a netip.Addr) stmt {
	return stmt{"ip daddr " + a.String(), []expr.Any{
		loadIP(ipDaddrOffset, reg1),
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: a.AsSlice()},
	}}
}

func ipSaddrIs(a netip.Addr) stmt {
	return stmt{"ip saddr " + a.String(), []expr.Any{
		loadIP(ipSaddrOffset, reg1),
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: a.AsSlice()},
	}}
}

func dport(proto string, port uint16) stmt {
	return stmt{fmt.Sprintf("%s dport %d", proto, port), []expr.Any{
		loadPort(dportOffset, reg1),
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: encodePort(port)},
	}}
}

// ctBits matches conntrack state or status bits: any of them set.
func ctBits(key expr.CtKey, bits uint32, text string) stmt {
	mask := binary.NativeEndian.AppendUint32(nil, bits)
	return stmt{text, []expr.Any{
		&expr.Ct{Key: key, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}}
}

func ctEstablishedRelated() stmt {
	return ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED, "ct state established,related")
}

// Conntrack status bits (linux/netfilter/nf_conntrack_common.h).
const (
	ipsSrcNAT = 1 << 4
	ipsDstNAT = 1 << 5
)

func ctStatusSNAT() stmt { return ctBits(expr.CtKeySTATUS, ipsSrcNAT, "ct status snat") }
func ctStatusDNAT() stmt { return ctBits(expr.CtKeySTATUS, ipsDstNAT, "ct status dnat") }

// LogGroup is the NFLOG group natlab's NATs log dropped packets to, with
// a prefix naming the rule; natlab trace listens on it.
const LogGroup = 7

// logDrop sends the packet to LogGroup with a prefix saying why it is
// dropped. Nothing is logged while nobody listens on the group.
func logDrop(prefix string) stmt {
	return stmt{fmt.Sprintf("log prefix %q group %d", prefix, LogGroup), []expr.Any{
		&expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX, Group: LogGroup, Data: []byte(prefix)},
	}}
}

func counter() stmt {
	return stmt{"counter packets 0 bytes 0", []expr.Any{&expr.Counter{}}}
}

func verdict(kind expr.VerdictKind, word string) stmt {
	return stmt{word, []expr.Any{&expr.Verdict{Kind: kind}}}
}

func accept() stmt { return verdict(expr.VerdictAccept, "accept") }
func drop() stmt   { return verdict(expr.VerdictDrop, "drop") }

func ret() stmt { return verdict(expr.VerdictReturn, "return") }

func jump(chain string) stmt {
	return stmt{"jump " + chain, []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}}
}

// Conntrack tuple directions, for ct expressions on ports.
const (
	original = 0
	reply    = 1
)

// A field is one value a map key or map data is made of: a packet header
// field, a conntrack port, or a value an earlier expression already left in
// a register.
type field struct {
	// size is the value's length in bytes; 0 means up to 4.
	size uint32
	text string
	load func(reg uint32) expr.Any // nil: the value is already in reg
	reg  uint32
}

// ctPort is a port of a conntrack tuple. (natlab uses no conntrack
// addresses: nft 1.0.6 cannot list generic ct address loads, and the
// address-specific ones cannot be expressed with google/nftables v0.3.0.)
func ctPort(key expr.CtKey, dir uint32) field {
	word := map[expr.CtKey]string{expr.CtKeyPROTOSRC: "proto-src", expr.CtKeyPROTODST: "proto-dst"}[key]
	dirWord := map[uint32]string{original: "original", reply: "reply"}[dir]
	return field{text: fmt.Sprintf("ct %s %s", dirWord, word), load: func(reg uint32) expr.Any {
		// The kernel reads NFTA_CT_DIRECTION as one byte; google/nftables
		// v0.3.0 sends four, big-endian, so the direction must sit in the
		// top byte or every load reads the original direction. (The
		// connection natlab loads tables with, internal/nftconn, sends
		// that byte alone, so the kernel logs no warning.)
		return &expr.Ct{Key: key, Direction: dir << 24, Register: reg}
	}}
}

func packetAddr(offset uint32, word string) field {
	return field{text: "ip " + word, load: func(reg uint32) expr.Any { return loadIP(offset, reg) }}
}

// packetPort is a port of the transport header, of a rule that matches
// proto (nft names the header in the text).
func packetPort(proto string, offset uint32, word string) field {
	return field{text: proto + " " + word, load: func(reg uint32) expr.Any { return loadPort(offset, reg) }}
}

// inRegister is a value an earlier expression of the rule computed.
func inRegister(reg uint32, text string) field { return field{text: text, reg: reg} }

var (
	ipSaddr  = packetAddr(ipSaddrOffset, "saddr")
	ipDaddrF = packetAddr(ipDaddrOffset, "daddr")
	// UDP's ports, for the IPv6 firewall, which follows the filtering
	// knob for UDP alone.
	udpSport = packetPort("udp", sportOffset, "sport")
	udpDport = packetPort("udp", dportOffset, "dport")
)

// concat loads fields into consecutive registers, as nft does for a
// concatenation: the first into the 16-byte register start, the rest into
// the 4-byte registers that follow it (every field takes four bytes). A
// single field already in a register is used where it is. It returns the
// register the value starts in, its text and the loads.
func concat(start uint32, fields ...field) (reg uint32, text string, exprs []expr.Any) {
	if len(fields) == 1 && fields[0].load == nil {
		return fields[0].reg, fields[0].text, nil
	}
	var texts []string
	words := uint32(0)
	for i, f := range fields {
		if f.load == nil {
			panic("natrules: a register value cannot be part of a concatenation")
		}
		r := start
		if i > 0 {
			r = reg32(4*(start-reg1) + words)
		}
		exprs = append(exprs, f.load(r))
		texts = append(texts, f.text)
		words += max(f.size, 4) / 4
	}
	return start, strings.Join(texts, " . "), exprs
}

// ctDirection matches the direction of the packet in its flow: original
// (from the side that started it) or reply.
func ctDirection(dir uint32) stmt {
	word := map[uint32]string{original: "original", reply: "reply"}[dir]
	return stmt{"ct direction " + word, []expr.Any{
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{byte(dir)}},
	}}
}

// The packet mark is in host byte order, as nft writes it.
func markBytes(mark uint32) []byte { return binary.NativeEndian.AppendUint32(nil, mark) }

// setCtMark marks the packet's connection: the flag lives on the flow,
// so that the packet mark stays free for the claim chain, which carries a
// candidate port in it.
func setCtMark(mark uint32) stmt {
	return stmt{fmt.Sprintf("ct mark set 0x%08x", mark), []expr.Any{
		&expr.Immediate{Register: reg1, Data: markBytes(mark)},
		&expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: reg1},
	}}
}

// ctMarkIs matches a connection setCtMark marked.
func ctMarkIs(mark uint32) stmt {
	return stmt{fmt.Sprintf("ct mark 0x%08x", mark), []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: markBytes(mark)},
	}}
}

// ctStateNew matches the first packet of a flow, before conntrack
// confirms it.
func ctStateNew() stmt { return ctBits(expr.CtKeySTATE, expr.CtStateBitNEW, "ct state new") }
