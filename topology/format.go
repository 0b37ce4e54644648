package topology

import (
	"reflect"
	"slices"
	"strings"

	"github.com/natlab/natlab/nat"
)

// The scenario file format as Go types. The parser reads a YAML tree by
// hand, to report every problem with its position; for the nodes, these
// types are the one description of the format that its lists of keys and
// values are derived from (see formatKeys), and that internal/schemagen
// turns into schema/natlab.schema.json and docs/reference.md, so a key
// added here is accepted, documented and in the schema at once. Steps are
// different: each kind's value type in package step is what the parser
// fills in, and the schema and reference are made from it; the value
// formats below (Duration, NodeRef, OKFail...) are what its fields' format
// tags name.
//
// How the generator reads them:
//   - a field's key is its yaml tag; its doc comment describes it;
//   - the schema tag holds JSON Schema keywords for the field: required,
//     const=WORD, minItems=N, uniqueItems, minProperties=N and so on; on
//     a blank field, keywords for the type itself; prefix marks a field
//     that stands for every key starting with its key;
//   - the default tag says, for people, what a missing key means;
//   - a type with a Values method takes one of those words;
//   - a type with a Variants method takes the form of one of them;
//   - the other named types are the value formats of values.go in
//     internal/schemagen: names, addresses, durations, ports;
//   - a field whose type has a KeyFields method stands for the keys it
//     returns, each with its format, default and doc: those of a
//     registry, NATKnobKeys for the NAT knobs of NATKnobs (knobs.go),
//     LinkConditionKeys for the link conditions of LinkConditions
//     (link.go).

//go:generate go run ../internal/schemagen -root ..

// File is a scenario file: one YAML mapping describing a lab (its internet,
// the NATs on it or behind each other, the hosts behind them and the
// servers on the internet) and, optionally, the script natlab runs on it.
type File struct {
	// The lab's name: its network namespaces are natlab-NAME-NODE.
	Name LabName `yaml:"name" default:"the file name without its extension"`
	// One line of text, shown in lab listings.
	Description Line `yaml:"description"`
	// The internet's IPv4 prefix, which every node on the internet has an
	// address on: /30 or larger, outside the loopback, multicast and other
	// reserved ranges.
	Internet IPv4Prefix `yaml:"internet" default:"203.0.113.0/24"`
	// An IPv6 prefix, /32 to /48, that makes the lab dual stack: every
	// segment gets a /64 of it, the internet the first. IPv6 is not
	// translated: a nat routes it and filters what comes in with its
	// firewall6. The keys ending in 6 need it.
	Internet6 IPv6Prefix `yaml:"internet6" default:"none: the lab is IPv4 only"`
	// The lab's machines by name, in the order to build them; at most
	// 5000, and at most 1023 on one segment (the internet, or one nat's
	// LAN: a Linux bridge's ports). A name is 1 to 32 characters of a-z, 0-9 and -, starting and ending
	// with a letter or digit, and not internet. Addresses and LANs left
	// out are allocated in this order, lowest free first, once every
	// written one is reserved.
	Nodes map[NodeName]NodeEntry `yaml:"nodes" schema:"required,minProperties=1,maxProperties=5000"`
	// The script natlab run carries out on the lab, in order, each step
	// checked against what it expects.
	Steps []StepEntry `yaml:"steps"`
	// Keys starting with x- are ignored whatever they hold: a place for
	// anchors that the rest of the file refers to with aliases and merge
	// keys (x-home: &home {kind: nat}, then nat-a: {<<: *home}), as in
	// Docker Compose files.
	Extensions any `yaml:"x-" schema:"prefix"`
}

// NodeEntry is one machine of the lab; its kind says which keys it takes.
type NodeEntry struct{}

// Variants lists the forms a node takes.
func (NodeEntry) Variants() []any { return []any{ServerNode{}, NATNode{}, HostNode{}} }

