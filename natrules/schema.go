package natrules

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
)

// The schema of natlab's tables in a NAT node's namespace: their names,
// the names of their sets and chains, and the byte layout of each set's
// elements. Build fills the tables; natpmp adds and removes elements,
// nattable reads them and trace adds a table of its own beside them, all
// through what this file exports, so the layout is written down once.
// (A test fails if another package spells a table or set name itself.)

// The tables natlab makes in a NAT node's namespace, and only there, and
// the one it makes in a host's with a firewall.
const (
	// TableName is the NAT's IPv4 table, the one Build returns.
	TableName = "natlab"
	// Firewall6Table is the NAT's IPv6 firewall, the one BuildFirewall6
	// returns.
	Firewall6Table = "natlab6"
	// TraceTableName is the table natlab trace adds while it traces.
	TraceTableName = "natlab_trace"
	// HostFirewallTable is a host's own firewall, the one
	// BuildHostFirewall returns, in the host's namespace: the only table
	// natlab makes in a host's.
	HostFirewallTable = "natlab_firewall"
)

// Table returns the descriptor of the NAT's IPv4 table (TableName), to
// look up or delete it, its sets and its chains in a namespace.
func Table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
}

// TableFirewall6 returns the descriptor of the NAT's IPv6 firewall table
// (Firewall6Table).
func TableFirewall6() *nftables.Table {
	return &nftables.Table{Name: Firewall6Table, Family: nftables.TableFamilyIPv6}
}

// TableHostFirewall returns the descriptor of a host's firewall table
// (HostFirewallTable), which covers IPv4 and IPv6 at once.
func TableHostFirewall() *nftables.Table {
	return &nftables.Table{Name: HostFirewallTable, Family: nftables.TableFamilyINet}
}

// TraceTable returns the descriptor of the trace's table (TraceTableName).
func TraceTable() *nftables.Table {
	return &nftables.Table{Name: TraceTableName, Family: nftables.TableFamilyIPv4}
}

// The sets and maps of the NAT's IPv4 table. Their elements are Owner,
// Mapping and Permit. UDP's have the plain names, TCP's the same with a
// tcp_ prefix and the same layouts (see TransportSets).
const (
	// PortsSet maps every public UDP port a mapping owns to its owner:
	// public port -> private address . private port (Owner).
	PortsSet = "ports"
	// MappingsSet maps private endpoints to their public port (Mapping):
	// keyed by the remote address too under address-dependent mapping,
	// absent under address-and-port-dependent mapping.
	MappingsSet = "mappings"
	// PermitsSet holds remote address . public port: whom each mapping has
	// sent to, under address-dependent filtering (Permit).
	PermitsSet = "permits"
	// HairpinPermitsSet holds remote address . remote port . public port:
	// the public endpoints each mapping has sent to through the NAT itself
	// (hairpinning), under address-and-port-dependent filtering
	// (HairpinPermit). Hairpinned packets come from the NAT's own public
	// address, so conntrack cannot tell them apart the way it tells
	// remotes on the WAN apart, and they need a set of their own.
	HairpinPermitsSet = "hairpin_permits"
	// PortMapTCP and PortMapUDP are the maps of port-mapping forwards
	// (NAT-PMP): public port -> private endpoint (Owner), one per
	// protocol, with the lifetime the host asked for.
	PortMapTCP = "portmap_tcp"
	PortMapUDP = "portmap_udp"
	// TCPPortsSet, TCPMappingsSet, TCPPermitsSet and
	// TCPHairpinPermitsSet are PortsSet, MappingsSet, PermitsSet and
	// HairpinPermitsSet for TCP, whose mappings follow the knobs too
	// (RFC 5382), kept apart: a public port may be one host's for UDP
	// and another's for TCP.
	TCPPortsSet          = "tcp_ports"
	TCPMappingsSet       = "tcp_mappings"
	TCPPermitsSet        = "tcp_permits"
	TCPHairpinPermitsSet = "tcp_hairpin_permits"
)

