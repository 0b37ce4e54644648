package topology

import (
	"reflect"
	"slices"
	"strings"

	"github.com/natlab/natlab/nat"
)

// The scenario file format as Go types. Nothing is decoded into them: the
// parser reads a YAML tree by hand, to report every problem with its
// position. They are the one description of the format that the parser's
// lists of keys, outcomes and values are derived from (see formatKeys),
// and that internal/schemagen turns into schema/natlab.schema.json and
// docs/reference.md; so a key added here is accepted, documented and in
// the schema at once, and format_test.go checks that the parser reads
// every key these types declare.
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
//   - a field tagged schema:"knobs" stands for the NAT knobs of
//     NATKnobs (knobs.go), each a key with its format, default and doc.

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
	// and 3479, with the RFC 5780 attributes), turn (3478, UDP and TCP),
	// rendezvous (HTTP 7000), tunnel (a reverse-tunnel relay, control port
	// 4443) and derp (Tailscale's relay, HTTP 80).
	Services []ServiceName `yaml:"services" schema:"uniqueItems" default:"none"`
}

// NATNode is a router that translates between its LAN and its uplink: the
// internet, or the LAN of the nat it is behind (as carrier-grade NAT is).
// Its type, or the RFC 4787 knobs beneath it, say how it translates.
type NATNode struct {
	// What the node is.
	Kind NodeKind `yaml:"kind" schema:"required,const=nat"`
	// The nat whose LAN this nat's uplink is on.
	Behind NodeRef `yaml:"behind" default:"internet"`
	// The classic name of the nat's behaviour, a shorthand for a mapping
	// and a filtering; mapping: or filtering: written beside it must agree
	// with it.
	Type NATType `yaml:"type" default:"port-restricted-cone"`
	// The RFC 4787 knobs, one key each: the NATKnobs of knobs.go stand
	// here (mapping, filtering, ports, port-range, hairpin, timeout).
	Knobs NATKnobKeys `schema:"knobs"`
	// How hosts behind the nat can ask it for a mapping: nat-pmp answers
	// NAT-PMP (RFC 6886) on its LAN, for portmap steps.
	PortMapping PortMapping `yaml:"port-mapping" default:"none"`
	// The nat's address on its uplink.
	Public IPv4Addr `yaml:"public" default:"the lowest free address of its uplink"`
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
	_ struct{} `schema:"minProperties=1,maxProperties=1"`
	// Ask a STUN server for the node's public endpoint; with an expected
	// classification, run RFC 5780 NAT behaviour discovery; with servers,
	// compare what two or more see of one socket.
	STUN *STUNStep `yaml:"stun"`
	// Hole punching between two hosts: STUN, rendezvous, simultaneous
	// sends, answers to the observed source.
	Punch *PunchStep `yaml:"punch"`
	// Connect two hosts through a TURN server: allocation, permission and
	// data both ways.
	Relay *RelayStep `yaml:"relay"`
	// Connect two hosts through a relay at once (DERP if a server runs
	// derp, else TURN over TCP) and move them to a direct path when a
	// punch succeeds, as Tailscale does.
	Upgrade *UpgradeStep `yaml:"upgrade"`
	// Connect two hosts with ICE (RFC 8445) using every STUN and TURN
	// server of the lab.
	ICE *ICEStep `yaml:"ice"`
	// Send one UDP message (or open one TCP connection) from a node to a
	// node or an address.
	Send *SendStep `yaml:"send"`
	// Have a host ask the nat it is behind for a port mapping with NAT-PMP
	// (RFC 6886); the nat needs port-mapping: nat-pmp.
	Portmap *PortmapStep `yaml:"portmap"`
	// Have a host expose a local TCP port on a public port of a tunnel
	// server, ngrok style, for the rest of the run.
	Tunnel *TunnelStep `yaml:"tunnel"`
	// Read a nat's translation table.
	Table *TableStep `yaml:"table"`
	// Pause the script, for instance to let mappings expire: 1ms to 10m.
	Wait Duration `yaml:"wait"`
	// Run a command on a node.
	Exec *ExecStep `yaml:"exec"`
}

// STUNStep is what a stun step takes.
type STUNStep struct {
	// The node that asks: a host or a server.
	From NodeRef `yaml:"from" schema:"required"`
	// The STUN server to ask.
	Server NodeRef `yaml:"server" default:"the first server with stun"`
	// Two or more STUN servers to ask from one socket instead of server,
	// to compare the public endpoints they see.
	Servers []NodeRef `yaml:"servers" schema:"minItems=2,uniqueItems"`
	// The local UDP port to send from.
	Port Port `yaml:"port" default:"any"`
	// ok or fail; with servers, same or different; or the classification
	// discovery must report, from a server with two addresses.
	Expect STUNExpect `yaml:"expect" default:"ok"`
	// A label for reports.
	Name StepName `yaml:"name" default:"stun from FROM"`
}