// ServerNode is a machine on the internet running services.
type ServerNode struct {
	// What the node is.
	Kind NodeKind `yaml:"kind" schema:"required,const=server"`
	// The server's addresses on the internet, first one primary. A STUN
	// server needs two for RFC 5780 NAT behaviour discovery.
	Addresses []IPv4Addr `yaml:"addresses" schema:"minItems=1" default:"two free addresses with stun, else one"`
	// The server's IPv6 addresses on the internet's /64; needs internet6.
	Addresses6 []IPv6Addr `yaml:"addresses6" schema:"minItems=1" default:"as many as it has IPv4 addresses"`
	// The programs the server runs, started with the lab: stun (UDP 3478
	// and 3479, with the RFC 5780 attributes, and Binding over TCP on the
	// same ports), turn (3478, UDP and TCP),
	// rendezvous (HTTP 7000), tunnel (a reverse-tunnel relay, control port
	// 4443) and derp (Tailscale's relay, HTTP 80).
	Services []ServiceName `yaml:"services" schema:"uniqueItems" default:"none"`
	// The conditions of the server's link to the internet.
	Link LinkEntry `yaml:"link" default:"a perfect wire"`
}

// NATNode is a router that translates between its LAN and its uplink: the
// internet, or the LAN of the nat it is behind (as carrier-grade NAT is).
// Its type, or the RFC 4787 knobs beneath it, say how it translates:
// UDP and TCP alike, as RFC 5382 asks of TCP what RFC 4787 asks of UDP
// (each protocol has its own mappings; ICMP echo is left to conntrack).
type NATNode struct {
	// What the node is.
	Kind NodeKind `yaml:"kind" schema:"required,const=nat"`
	// The nat whose LAN this nat's uplink is on.
	Behind NodeRef `yaml:"behind" default:"internet"`
	// The classic name of the nat's behaviour, a shorthand for a mapping
	// and a filtering; mapping: or filtering: written beside it must agree
	// with it. one-to-one is 1:1 NAT, as a cloud VM's public address: the
	// one host behind the nat owns its public address, every port,
	// inbound from anyone, ports kept; it takes no ports, port-range,
	// timeout, forward or port-mapping.
	Type NATType `yaml:"type" default:"port-restricted-cone"`
	// The RFC 4787 knobs, one key each: the NATKnobs of knobs.go stand
	// here (mapping, filtering, ports, port-range, hairpin, timeout).
	Knobs NATKnobKeys
	// How hosts behind the nat can ask it for a mapping: nat-pmp answers
	// NAT-PMP (RFC 6886) on its LAN, for portmap steps, pcp the Port
	// Control Protocol (RFC 6887) on the same port, and upnp is UPnP's
	// Internet Gateway Device (SSDP, WANIPConnection:1); a list gives
	// several.
	PortMapping PortMapping `yaml:"port-mapping" default:"none"`
	// The nat's address on its uplink, or a list of them: a pool, from
	// which each mapping takes one as pooling: says (RFC 4787 section
	// 4.1). Port forwards are on the first. Public ports are unique
	// across the pool: a port belongs to one mapping, on one address.
	Public PublicAddrs `yaml:"public" default:"the lowest free address of its uplink"`
	// How a mapping picks its public address from a pool: paired gives
	// every mapping of one host the same address (RFC 4787 REQ-2
	// recommends it), arbitrary lets each of a host's private endpoints
	// take any. Only with several public addresses.
	Pooling Pooling `yaml:"pooling" default:"paired, with several public addresses"`
	// Port block allocation, as a carrier-grade nat does it (RFC 6888):
	// each node behind the nat, a subscriber, holds blocks of consecutive
	// public ports from the start (assigned in the order of the
	// subscribers' addresses, as RFC 7422 describes), and its mappings
	// take ports of its own blocks only; when its quota is used a new
	// flow is refused (dropped, and answered host unreachable unless
	// exhausted: drop), and a freed port rests reuse-delay before another
	// mapping takes it. The size of a block, or a map. Ports are random
	// unless ports: says sequential; not with one-to-one, a pool or
	// port-mapping.
	PortBlock PortBlock `yaml:"port-block" default:"none"`
	// The nat's LAN. With host bits set (192.168.1.254/24) the address is
	// the nat's own on it; otherwise the nat takes the first.
	LAN IPv4Prefix `yaml:"lan" default:"the first free of 192.168.1.0/24 to 192.168.255.0/24"`
	// Static port forwards from the nat's public address to nodes behind
	// it.
	Forward []PortForward `yaml:"forward"`
	// The nat's IPv6 address on its uplink's /64; needs internet6.
	Public6 IPv6Addr `yaml:"public6" default:"the lowest free address of its uplink's /64"`
	// The LAN's /64, inside internet6; the nat is ::1 on it. Needs
	// internet6.
	LAN6 IPv6Prefix `yaml:"lan6" default:"the next free /64 of internet6"`
	// The filtering of the nat's stateful IPv6 firewall, in the words
	// filtering takes, or off. Needs internet6.
	Firewall6 Firewall6 `yaml:"firewall6" default:"address-and-port-dependent"`
	// The conditions of the nat's uplink: its link to the internet, or to
	// the LAN of the nat it is behind.
	Link LinkEntry `yaml:"link" default:"a perfect wire"`
}