// The sets of the IPv6 firewall table.
const (
	setOpen6       = "open6"
	setPermits6    = "permits6"
	setTCPOpen6    = "tcp_open6"
	setTCPPermits6 = "tcp_permits6"
)

// PortMapSet names the port-mapping map of a protocol ("tcp" or "udp"),
// or "" for any other.
func PortMapSet(proto string) string {
	switch proto {
	case "tcp":
		return PortMapTCP
	case "udp":
		return PortMapUDP
	}
	return ""
}

// The chains that hold the wall: what is forwarded through the NAT, what
// is addressed to it, and the hairpinned packets its filtering refuses
// (the hairpin chain sends them to ChainHairpinWall).
const (
	ChainForward     = "forward"
	ChainInput       = "input"
	ChainHairpinWall = "hairpin_wall"
	// ChainTrack refreshes the mappings with their traffic, packet by
	// packet; the benchmark empties it to measure what that costs.
	ChainTrack = "track"
)

// The other chains, as `natlab rules` and the table show them.
const (
	chainPrerouting  = "prerouting"
	chainPostrouting = "postrouting"
	chainOutbound    = "outbound"
	chainClaim       = "claim"
	chainTCPClaim    = "tcp_claim"
	chainTrack       = ChainTrack
	// The two directions of traffic that track refreshes mappings with.
	chainTrackOutbound = "track_outbound"
	chainTrackInbound  = "track_inbound"
	chainExpire        = "expire"
	chainPermit        = "permit"
	chainClash         = "clash"
	chainHairpin       = "hairpin"
	// The rules of hairpinned packets, which chainHairpin sends there.
	chainHairpinned  = "hairpinned"
	chainHairpinWall = ChainHairpinWall
	chainForward     = ChainForward
	chainInput       = ChainInput
)

// Short names for the sets, in the rules that use them.
const (
	setPorts    = PortsSet
	setMappings = MappingsSet
	setPermits  = PermitsSet
	setHairpins = HairpinPermitsSet

	setTCPPorts    = TCPPortsSet
	setTCPMappings = TCPMappingsSet
	setTCPPermits  = TCPPermitsSet
	setTCPHairpins = TCPHairpinPermitsSet
)

// hairpinMark is the connection mark the prerouting chain gives a flow it
// hairpins to a mapping's owner, so that the hairpin chain, after source
// NAT, knows which first packets the filtering must judge: not those of
// static or port-mapping forwards, which anyone may reach. It is the
// connection's mark, not the packet's: the claim chain carries a
// candidate port in the packet mark of that same first packet.
const hairpinMark = 0x00004e4c // "NL"

// How values lie in set keys and data. A single value is as long as it is
// (a port: two bytes). In a concatenation every value starts on a 4-byte
// register, as nft loads them: a port is followed by two zero bytes. All
// values are in network byte order.
const (
	portLen = 2
	ip4Len  = 4
	regLen  = 4
	// endpointLen is an address . port concatenation.
	endpointLen = ip4Len + regLen
)

func encodePort(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

// encodeEndpoint encodes an address and port as a concatenation does.
func encodeEndpoint(ap netip.AddrPort) []byte {
	a := ap.Addr().As4()
	return append(a[:], byte(ap.Port()>>8), byte(ap.Port()), 0, 0)
}

// encodeAddrPort encodes the concatenation address . port of an address
// and a port that are not one endpoint (a remote and a public port).
func encodeAddrPort(a netip.Addr, p uint16) []byte { return encodeEndpoint(netip.AddrPortFrom(a, p)) }

func decodePort(b []byte) (uint16, error) {
	if len(b) != portLen {
		return 0, fmt.Errorf("a port is %d bytes, not %d", portLen, len(b))
	}
	return binary.BigEndian.Uint16(b), nil
}

// decodeEndpoint reads an address . port concatenation from the start of
// b, which must hold at least one.
func decodeEndpoint(b []byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:ip4Len])), binary.BigEndian.Uint16(b[ip4Len:]))
}

