// Package step holds the kinds of step a scenario's script is made of,
// one unit each: a kind's Go type is what the parser fills in from the
// file, and the same type says what the step does on one line, what it
// expects, which services it needs and how it runs against a lab (Run,
// through Env). Kinds lists them all; the parser, the JSON Schema,
// docs/reference.md, natlab run --help and the README's step table come
// from that list. Adding a kind is one file here and one line in Kinds.
package step

import (
	"context"
	"reflect"
	"slices"

	"github.com/natlab/natlab/topology"
)

// Unit is the value of one kind of step.
type Unit interface {
	topology.StepSpec
	// read fills the value in from the file's fields and returns the
	// step's name unless the file gives one.
	read(f *topology.StepFields) string
	// Expected is what the step expects, as reports show it: ok,
	// delivered, {mappings 2}, any connection.
	Expected() string
	// Needs lists the services of the lab the step talks to, so that a
	// failure can name one that is not running.
	Needs(env Env) []Need
	// Run carries the step out on the lab env gives and says what it
	// saw. An error means the step could not be carried out at all (a
	// node missing, a socket refused).
	Run(ctx context.Context, env Env) (Result, error)
}

// Kind is one kind of step: its key, what it does, and its value type.
type Kind struct {
	key string
	// doc says in a sentence what the kind does, for the reference,
	// natlab run --help and the README.
	doc     string
	example string
	// value, for a scalar kind, is the format of its value.
	value reflect.Type
	// valueWhat names a scalar kind's value in messages: duration.
	valueWhat string
	new       func() Unit
	typ       reflect.Type
	fields    []string
	required  []string
}

// kind describes the kind key whose value is a *T.
func kind[T any, PT interface {
	*T
	Unit
}](key, doc, example string) *Kind {
	t := reflect.TypeFor[T]()
	fields, required := topology.FormatKeys(t)
	return &Kind{key: key, doc: doc, example: example, typ: t,
		fields: append(fields, "name"), required: required,
		new: func() Unit { return PT(new(T)) }}
}

// scalarKind describes a kind that takes one value of the format value,
// which valueWhat names.
func scalarKind[T any, PT interface {
	*T
	Unit
}](key, doc, example string, value reflect.Type, valueWhat string) *Kind {
	k := kind[T, PT](key, doc, example)
	k.fields, k.required, k.value, k.valueWhat = nil, nil, value, valueWhat
	return k
}

// Key is the kind as a file writes it.
func (k *Kind) Key() string { return k.key }

// Fields are the keys the kind takes, name last.
func (k *Kind) Fields() []string { return k.fields }

// Required are the keys it cannot do without.
func (k *Kind) Required() []string { return k.required }

// Example is a minimal step of the kind.
func (k *Kind) Example() string { return k.example }

// Scalar says the kind takes one value, not fields.
func (k *Kind) Scalar() bool { return k.value != nil }

// ValueWhat names a scalar kind's value in messages.
func (k *Kind) ValueWhat() string { return k.valueWhat }

// Doc says what the kind does, in a sentence.
func (k *Kind) Doc() string { return k.doc }

// Type is the kind's value type, whose fields with yaml tags are its keys.
func (k *Kind) Type() reflect.Type { return k.typ }

// Value is the format of a scalar kind's value; nil for others.
func (k *Kind) Value() reflect.Type { return k.value }

// Read reads a step of the kind.
func (k *Kind) Read(f *topology.StepFields) (topology.StepSpec, string) {
	u := k.new()
	name := u.read(f)
	return u, name
}