// PunchStep is what a punch step takes.
type PunchStep struct {
	// The two hosts.
	Between HostPair `yaml:"between" schema:"required"`
	// The address family to punch over; ipv6 needs internet6.
	Family Family `yaml:"family" default:"ipv4"`
	// The STUN server each host learns its public endpoint from.
	Server NodeRef `yaml:"server" default:"the first server with stun"`
	// The server that introduces the hosts to each other.
	Rendezvous NodeRef `yaml:"rendezvous" default:"the first server with rendezvous; if none, natlab passes the endpoints on"`
	// How long the punch may take, 100ms to 5m.
	Timeout Duration `yaml:"timeout" default:"5s"`
	// Predict the ports of a nat that allocates them sequentially.
	Predict bool `yaml:"predict" default:"false"`
	// Explain the outcome from what the nats on the way did.
	Explain bool `yaml:"explain" default:"false"`
	// Keep the punched path open for the rest of the run by sending over
	// it this often, 100ms to 10m.
	Keepalive Duration `yaml:"keepalive" default:"none: the nats forget the path after their timeout"`
	// Whether the hosts must end up talking directly.
	Expect OKFail `yaml:"expect" default:"ok"`
	// A label for reports.
	Name StepName `yaml:"name" default:"punch A B"`
}

// RelayStep is what a relay step takes.
type RelayStep struct {
	// The two hosts.
	Between HostPair `yaml:"between" schema:"required"`
	// The TURN server.
	Server NodeRef `yaml:"server" default:"the first server with turn"`
	// How long connecting may take, 100ms to 5m.
	Timeout Duration `yaml:"timeout" default:"5s"`
	// Whether the relayed data must get through.
	Expect OKFail `yaml:"expect" default:"ok"`
	// A label for reports.
	Name StepName `yaml:"name" default:"relay A B"`
}

// UpgradeStep is what an upgrade step takes.
type UpgradeStep struct {
	// The two hosts.
	Between HostPair `yaml:"between" schema:"required"`
	// The relay to start on: a server with derp or turn. The direct path
	// is found with the first server with stun.
	Server NodeRef `yaml:"server" default:"the first server with derp, else with turn"`
	// How long the upgrade may take, 100ms to 5m.
	Timeout Duration `yaml:"timeout" default:"10s"`
	// The path the hosts must end up on.
	Expect UpgradeOutcome `yaml:"expect" default:"direct"`
	// A label for reports.
	Name StepName `yaml:"name" default:"upgrade A B"`
}

// ICEStep is what an ice step takes.
type ICEStep struct {
	// The two hosts.
	Between HostPair `yaml:"between" schema:"required"`
	// How long connecting may take, 100ms to 5m.
	Timeout Duration `yaml:"timeout" default:"10s"`
	// The kind of candidate pair ICE must select, or fail.
	Expect ICEOutcome `yaml:"expect" default:"any successful connection"`
	// A label for reports.
	Name StepName `yaml:"name" default:"ice A B"`
}

// SendStep is what a send step takes.
type SendStep struct {
	// The sender: a host or a server.
	From NodeRef `yaml:"from" schema:"required"`
	// The receiver: a host, a server, or an address and port such as a
	// nat's public address and a forwarded port.
	To SendTarget `yaml:"to" schema:"required"`
	// The address family to send over; ipv6 needs internet6.
	Family Family `yaml:"family" default:"ipv4"`
	// udp sends one message; tcp opens a connection.
	Proto ProtoName `yaml:"proto" default:"udp"`
	// The port the receiver listens on, when to names a node.
	Port Port `yaml:"port" default:"5000"`
	// The source the receiver must see the message come from: a node
	// (its address, any port), an address (any port), or an address and
	// port.
	SeenAs SeenAs `yaml:"seen-as" default:"not checked"`
	// Whether the message must arrive.
	Expect SendOutcome `yaml:"expect" default:"delivered"`
	// A label for reports.
	Name StepName `yaml:"name" default:"send FROM -> TO"`
}

// PortmapStep is what a portmap step takes.
type PortmapStep struct {
	// The host that asks: right behind a nat with port-mapping: nat-pmp.
	From NodeRef `yaml:"from" schema:"required"`
	// The protocol to map.
	Proto ProtoName `yaml:"proto" default:"tcp"`
	// The host's port to map.
	Port Port `yaml:"port" schema:"required"`
	// The public port to ask for.
	PublicPort Port `yaml:"public-port" default:"port"`
	// How long to ask the mapping to last, 1s to 24h.
	Lifetime Duration `yaml:"lifetime" default:"1h"`
	// Whether the nat must grant the mapping.
	Expect OKFail `yaml:"expect" default:"ok"`
	// A label for reports.
	Name StepName `yaml:"name" default:"portmap FROM PROTO PORT"`
}