func wantLen(what string, b []byte, n int) error {
	if len(b) != n {
		return fmt.Errorf("%s is %d bytes, want %d", what, len(b), n)
	}
	return nil
}

// The element types below encode IPv4 addresses only (the NAT's table is
// IPv4): their methods panic on any other address.

// Owner is an element of the ports map (the private endpoint that owns a
// public UDP port) and of the port-mapping maps (the private endpoint a
// public port is forwarded to): public port -> private address . private
// port.
type Owner struct {
	Public  uint16
	Private netip.AddrPort
}

// Key is the element's key: the public port, two bytes.
func (o Owner) Key() []byte { return encodePort(o.Public) }

// Data is the element's data: the private address, then its port padded
// to four bytes.
func (o Owner) Data() []byte { return encodeEndpoint(o.Private) }

// Element is the element to add or delete; a timeout of zero is the
// set's own (none for an element added with its table).
func (o Owner) Element(timeout time.Duration) nftables.SetElement {
	return nftables.SetElement{Key: o.Key(), Val: o.Data(), Timeout: timeout}
}

func (o Owner) text() string {
	return fmt.Sprintf("%d : %v . %d", o.Public, o.Private.Addr(), o.Private.Port())
}

// ParseOwner reads an element of the ports map or a port-mapping map.
func ParseOwner(e nftables.SetElement) (Owner, error) {
	public, err := decodePort(e.Key)
	if err != nil {
		return Owner{}, fmt.Errorf("key: %w", err)
	}
	if err := wantLen("data", e.Val, endpointLen); err != nil {
		return Owner{}, err
	}
	return Owner{Public: public, Private: decodeEndpoint(e.Val)}, nil
}

// Mapping is an element of the mappings map: private endpoint [. remote
// address] -> public port. Remote is the zero Addr under
// endpoint-independent mapping, whose map is keyed by the private endpoint
// alone, and set under address-dependent mapping.
type Mapping struct {
	Private netip.AddrPort
	Remote  netip.Addr
	Public  uint16
}

// Key is the element's key: the private address, its port padded to four
// bytes, and the remote address if there is one.
func (m Mapping) Key() []byte {
	k := encodeEndpoint(m.Private)
	if m.Remote.IsValid() {
		r := m.Remote.As4()
		k = append(k, r[:]...)
	}
	return k
}

// Data is the element's data: the public port, two bytes.
func (m Mapping) Data() []byte { return encodePort(m.Public) }

// Element is the element to add or delete; a timeout of zero is the
// set's own.
func (m Mapping) Element(timeout time.Duration) nftables.SetElement {
	return nftables.SetElement{Key: m.Key(), Val: m.Data(), Timeout: timeout}
}

func (m Mapping) text() string {
	s := fmt.Sprintf("%v . %d", m.Private.Addr(), m.Private.Port())
	if m.Remote.IsValid() {
		s += " . " + m.Remote.String()
	}
	return fmt.Sprintf("%s : %d", s, m.Public)
}

// ParseMapping reads an element of the mappings map, of either layout.
func ParseMapping(e nftables.SetElement) (Mapping, error) {
	var m Mapping
	switch len(e.Key) {
	case endpointLen:
	case endpointLen + ip4Len:
		m.Remote = netip.AddrFrom4([4]byte(e.Key[endpointLen:]))
	default:
		return Mapping{}, fmt.Errorf("key is %d bytes, want %d or %d", len(e.Key), endpointLen, endpointLen+ip4Len)
	}
	m.Private = decodeEndpoint(e.Key)
	var err error
	if m.Public, err = decodePort(e.Val); err != nil {
		return Mapping{}, fmt.Errorf("data: %w", err)
	}
	return m, nil
}

// Permit is an element of the permits set: a remote address a mapping has
// sent to, and the mapping's public port.
type Permit struct {
	Remote netip.Addr
	Public uint16
}