// HostNode is an end device: a laptop, a phone, a game console.
type HostNode struct {
	// What the node is.
	Kind NodeKind `yaml:"kind" schema:"required,const=host"`
	// The nat whose LAN the host is on, or internet.
	Behind NodeRef `yaml:"behind" default:"internet"`
	// The host's address on its uplink: the nat's LAN, or the internet.
	Address IPv4Addr `yaml:"address" default:"the lowest free address of its uplink"`
	// The host's IPv6 address on its uplink's /64; needs internet6.
	Address6 IPv6Addr `yaml:"address6" default:"the lowest free address of its uplink's /64"`
	// The host's own firewall, in its own namespace and whatever nat it
	// is behind: stateful lets in only what the host asked for, as ufw
	// on a laptop does (replies to the flows it started, which filters
	// address-and-port-dependent, the ICMP errors about them and, with
	// IPv6, neighbour discovery), so that a host on the internet is
	// walled as one behind a port-restricted cone nat, and one behind a
	// nat is walled from its LAN too; none lets everything in.
	Firewall HostFirewall `yaml:"firewall" default:"none"`
	// The conditions of the host's link to its nat's LAN, or to the
	// internet.
	Link LinkEntry `yaml:"link" default:"a perfect wire"`
}

// LinkEntry is the conditions of a node's uplink, its link toward what it
// is behind or the internet, as netem and Mininet's TCLink have them: each
// applies in each direction, so delay: 30ms adds 60 ms to a round trip,
// unless up: or down: say otherwise for one direction.
type LinkEntry struct {
	// The conditions, one key each: the LinkConditions of link.go stand
	// here (delay, jitter, loss, duplicate, reorder, rate, mtu).
	Conditions LinkConditionKeys
	// Conditions of the up direction only, from the node toward what it
	// is behind, over those given beside up:; an asymmetric link, such
	// as ADSL's or a cellular one.
	Up LinkDirection `yaml:"up" default:"the conditions beside it"`
	// Conditions of the down direction only, toward the node, over those
	// given beside down:.
	Down LinkDirection `yaml:"down" default:"the conditions beside it"`
}

// LinkDirection is the conditions of one direction of a link: those of
// link: but the MTU, which is the whole link's.
type LinkDirection struct {
	// The conditions of a direction, one key each: the LinkConditions of
	// link.go but mtu.
	Conditions LinkDirectionKeys
}

// PortForward is a static port forward: what arrives at a port of the
// nat's public address goes to a node behind it. Each protocol and port is
// forwarded once.
type PortForward struct {
	// The protocol forwarded.
	Proto ProtoName `yaml:"proto" schema:"required"`
	// The public port forwarded.
	Port Port `yaml:"port" schema:"required"`
	// Where to: NODE or NODE:PORT for a node right behind the nat, or an
	// IPv4 address on its LAN, with or without :PORT. The port is the
	// public one unless given.
	To ForwardTarget `yaml:"to" schema:"required"`
}

// StepEntry is one step of the script: a mapping with one key, the kind of
// step, whose value holds the step's fields (a wait takes a duration).
// Every step but wait may have a name, a one-line label for reports, made
// from the step when left out (such as "punch alice bob"). A server left
// out is the first in the file that runs the service named.
type StepEntry struct {
	// Its keys are the kinds of package step: internal/schemagen makes
	// its schema from step.All().
}

// STUNExpect is what a stun step expects.
type STUNExpect string