// The kinds of step, in the order messages and the reference list them.
var (
	stunKind       = kind[STUN]("stun", "Ask a STUN server for the node's public endpoint; with an expected classification, run RFC 5780 NAT behaviour discovery; with servers, compare what two or more see of one socket.", "stun: {from: alice}")
	punchKind      = kind[Punch]("punch", "Hole punching between two hosts: STUN, rendezvous, simultaneous sends, answers to the observed source; with proto: tcp, a TCP connection by simultaneous open.", "punch: {between: [alice, bob]}")
	relayKind      = kind[Relay]("relay", "Connect two hosts through a TURN server: allocation, permission and data both ways.", "relay: {between: [alice, bob]}")
	upgradeKind    = kind[Upgrade]("upgrade", "Connect two hosts through a relay at once (DERP if a server runs derp, else TURN over TCP) and move them to a direct path when a punch succeeds, as Tailscale does.", "upgrade: {between: [alice, bob]}")
	iceKind        = kind[ICE]("ice", "Connect two hosts with ICE (RFC 8445) using every STUN and TURN server of the lab.", "ice: {between: [alice, bob]}")
	sendKind       = kind[Send]("send", "Send one UDP message (or open one TCP connection) from a node to a node or an address; with a count, that many messages the receiver answers, to count the round trips lost and time them.", "send: {from: friend, to: alice}")
	portmapKind    = kind[Portmap]("portmap", "Have a host ask the nat it is behind for a port mapping by NAT-PMP (RFC 6886), PCP (RFC 6887) or UPnP IGD, as protocol says; the nat needs port-mapping: with that protocol.", "portmap: {from: alice, port: 8080}")
	tunnelKind     = kind[Tunnel]("tunnel", "Have a host expose a local TCP port on a public port of a tunnel server, ngrok style, for the rest of the run.", "tunnel: {from: alice, port: 8080}")
	throughputKind = kind[Throughput]("throughput", "Measure the goodput from one host to another over the path a punch kept, or through a TURN relay: the sender offers UDP at a rate for a while, and the step reports the Mbit/s that arrived.", "throughput: {from: alice, to: bob, via: relay}")
	tableKind      = kind[Table]("table", "Read a nat's translation table.", "table: {node: nat-a}")
	waitKind       = scalarKind[Wait]("wait", "Pause the script, for instance to let mappings expire: 1ms to 10m.", "wait: 2s", reflect.TypeFor[topology.Duration](), "duration")
	execKind       = kind[Exec]("exec", "Run a command on a node.", `exec: {node: alice, command: "ping -c1 203.0.113.10"}`)
	linkKind       = kind[Link]("link", "Change the conditions of a node's uplink on the running lab (delay, loss, rate...), or take the link down or bring it up again.", "link: {node: alice, delay: 100ms}")
	rebootKind     = kind[Reboot]("reboot", "Power-cycle a nat: every mapping, port mapping and conntrack entry it held is gone; optionally it comes back with a new public address.", "reboot: {node: nat-a}")
	moveKind       = kind[Move]("move", "Move a host to the LAN of another nat (roaming): it gets an address there, and the nat it left forgets its mappings.", "move: {node: alice, behind: nat-a}")
	renumberKind   = kind[Renumber]("renumber", "Give a nat a new public address, as an ISP does; the mappings of the old one break.", "renumber: {node: nat-a, public: 203.0.113.77}")
)

// all lists every kind: the one place a kind is registered.
var all = []*Kind{stunKind, punchKind, relayKind, upgradeKind, iceKind, sendKind, throughputKind, portmapKind, tunnelKind, tableKind, waitKind, execKind, linkKind, rebootKind, renumberKind, moveKind}

// Kinds are the kinds as the parser takes them.
var Kinds = func() topology.StepKinds {
	ks := make(topology.StepKinds, len(all))
	for i, k := range all {
		ks[i] = k
	}
	return ks
}()

// All lists every kind of step, in order.
func All() []*Kind { return slices.Clone(all) }

// Of returns the kind written key, or nil.
func Of(key string) *Kind {
	for _, k := range all {
		if k.key == key {
			return k
		}
	}
	return nil
}

// Parse parses a scenario file's data with every kind of step.
func Parse(filename string, data []byte) (*topology.Topology, error) {
	return topology.Parse(filename, data, Kinds)
}

// ParseFile reads and parses a scenario file with every kind of step.
func ParseFile(path string) (*topology.Topology, error) {
	return topology.ParseFile(path, Kinds)
}

// ParseOne parses one step, written as an item of steps: would be,
// against the scenario in scenario (see topology.ParseStep).
func ParseOne(scenarioFile string, scenario []byte, stepFile string, step []byte) (*topology.Step, error) {
	return topology.ParseStep(scenarioFile, scenario, stepFile, step, Kinds)
}

// ParseOneAt is ParseOne on a lab that has changed since it came up: now
// is its recorded topology (see topology.ParseStepAt).
func ParseOneAt(scenarioFile string, scenario []byte, now *topology.Topology, stepFile string, step []byte) (*topology.Step, error) {
	return topology.ParseStepAt(scenarioFile, scenario, now, stepFile, step, Kinds)
}

// UnitOf is the unit of a step parsed with Kinds.
func UnitOf(s topology.Step) Unit { return s.Spec.(Unit) }