// TunnelStep is what a tunnel step takes.
type TunnelStep struct {
	// The host that exposes its port.
	From NodeRef `yaml:"from" schema:"required"`
	// The tunnel server.
	Server NodeRef `yaml:"server" default:"the first server with tunnel"`
	// The host's local TCP port to expose.
	Port Port `yaml:"port" schema:"required"`
	// The public port to ask the server for, 1024 to 65535.
	PublicPort Port `yaml:"public-port" default:"one the server picks"`
	// Whether the tunnel must work.
	Expect OKFail `yaml:"expect" default:"ok"`
	// A label for reports.
	Name StepName `yaml:"name" default:"tunnel FROM PORT"`
}

// TableStep is what a table step takes.
type TableStep struct {
	// The nat whose table to read.
	Node NodeRef `yaml:"node" schema:"required"`
	// How many entries the table must hold.
	Expect TableExpect `yaml:"expect" default:"nothing: the table is only shown"`
	// A label for reports.
	Name StepName `yaml:"name" default:"table NODE"`
}

// ExecStep is what an exec step takes.
type ExecStep struct {
	// Where to run the command: a node, or internet for the internet
	// segment's own namespace.
	Node NodeRef `yaml:"node" schema:"required"`
	// The command to run.
	Command Command `yaml:"command" schema:"required"`
	// How long the command may take, 100ms to 1h.
	Timeout Duration `yaml:"timeout" default:"30s"`
	// Whether the command must exit 0.
	Expect OKFail `yaml:"expect" default:"ok"`
	// A label for reports.
	Name StepName `yaml:"name" default:"exec NODE: COMMAND"`
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
	Type NATType `yaml:"type"`
	// The mapping behaviour.
	Mapping Dependence `yaml:"mapping"`
	// The filtering behaviour.
	Filtering Dependence `yaml:"filtering"`
	// The port allocation.
	Ports PortAllocation `yaml:"ports"`
	// Whether the nat hairpins.
	Hairpin bool `yaml:"hairpin"`
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
)

// The values that are one of a fixed set of words. Each lists its words
// from the parser's own tables.
type (
	// NodeKind is what a node is.
	NodeKind string
	// ServiceName is a program a server runs.
	ServiceName string
	// NATType is a classic NAT name; restricted-cone is accepted for
	// address-restricted-cone.
	NATType string
	// Dependence is an RFC 4787 mapping or filtering behaviour: whether
	// the nat looks at nothing of the remote endpoint, its address, or
	// its address and port.
	Dependence string
	// PortAllocation is how a nat picks public ports: preserve keeps the
	// private port when it is free, sequential hands out consecutive
	// ones, random picks any.
	PortAllocation string
	// PortMapping is how hosts behind a nat can ask it for a mapping.
	PortMapping string
	// Firewall6 is the filtering of a nat's IPv6 firewall, or off.
	Firewall6 string
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

// Values lists the classic names and their aliases.
func (NATType) Values() []string { return nat.TypeNames() }

// Values lists the three behaviours.
func (Dependence) Values() []string { return words(nat.Dependences) }

// Values lists the port allocations.
func (PortAllocation) Values() []string { return words(nat.PortAllocations) }

// Values lists the ways of port mapping.
func (PortMapping) Values() []string { return portMappingValues }

// Values lists the firewall's filterings.
func (Firewall6) Values() []string { return append(words(nat.Dependences), firewall6Off) }

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

// portMappingValues are what port-mapping takes; none is "".
var portMappingValues = []string{PortMappingNATPMP, "none"}

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
		if slices.Contains(opts, "knobs") {
			for _, kf := range KnobFields() {
				fields = append(fields, formatField{key: kf.Tag.Get("yaml"), field: kf})
			}
			continue
		}
		if f.Name == "_" || slices.Contains(opts, "prefix") {
			continue
		}
		fields = append(fields, formatField{key: f.Tag.Get("yaml"), field: f, required: slices.Contains(opts, "required")})
	}
	return fields
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

// The fields, required fields and outcomes of each kind of step come from
// its type in StepEntry.
func init() {
	for _, f := range formatFields(reflect.TypeFor[StepEntry]()) {
		spec := stepSpecs[StepKind(f.key)]
		if spec == nil || f.field.Type.Kind() != reflect.Pointer {
			continue
		}
		fields := formatFields(f.field.Type.Elem())
		spec.fields = keysOf(fields)
		for _, sf := range fields {
			if sf.required {
				spec.required = append(spec.required, sf.key)
			}
			if sf.key == "expect" {
				spec.outcomes = enumValues(sf.field.Type)
			}
		}
	}
}