// Variants lists the forms a stun step's expect takes.
func (STUNExpect) Variants() []any { return []any{STUNOutcome(""), ClassificationExpect{}} }

// ClassificationExpect is the NAT behaviour RFC 5780 discovery must report;
// only the keys given are checked, and at least one must be. The STUN
// server needs two addresses.
type ClassificationExpect struct {
	_ struct{} `schema:"minProperties=1"`
	// The classic name; mapping and filtering beside it must agree.
	Type ClassicType `yaml:"type"`
	// The mapping behaviour.
	Mapping Dependence `yaml:"mapping"`
	// The filtering behaviour.
	Filtering Dependence `yaml:"filtering"`
	// The port allocation.
	Ports PortAllocation `yaml:"ports"`
	// Whether the nat hairpins.
	Hairpin bool `yaml:"hairpin"`
	// How the nat pools its public addresses, as one host sees it:
	// arbitrary when the host's mappings show more than one address,
	// paired when they share one (as with one address).
	Pooling Pooling `yaml:"pooling"`
}

// TableExpect is how many entries a nat's translation table must hold;
// at least one of the keys must be given.
type TableExpect struct {
	_ struct{} `schema:"minProperties=1"`
	// The number of mappings.
	Mappings Count `yaml:"mappings"`
	// The number of flows (conntrack entries).
	Flows Count `yaml:"flows"`
}

// The value formats. Their schemas are in internal/schemagen/values.go.
type (
	// LabName is a lab's name: 1 to 32 characters of a-z, 0-9 and -,
	// starting and ending with a letter or digit.
	LabName string
	// NodeName is a node's name, as a lab's name is; internet is not one.
	NodeName string
	// NodeRef is the name of a node of the file (or internet, where a
	// field takes the internet segment).
	NodeRef string
	// HostPair is two different hosts, such as [alice, bob].
	HostPair [2]NodeRef
	// Line is one line of text.
	Line string
	// StepName is a one-line label for reports, at most 80 characters.
	StepName string
	// IPv4Addr is an IPv4 address such as 203.0.113.10.
	IPv4Addr string
	// IPv4Prefix is an IPv4 prefix such as 192.168.1.0/24.
	IPv4Prefix string
	// IPv6Addr is an IPv6 address such as 2001:db8::10.
	IPv6Addr string
	// IPv6Prefix is an IPv6 prefix such as 2001:db8::/32.
	IPv6Prefix string
	// Duration is a Go duration (500ms, 30s, 1m30s, 2h) or a whole number
	// of seconds.
	Duration string
	// Port is a port number, 1 to 65535.
	Port int
	// PortRange is FIRST-LAST, with 1 <= FIRST <= LAST <= 65535, such as
	// 49152-65535.
	PortRange string
	// Count is a number of table entries, 0 to 65535.
	Count int
	// ProbeCount is a number of messages a send step sends, 1 to 10000.
	ProbeCount int
	// Command is a shell command run with sh -c, such as "ping -c1
	// 203.0.113.10", or a program and its arguments, such as [ping, -c1,
	// 203.0.113.10].
	Command any
	// ForwardTarget is NODE, NODE:PORT, an IPv4 address or ADDRESS:PORT.
	ForwardTarget string
	// SendTarget is a node, ADDRESS:PORT, or with family: ipv6
	// [ADDRESS]:PORT.
	SendTarget string
	// SeenAs is a node, an address, ADDRESS:PORT, or with family: ipv6
	// [ADDRESS]:PORT.
	SeenAs string
	// LinkDuration is a delay: a number with its unit, us, ms or s (30ms,
	// 1.5s, 250us), or 0.
	LinkDuration string
	// Percent is a share of packets, written with its sign: 1%, 0.1%. The
	// sign is required, so that 0.01 is not mistaken for 1%.
	Percent string
	// Rate is a number of bits per second with its unit, bit, kbit, mbit
	// or gbit, as tc writes them and counts them (in powers of 1000):
	// 500kbit, 10mbit, 1gbit.
	Rate string
	// MTU is the largest packet a link carries, in bytes: 576 (the least
	// an IPv4 host must take) to 9000 (a jumbo frame).
	MTU int
)

