package trace

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
)

// Packet is an IPv4 packet's headers, decoded.
type Packet struct {
	Proto string         `json:"proto"`
	Src   netip.AddrPort `json:"src"`
	Dst   netip.AddrPort `json:"dst"`
	// ICMP is the type/code for ICMP ("echo-request", ...); the ports of
	// an echo are its identifier.
	ICMP string `json:"icmp,omitempty"`
	// TCPFlags for TCP, e.g. "S" or ".A".
	TCPFlags string `json:"tcp_flags,omitempty"`
	Len      int    `json:"len"`
	Raw      []byte `json:"-"`
}

// endpoints is "src > dst", with ports where the protocol has them.
func (p Packet) endpoints() string {
	if p.ICMP != "" {
		return fmt.Sprintf("%v > %v (id %d)", p.Src.Addr(), p.Dst.Addr(), p.Src.Port())
	}
	return fmt.Sprintf("%v > %v", p.Src, p.Dst)
}

func (p Packet) String() string {
	s := fmt.Sprintf("%s %v > %v", p.Proto, p.Src, p.Dst)
	switch {
	case p.ICMP != "":
		s = fmt.Sprintf("icmp %s %v > %v", p.ICMP, p.Src.Addr(), p.Dst.Addr())
	case p.TCPFlags != "":
		s += " [" + p.TCPFlags + "]"
	}
	return s
}

var icmpTypes = map[uint8]string{0: "echo-reply", 3: "unreachable", 8: "echo-request", 11: "time-exceeded"}

// decode reads an IPv4 packet; ok is false for anything else.
func decode(b []byte) (p Packet, ok bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return Packet{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl {
		return Packet{}, false
	}
	src, _ := netip.AddrFromSlice(b[12:16])
	dst, _ := netip.AddrFromSlice(b[16:20])
	p = Packet{Len: int(binary.BigEndian.Uint16(b[2:4])), Raw: b}
	l4 := b[ihl:]
	switch b[9] {
	case 17, 6:
		p.Proto = map[byte]string{17: "udp", 6: "tcp"}[b[9]]
		if len(l4) < 4 {
			return Packet{}, false
		}
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:2]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:4]))
		if b[9] == 6 && len(l4) >= 14 {
			p.TCPFlags = tcpFlags(l4[13])
		}
	case 1:
		p.Proto = "icmp"
		var id uint16
		if len(l4) >= 8 {
			id = binary.BigEndian.Uint16(l4[4:6])
		}
		p.Src, p.Dst = netip.AddrPortFrom(src, id), netip.AddrPortFrom(dst, id)
		if len(l4) >= 1 {
			if name, ok := icmpTypes[l4[0]]; ok {
				p.ICMP = name
			} else {
				p.ICMP = fmt.Sprintf("type-%d", l4[0])
			}
		}
	default:
		p.Proto = fmt.Sprint(b[9])
		p.Src, p.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
	}
	return p, true
}

func tcpFlags(f byte) string {
	var s []byte
	for i, c := range "FSRPAU" {
		if f&(1<<i) != 0 {
			s = append(s, byte(c))
		}
	}
	return string(s)
}

// identity is what NAT leaves alone in a packet: the IP identification,
// protocol and length, and the transport bytes other than ports and
// checksums. The same packet before and after translation has the same
// identity.
func identity(b []byte) uint64 {
	h := fnv.New64a()
	if len(b) < 20 {
		return 0
	}
	ihl := int(b[0]&0x0f) * 4
	h.Write(b[2:6])  // length, identification
	h.Write(b[9:10]) // protocol
	if ihl > len(b) {
		return h.Sum64()
	}
	l4 := b[ihl:]
	switch b[9] {
	case 17: // UDP: the payload
		if len(l4) >= 8 {
			h.Write(l4[8:])
		}
	case 6: // TCP: sequence and acknowledgement numbers, flags, payload
		if len(l4) >= 20 {
			h.Write(l4[4:14])
			if off := int(l4[12]>>4) * 4; off <= len(l4) {
				h.Write(l4[off:])
			}
		}
	case 1:
		switch {
		case len(l4) >= 8+20 && icmpError(l4[0]):
			// An error quotes the packet it is about, whose addresses
			// and ports NAT rewrites along with the error's own (RFC
			// 5508): its type and code, and the quoted packet's length,
			// identification and protocol, which NAT leaves alone.
			inner := l4[8:]
			h.Write(l4[0:2])
			h.Write(inner[2:6])
			h.Write(inner[9:10])
		case len(l4) >= 8:
			// A query: type, code, sequence, payload (not the
			// identifier, which NAT may change).
			h.Write(l4[0:2])
			h.Write(l4[6:])
		}
	default:
		h.Write(l4)
	}
	return h.Sum64()
}

// icmpError says whether an ICMP type is an error about another packet:
// destination unreachable, source quench, redirect, time exceeded or
// parameter problem.
func icmpError(typ byte) bool {
	switch typ {
	case 3, 4, 5, 11, 12:
		return true
	}
	return false
}