// Key is the element's key: the remote address, then the public port
// padded to four bytes.
func (p Permit) Key() []byte { return encodeAddrPort(p.Remote, p.Public) }

// Element is the element to add or delete; a timeout of zero is the
// set's own.
func (p Permit) Element(timeout time.Duration) nftables.SetElement {
	return nftables.SetElement{Key: p.Key(), Timeout: timeout}
}

// ParsePermit reads an element of the permits set.
func ParsePermit(e nftables.SetElement) (Permit, error) {
	if err := wantLen("key", e.Key, endpointLen); err != nil {
		return Permit{}, err
	}
	ap := decodeEndpoint(e.Key)
	return Permit{Remote: ap.Addr(), Public: ap.Port()}, nil
}

// HairpinPermit is an element of the hairpin permits set: a public
// endpoint of the NAT itself that a mapping has sent to by hairpinning,
// and the mapping's public port.
type HairpinPermit struct {
	Remote netip.AddrPort
	Public uint16
}

// Key is the element's key: the remote address, its port padded to four
// bytes, then the public port padded to four bytes.
func (p HairpinPermit) Key() []byte {
	return append(encodeEndpoint(p.Remote), byte(p.Public>>8), byte(p.Public), 0, 0)
}

// Element is the element to add or delete; a timeout of zero is the
// set's own.
func (p HairpinPermit) Element(timeout time.Duration) nftables.SetElement {
	return nftables.SetElement{Key: p.Key(), Timeout: timeout}
}

// ParseHairpinPermit reads an element of the hairpin permits set.
func ParseHairpinPermit(e nftables.SetElement) (HairpinPermit, error) {
	if err := wantLen("key", e.Key, endpointLen+regLen); err != nil {
		return HairpinPermit{}, err
	}
	return HairpinPermit{Remote: decodeEndpoint(e.Key), Public: binary.BigEndian.Uint16(e.Key[endpointLen:])}, nil
}

// A LeaseEntry is one element a port-mapping lease puts in a NAT's maps.
type LeaseEntry struct {
	Set string
	// Optional entries go only where the set exists with their layout:
	// the mappings map of endpoint-independent mapping.
	Optional bool
	Element  nftables.SetElement
}

// Fits says whether the entry has the layout of set's elements.
func (e LeaseEntry) Fits(set *nftables.Set) bool {
	return set.KeyType.Bytes == uint32(len(e.Element.Key)) && set.DataType.Bytes == uint32(len(e.Element.Val))
}

// Lease returns the elements a port-mapping (NAT-PMP or PCP) lease of
// public to private puts in the NAT's maps, with the lease's lifetime: the
// forward map of its protocol, whose element's comment says by which
// protocol the host asked (by, "nat-pmp" or "pcp"); also the ports map of
// its protocol (UDP's or TCP's), so the NAT's own allocation leaves the
// port alone, and (where it has that layout) the protocol's mappings map
// of endpoint-independent mapping, so the host's own traffic out uses the
// port too. Renewing a lease is deleting these and adding
// them again: an element's timeout is set when it is added.
func Lease(proto string, public uint16, private netip.AddrPort, lifetime time.Duration, by string) ([]LeaseEntry, error) {
	set := PortMapSet(proto)
	if set == "" {
		return nil, fmt.Errorf("natrules: a lease of protocol %q: want tcp or udp", proto)
	}
	if !private.Addr().Is4() {
		return nil, fmt.Errorf("natrules: a lease to %v: want an IPv4 endpoint", private)
	}
	owner := Owner{Public: public, Private: private}.Element(lifetime)
	forward := owner
	forward.Comment = by
	entries := []LeaseEntry{{Set: set, Element: forward}}
	ports, mappings, _, _, _ := TransportSets(proto)
	entries = append(entries,
		LeaseEntry{Set: ports, Element: owner},
		LeaseEntry{Set: mappings, Optional: true, Element: Mapping{Private: private, Public: public}.Element(lifetime)})
	return entries, nil
}