// The values that are one of a fixed set of words. Each lists its words
// from the parser's own tables.
type (
	// NodeKind is what a node is.
	NodeKind string
	// ServiceName is a program a server runs.
	ServiceName string
	// NATType is a classic NAT name or one-to-one; restricted-cone is
	// accepted for address-restricted-cone.
	NATType string
	// ClassicType is a classic NAT name, what RFC 5780 discovery can
	// name; restricted-cone is accepted for address-restricted-cone.
	ClassicType string
	// Dependence is an RFC 4787 mapping or filtering behaviour: whether
	// the nat looks at nothing of the remote endpoint, its address, or
	// its address and port.
	Dependence string
	// PortAllocation is how a nat picks public ports: preserve keeps the
	// private port when it is free, sequential hands out consecutive
	// ones, random picks any.
	PortAllocation string
	// Timeout is how long a nat's idle mappings live: one duration, for
	// UDP's, or a map of them by protocol.
	Timeout struct{}
	// Refresh is which packets keep a nat's mapping alive: both
	// directions, or only those from inside.
	Refresh string
	// PortMapping is how hosts behind a nat can ask it for a mapping:
	// a protocol or none, or a list of protocols.
	PortMapping struct{}
	// PublicAddrs is a nat's public address, or a list of them.
	PublicAddrs struct{}
	// Pooling is how a mapping picks its address from a nat's pool.
	Pooling string
	// PortBlock is a nat's port block allocation: the size of a block,
	// or a map.
	PortBlock struct{}
	// BlockSize is a number of ports in a block, 1 to 32768.
	BlockSize int
	// BlockCount is a number of port blocks, 1 to 65535.
	BlockCount int
	// PortQuota is a number of ports a subscriber may hold, 1 to 1024.
	PortQuota int
	// Exhausted is what a flow gets that a subscriber's quota refuses.
	Exhausted string
	// PortMappingName is a port-mapping protocol, or none.
	PortMappingName string
	// PortMappingProtocol is a port-mapping protocol.
	PortMappingProtocol string
	// Firewall6 is the filtering of a nat's IPv6 firewall, or off.
	Firewall6 string
	// HostFirewall is a host's own firewall: stateful or none.
	HostFirewall string
	// ProtoName is a transport protocol.
	ProtoName string
	// Family is an address family.
	Family string
	// OKFail is whether a step must succeed or fail.
	OKFail string
	// STUNOutcome is what a stun step's query must end in: ok or fail;
	// with servers, whether they all saw the same public endpoint.
	STUNOutcome string
	// UpgradeOutcome is the path an upgrade step must end up on.
	UpgradeOutcome string
	// ICEOutcome is the kind of candidate pair ICE must select, or fail.
	ICEOutcome string
	// SendOutcome is whether a message must arrive.
	SendOutcome string
)

// Values lists the node kinds.
func (NodeKind) Values() []string { return words(Kinds) }

// Values lists the services.
func (ServiceName) Values() []string { return words(Services) }

// Values lists the classic names, one-to-one and the aliases.
func (NATType) Values() []string { return nat.TypeNames() }

// Values lists the classic names and their aliases.
func (ClassicType) Values() []string {
	return slices.DeleteFunc(nat.TypeNames(), func(s string) bool { return s == string(nat.OneToOne) })
}

// Values lists the three behaviours.
func (Dependence) Values() []string { return words(nat.Dependences) }

// Values lists the port allocations.
func (PortAllocation) Values() []string { return words(nat.PortAllocations) }

// Variants lists timeout's forms.
func (Timeout) Variants() []any { return []any{Duration(""), TimeoutMap{}} }

// TimeoutMap is a nat's timeouts by protocol; those left out keep their
// defaults.
type TimeoutMap struct {
	_ struct{} `schema:"minProperties=1"`
	// UDP's mappings, in natlab's maps (RFC 4787 REQ-5: at least 2m).
	UDP Duration `yaml:"udp" default:"2m"`
	// A TCP connection established (RFC 5382 REQ-5: at least 2h4m), in
	// whole seconds.
	TCPEstablished Duration `yaml:"tcp-established" default:"2h4m"`
	// A TCP connection opening or closing (RFC 5382 REQ-5: at least 4m),
	// in whole seconds.
	TCPTransitory Duration `yaml:"tcp-transitory" default:"4m"`
	// An ICMP query such as an echo (RFC 5508 REQ-1: at least 60s), in
	// whole seconds.
	ICMP Duration `yaml:"icmp" default:"1m"`
}

