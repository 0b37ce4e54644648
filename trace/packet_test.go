package trace

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// ipv4 builds an IPv4 packet of protocol proto from src to dst with the
// identification id around payload.
func ipv4(proto byte, id uint16, src, dst string, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(b[4:], id)
	b[8], b[9] = 64, proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	return append(b, payload...)
}

func udp(sport, dport uint16, payload string) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

// portUnreachable is the ICMP error about quoted, its checksum sum (NAT
// rewrites it).
func portUnreachable(quoted []byte, sum uint16) []byte {
	b := []byte{3, 3, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], sum)
	return append(b, quoted[:28]...)
}

// A host's ICMP error about a packet of a mapping, before the NAT and
// after it rewrote the error's source and the quoted packet's
// destination (RFC 5508), is one packet to the trace; an error about
// another packet is not.
func TestIdentityOfAnICMPErrorThroughNAT(t *testing.T) {
	quoted := ipv4(17, 0x1234, "203.0.113.1", "192.168.1.2", udp(3478, 40356, "stun answer"))
	before := ipv4(1, 7, "192.168.1.2", "203.0.113.1", portUnreachable(quoted, 0xaaaa))
	translated := ipv4(17, 0x1234, "203.0.113.1", "203.0.113.3", udp(3478, 50000, "stun answer"))
	after := ipv4(1, 7, "203.0.113.3", "203.0.113.1", portUnreachable(translated, 0xbbbb))
	other := ipv4(1, 7, "192.168.1.2", "203.0.113.1", portUnreachable(ipv4(17, 0x1235, "203.0.113.1", "192.168.1.2", udp(3478, 40356, "stun answer")), 0xaaaa))
	if identity(before) != identity(after) {
		t.Error("the error before and after the NAT are two packets to the trace")
	}
	if identity(before) == identity(other) {
		t.Error("errors about two packets are one to the trace")
	}
	// Queries keep their own identity: an echo's sequence and payload.
	echo := func(seq uint16, id uint16) []byte {
		b := []byte{8, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(b[4:], id)
		binary.BigEndian.PutUint16(b[6:], seq)
		return ipv4(1, 9, "192.168.1.2", "203.0.113.1", append(b, "ping"...))
	}
	if identity(echo(1, 100)) != identity(echo(1, 200)) || identity(echo(1, 100)) == identity(echo(2, 100)) {
		t.Error("an echo's identity depends on its identifier, or not on its sequence")
	}
}
