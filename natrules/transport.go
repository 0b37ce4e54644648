package natrules

import (
	"time"

	"github.com/natlab/natlab/nat"
)

// A transport is a protocol whose mappings follow the knobs: UDP (RFC
// 4787) and TCP (RFC 5382, which asks the same of TCP: endpoint-independent
// mapping and filtering where a NAT can, and the same three kinds of each).
// Each has maps of its own, of the same shapes, so that a UDP mapping and
// a TCP mapping of one public port are two mappings, as at a real NAT, and
// a claim chain of its own, which looks the candidate port up in its own
// ports map.
type transport struct {
	name string // "udp" or "tcp", as nft writes it
	// The names of its maps and sets, and of its claim chain; rest is
	// its resting ports set under port blocks (blocks.go).
	ports, mappings, permits, hairpins, rest, claim string
	// fresh is the lifetime of a mapping the NAT has just made, and live
	// that of one whose traffic refreshes it: the same for UDP; for TCP
	// the transitory timeout (a connection opening, RFC 5382 REQ-5's 4
	// minutes) and the established one (2 h 4 min), as conntrack times a
	// connection in those states.
	fresh, live time.Duration
	// refreshOutbound: only outbound traffic refreshes the mapping (the
	// refresh knob). RFC 4787's knob is UDP's: a TCP mapping lives as
	// long as its connection, which conntrack keeps alive in both
	// directions.
	refreshOutbound bool
	// held: conntrack's entries of its flows keep its mappings, whose
	// flows an offloaded NAT hands to the flowtable (offload.go). UDP's
	// only: a TCP mapping outlives its connection by the transitory
	// timeout (RFC 5382 REQ-5), and conntrack's count drops a closed
	// connection at once, so TCP keeps the per-packet rules.
	held bool
}

func transports(b nat.Behaviour) []transport {
	return []transport{
		{name: "udp", ports: setPorts, mappings: setMappings, permits: setPermits, hairpins: setHairpins, rest: RestPortsSet, claim: chainClaim,
			fresh: b.Timeout.UDP, live: b.Timeout.UDP, refreshOutbound: b.Refresh == nat.RefreshOutbound},
		{name: "tcp", ports: setTCPPorts, mappings: setTCPMappings, permits: setTCPPermits, hairpins: setTCPHairpins, rest: TCPRestPortsSet, claim: chainTCPClaim,
			fresh: b.Timeout.TCPTransitory, live: b.Timeout.TCPEstablished},
	}
}

// TransportSets names the maps and sets of a protocol whose mappings
// follow the knobs, "udp" or "tcp": its ports map, its mappings map, its
// permits set and its hairpin permits set. ok is false for any other
// protocol.
func TransportSets(proto string) (ports, mappings, permits, hairpinPermits string, ok bool) {
	switch proto {
	case "udp":
		return PortsSet, MappingsSet, PermitsSet, HairpinPermitsSet, true
	case "tcp":
		return TCPPortsSet, TCPMappingsSet, TCPPermitsSet, TCPHairpinPermitsSet, true
	}
	return "", "", "", "", false
}

func (p transport) sport() field { return packetPort(p.name, sportOffset, "sport") }
func (p transport) dport() field { return packetPort(p.name, dportOffset, "dport") }

// upper is the protocol's name as prose writes it.
func (p transport) upper() string {
	if p.name == "tcp" {
		return "TCP"
	}
	return "UDP"
}

// comment is a set's or rule's comment for p: UDP's as it always was,
// TCP's saying it is TCP's.
func (p transport) comment(text string) string {
	if p.name == "tcp" {
		return "TCP: " + text
	}
	return text
}