// Values lists the refresh directions.
func (Refresh) Values() []string { return words(nat.Refreshes) }

// Variants lists public's forms.
func (PublicAddrs) Variants() []any { return []any{IPv4Addr(""), []IPv4Addr(nil)} }

// Values lists the poolings.
func (Pooling) Values() []string { return words(nat.Poolings) }

// Variants lists port-block's forms.
func (PortBlock) Variants() []any { return []any{BlockSize(0), PortBlockMap{}} }

// PortBlockMap is a nat's port block allocation in full.
type PortBlockMap struct {
	// The number of ports in a block; it divides the size of the nat's
	// port-range (64512 ports by default: 128 does).
	Size BlockSize `yaml:"size" schema:"required"`
	// How many blocks each subscriber holds.
	Blocks BlockCount `yaml:"blocks" default:"1"`
	// How many ports a subscriber's mappings may hold at once (RFC 6888
	// REQ-3), at most its blocks' ports.
	Quota PortQuota `yaml:"quota" default:"all of its blocks' ports"`
	// What a new flow gets when its subscriber's quota is used: the
	// packet is dropped (RFC 6888 REQ-8), and with icmp answered with an
	// ICMP host unreachable, as REQ-8 recommends.
	Exhausted Exhausted `yaml:"exhausted" default:"icmp"`
	// How long a port whose mapping expired rests before another mapping
	// takes it (RFC 6888 REQ-8: 120 seconds), 0 to 24h.
	ReuseDelay Duration `yaml:"reuse-delay" default:"2m"`
}

// Values lists what exhausted: takes.
func (Exhausted) Values() []string { return exhaustedWords }

// Variants lists port-mapping's forms.
func (PortMapping) Variants() []any { return []any{PortMappingName(""), []PortMappingProtocol(nil)} }

// Values lists the protocols and none.
func (PortMappingName) Values() []string { return append(slices.Clip(PortMappingProtocols), "none") }

// Values lists the protocols.
func (PortMappingProtocol) Values() []string { return PortMappingProtocols }

// Values lists the firewall's filterings.
func (Firewall6) Values() []string { return append(words(nat.Dependences), firewall6Off) }

// Values lists a host's firewalls.
func (HostFirewall) Values() []string { return []string{string(FirewallStateful), firewallNone} }

// Values lists the protocols.
func (ProtoName) Values() []string { return words(Protocols) }

// Values lists the families.
func (Family) Values() []string { return []string{FamilyIPv4, FamilyIPv6} }

// Values lists ok and fail.
func (OKFail) Values() []string { return []string{"ok", "fail"} }

// Values lists a stun step's outcomes.
func (STUNOutcome) Values() []string { return []string{"ok", "fail", "same", "different"} }

// Values lists an upgrade step's outcomes.
func (UpgradeOutcome) Values() []string { return []string{"direct", "relay"} }

// Values lists an ice step's outcomes.
func (ICEOutcome) Values() []string { return []string{"host", "srflx", "prflx", "relay", "fail"} }

// Values lists a send step's outcomes.
func (SendOutcome) Values() []string { return []string{"delivered", "dropped"} }

// firewall6Off turns a nat's IPv6 firewall off.
const firewall6Off = "off"

func words[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// formatField is one key of a format type.
type formatField struct {
	key      string
	field    reflect.StructField
	required bool
}

// formatFields lists the keys of format struct t in the order messages
// list them, which is the order of its fields, leaving out key prefixes
// such as File's x-.
func formatFields(t reflect.Type) []formatField {
	var fields []formatField
	for i := range t.NumField() {
		f := t.Field(i)
		opts := strings.Split(f.Tag.Get("schema"), ",")
		if kfs, ok := RegistryKeys(f); ok {
			for _, kf := range kfs {
				fields = append(fields, formatField{key: kf.Tag.Get("yaml"), field: kf})
			}
			continue
		}
		if f.Name == "_" || f.Tag.Get("yaml") == "" || slices.Contains(opts, "prefix") {
			continue
		}
		fields = append(fields, formatField{key: f.Tag.Get("yaml"), field: f, required: slices.Contains(opts, "required")})
	}
	return fields
}

// RegistryKeys returns the keys that field f of a format struct stands
// for when they are kept in a registry rather than written as fields (its
// type has a KeyFields method, as NATKnobKeys has), and whether they are.
func RegistryKeys(f reflect.StructField) ([]reflect.StructField, bool) {
	if r, ok := reflect.Zero(f.Type).Interface().(interface{ KeyFields() []reflect.StructField }); ok {
		return r.KeyFields(), true
	}
	return nil, false
}

// formatKeys lists the keys of format struct T, as formatFields orders them.
func formatKeys[T any]() []string {
	return keysOf(formatFields(reflect.TypeFor[T]()))
}

func keysOf(fields []formatField) []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

// enumValues returns the words a format type with a Values method takes,
// or, for a type with Variants, those of its variant that has them.
func enumValues(t reflect.Type) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch v := reflect.Zero(t).Interface().(type) {
	case interface{ Values() []string }:
		return v.Values()
	case interface{ Variants() []any }:
		for _, variant := range v.Variants() {
			if ws := enumValues(reflect.TypeOf(variant)); ws != nil {
				return ws
			}
		}
	}
	return nil
}

// FormatKeys lists the keys of format struct t, in the order of its
// fields, and those of them it requires. A field without a yaml tag is
// not a key: a step's value may hold what it works out from its keys.
func FormatKeys(t reflect.Type) (keys, required []string) {
	for _, f := range formatFields(t) {
		keys = append(keys, f.key)
		if f.required {
			required = append(required, f.key)
		}
	}
	return keys, required
}

// FieldFormat is the format of a field of a step's value: the format
// type its format tag names (format:"Duration" for a time.Duration), or
// its own type.
func FieldFormat(f reflect.StructField) reflect.Type {
	if name := f.Tag.Get("format"); name != "" {
		if t, ok := formatTypes[name]; ok {
			// A list's format tag names the format of its items.
			if f.Type.Kind() == reflect.Slice && t.Kind() != reflect.Slice && t.Kind() != reflect.Interface {
				return reflect.SliceOf(t)
			}
			return t
		}
		panic("topology: field " + f.Name + " names format " + name + ", which is no format type of format.go")
	}
	return f.Type
}

// EnumValues returns the words a format type with a Values method takes,
// or, for a type with Variants, those of its variant that has them.
func EnumValues(t reflect.Type) []string { return enumValues(t) }

// formatTypes are the value formats a step's field may name in its
// format tag.
var formatTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, t := range []reflect.Type{
		reflect.TypeFor[NodeRef](), reflect.TypeFor[HostPair](), reflect.TypeFor[StepName](),
		reflect.TypeFor[Duration](), reflect.TypeFor[Port](), reflect.TypeFor[Count](), reflect.TypeFor[ProbeCount](),
		reflect.TypeFor[Command](), reflect.TypeFor[SendTarget](), reflect.TypeFor[SeenAs](),
		reflect.TypeFor[ProtoName](), reflect.TypeFor[Family](), reflect.TypeFor[OKFail](),
		reflect.TypeFor[STUNExpect](), reflect.TypeFor[UpgradeOutcome](), reflect.TypeFor[ICEOutcome](),
		reflect.TypeFor[SendOutcome](), reflect.TypeFor[TableExpect](), reflect.TypeFor[IPv4Addr](),
		reflect.TypeFor[PortMappingProtocol](),
		reflect.TypeFor[LinkDuration](), reflect.TypeFor[Percent](), reflect.TypeFor[Rate](), reflect.TypeFor[MTU](),
	} {
		m[t.Name()] = t
	}
	return m
}()

// LinkDownValue is what a link step's down: takes: true (the link goes
// down and drops everything), false (it comes up again with the
// conditions it had), or the conditions of the down direction only, as a
// node's link: takes them.
type LinkDownValue struct{}

// Variants lists its forms.
func (LinkDownValue) Variants() []any { return []any{false, LinkDirection{}} }
