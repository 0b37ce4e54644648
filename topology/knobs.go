package topology

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/natlab/natlab/internal/suggest"
	"github.com/natlab/natlab/nat"
)

// NATKnob is one RFC 4787 behaviour knob of a nat node: a key of a
// scenario file that sets one field of nat.Behaviour. NATKnobs lists them,
// and everything else about knobs comes from that list: the parser reads
// them, the schema and docs/reference.md describe them (NATNode's Knobs
// field stands for them), natlab show, natlab status --json and the page
// print them, and labtest.NodeSpec writes them. A knob is added to natlab
// by adding its field to nat.Behaviour, its rules to natrules and its
// entry here. Tests fail when one is missing somewhere: knobs_test.go
// (every field of nat.Behaviour has a knob; natlab show and
// nat.Behaviour.String show each), internal/schemagen (the schema and the
// reference), internal/cli and ui (status --json and the page) and
// labtest (a NodeSpec field per knob).
type NATKnob struct {
	// Key is the knob's key in a scenario file.
	Key string
	// Format is the format type of its value (format.go), which the
	// schema and the reference describe, and whose words, if it has a
	// Values method, are the values it takes.
	Format reflect.Type
	// Default says, for people, what leaving the knob out means.
	Default string
	// Meaning is what the knob sets, in RFC 4787's terms, as the
	// reference and the schema describe it.
	Meaning string

	// field is the type of the field of nat.Behaviour the knob sets.
	field reflect.Type
	// typed says that a nat's type stands for the knob (mapping,
	// filtering): its default is the type's, and a value written beside
	// a type must agree with it.
	typed bool
	// read decodes the knob's value, reporting what is wrong with it.
	read func(p *parser, v *value, path string) (any, bool)
	// def is the value when the file does not give one, for a nat of
	// classic type t ("" when its mapping and filtering have no name).
	def func(t nat.Type) any
	get func(b nat.Behaviour) any
	set func(b *nat.Behaviour, x any)
	// value is x as a scenario file writes it.
	value func(x any) any
	// phrase is x in the line natlab show prints of a nat, after sep
	// (", " when empty).
	phrase func(x any) string
	sep    string
	// notOneToOne, when set, says why a nat of type one-to-one takes no
	// value of the knob: the file may not give one.
	notOneToOne string
}

// knobDef is a NATKnob with its functions typed by the field it sets.
type knobDef[T comparable] struct {
	key, def, meaning string
	format            reflect.Type
	typed             bool
	field             func(b *nat.Behaviour) *T
	read              func(p *parser, v *value, path string) (T, bool)
	deflt             func(t nat.Type) T
	value             func(x T) any
	phrase            func(x T) string
	sep               string
	notOneToOne       string
}

func (d knobDef[T]) knob() NATKnob {
	return NATKnob{
		Key: d.key, Format: d.format, Default: d.def, Meaning: d.meaning,
		field: reflect.TypeFor[T](), typed: d.typed, sep: d.sep, notOneToOne: d.notOneToOne,
		read: func(p *parser, v *value, path string) (any, bool) {
			x, ok := d.read(p, v, path)
			return x, ok
		},
		def:    func(t nat.Type) any { return d.deflt(t) },
		get:    func(b nat.Behaviour) any { return *d.field(&b) },
		set:    func(b *nat.Behaviour, x any) { *d.field(b) = x.(T) },
		value:  func(x any) any { return d.value(x.(T)) },
		phrase: func(x any) string { return d.phrase(x.(T)) },
	}
}

// word is the value of a knob that takes one of a few words.
func word[T ~string](x T) any { return string(x) }

// NATKnobs are the knobs, in the order files, messages, the reference
// and the views list them.
var NATKnobs = []NATKnob{
	knobDef[nat.Dependence]{
		key: "mapping", format: reflect.TypeFor[Dependence](), def: "from type", typed: true,
		meaning: "Which remote endpoints share one public mapping (RFC 4787 section 4.1; for TCP too, as RFC 5382 asks).",
		field:   func(b *nat.Behaviour) *nat.Dependence { return &b.Mapping },
		read:    (*parser).dependence,
		deflt:   nat.Type.Mapping,
		value:   word[nat.Dependence],
		phrase:  func(d nat.Dependence) string { return "mapping " + string(d) },
	}.knob(),
	knobDef[nat.Dependence]{
		key: "filtering", format: reflect.TypeFor[Dependence](), def: "from type", typed: true,
		meaning: "Which remote endpoints may send in through a mapping (RFC 4787 section 5; for TCP too, as RFC 5382 asks: a SYN from them is let in).",
		field:   func(b *nat.Behaviour) *nat.Dependence { return &b.Filtering },
		read:    (*parser).dependence,
		deflt:   nat.Type.Filtering,
		value:   word[nat.Dependence],
		phrase:  func(d nat.Dependence) string { return "filtering " + string(d) },
	}.knob(),
	knobDef[nat.PortAllocation]{
		key: "ports", format: reflect.TypeFor[PortAllocation](), def: "random for symmetric, else preserve",
		meaning: "How the public port of a new mapping is picked (RFC 4787 section 4.2).",
		field:   func(b *nat.Behaviour) *nat.PortAllocation { return &b.Ports },
		read:    (*parser).portAllocation,
		deflt: func(t nat.Type) nat.PortAllocation {
			if t == "" {
				return nat.PortPreserve
			}
			return t.DefaultPorts()
		},
		value:       word[nat.PortAllocation],
		phrase:      func(a nat.PortAllocation) string { return "ports " + string(a) },
		notOneToOne: noPorts,
	}.knob(),
	knobDef[nat.PortRange]{
		key: "port-range", format: reflect.TypeFor[PortRange](), def: nat.DefaultPortRange.String(),
		meaning: "The public ports new mappings take.",
		field:   func(b *nat.Behaviour) *nat.PortRange { return &b.PortRange },
		read:    (*parser).portRange,
		deflt:   func(nat.Type) nat.PortRange { return nat.DefaultPortRange },
		value:   func(r nat.PortRange) any { return r.String() },
		// "ports preserve 1024-65535": the range reads as the ports'.
		phrase: nat.PortRange.String, sep: " ",
		notOneToOne: noPorts,
	}.knob(),
	knobDef[bool]{
		key: "hairpin", format: reflect.TypeFor[bool](), def: "true",
		meaning: "Whether a host behind the nat can reach another behind it through the nat's public address (RFC 4787 REQ-9). The nat's filtering judges such a packet as one from outside, from the sender's public endpoint.",
		field:   func(b *nat.Behaviour) *bool { return &b.Hairpin },
		read:    (*parser).boolean,
		// RFC 4787 REQ-9: a NAT MUST support hairpinning.
		deflt: func(nat.Type) bool { return true },
		value: func(h bool) any { return h },
		phrase: func(h bool) string {
			if h {
				return "hairpin"
			}
			return "no hairpin"
		},
	}.knob(),
	knobDef[nat.Timeouts]{
		key: "timeout", format: reflect.TypeFor[Timeout](), def: fmtDuration(nat.DefaultTimeout),
		meaning: fmt.Sprintf("How long an idle mapping lives, each %s to %s: one duration for UDP's mappings (the others keep their defaults), "+
			"or a map by protocol: udp (default %s; RFC 4787 REQ-5 requires at least 2m), tcp-established (default %s; RFC 5382 REQ-5 requires at least 2h4m), "+
			"tcp-transitory, a TCP connection opening or closing (default %s; RFC 5382 requires at least 4m), and icmp, an ICMP query such as an echo (default %s; RFC 5508 REQ-1 requires at least 60s). "+
			"natlab is a lab and takes shorter ones, for tests. TCP's and ICMP's are also conntrack's timeouts in the nat's namespace, in whole seconds; TCP's are those of its TCP mappings too, tcp-transitory for a new one and tcp-established once its traffic has refreshed it.",
			fmtDuration(minTimeout), fmtDuration(maxTimeout), fmtDuration(nat.DefaultTimeouts.UDP), fmtDuration(nat.DefaultTimeouts.TCPEstablished),
			fmtDuration(nat.DefaultTimeouts.TCPTransitory), fmtDuration(nat.DefaultTimeouts.ICMP)),
		field:  func(b *nat.Behaviour) *nat.Timeouts { return &b.Timeout },
		read:   (*parser).timeouts,
		deflt:  func(nat.Type) nat.Timeouts { return nat.DefaultTimeouts },
		value:  timeoutsValue,
		phrase: func(t nat.Timeouts) string { return "timeout " + timeoutsPhrase(t) },
		// Conntrack still forgets idle flows (after its timeouts), but
		// nothing the host can observe depends on it: every packet to the
		// public address reaches it whether a flow exists or not.
		notOneToOne: "its host's address is bound to the public address for as long as the lab runs, and no mapping times out",
	}.knob(),
	knobDef[nat.Refresh]{
		key: "refresh", format: reflect.TypeFor[Refresh](), def: string(nat.RefreshBoth),
		meaning:     "Which packets keep an idle mapping alive (RFC 4787 section 4.3): both, packets in either direction, as Linux's conntrack and most home routers do; or outbound, only packets from inside, so that a mapping whose host only receives expires at its timeout. RFC 4787 REQ-6 requires outbound refresh and allows inbound refresh. It applies to UDP mappings; a TCP mapping lives as long as its connection (RFC 5382), which traffic in either direction refreshes, as conntrack's entries for TCP and ICMP.",
		field:       func(b *nat.Behaviour) *nat.Refresh { return &b.Refresh },
		read:        (*parser).refresh,
		deflt:       func(nat.Type) nat.Refresh { return nat.RefreshBoth },
		value:       word[nat.Refresh],
		phrase:      func(r nat.Refresh) string { return "refresh " + string(r) },
		notOneToOne: "it keeps no mapping to refresh: its host's address is bound to the public address for as long as the lab runs",
	}.knob(),
}

// noPorts is why a one-to-one nat takes neither ports nor port-range.
const noPorts = "it translates no port: its host owns every port of the public address, and each packet keeps its own"

// NATKnobNamed returns the knob with key, or nil.
func NATKnobNamed(key string) *NATKnob {
	for i := range NATKnobs {
		if NATKnobs[i].Key == key {
			return &NATKnobs[i]
		}
	}
	return nil
}

// JSONKey names the knob in the JSON views (natlab status --json, the
// page): its key with _ for -, as port_range.
func (k *NATKnob) JSONKey() string { return strings.ReplaceAll(k.Key, "-", "_") }

// Field is the type of the field of nat.Behaviour the knob sets.
func (k *NATKnob) Field() reflect.Type { return k.field }

// Value is the knob's value in b as a scenario file writes it: a word,
// a port range such as 1024-65535, a duration such as 2m, or true or
// false. The views show it so.
func (k *NATKnob) Value(b nat.Behaviour) any { return k.value(k.get(b)) }

// ValueOf is x, a value of the knob's field type (Field), as a scenario
// file writes it.
func (k *NATKnob) ValueOf(x any) any { return k.value(x) }

// NATJSON is the JSON object of a nat of type typ in a view: the members
// of before, then each knob of b by its JSONKey and Value, in NATKnobs'
// order, then the members of after. A one-to-one nat has no value for the
// knobs it does not take (ports, port-range, timeout, refresh), and they
// are left out. before and after are values that marshal as JSON
// objects, such as structs.
func NATJSON(before any, typ nat.Type, b nat.Behaviour, after any) ([]byte, error) {
	var out bytes.Buffer
	out.WriteByte('{')
	member := func(data []byte) {
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		out.Write(data)
	}
	members := func(v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		inner := bytes.TrimSpace(data)
		if len(inner) < 2 || inner[0] != '{' || inner[len(inner)-1] != '}' {
			return fmt.Errorf("topology: NATJSON: %T is no JSON object", v)
		}
		if inner = bytes.TrimSpace(inner[1 : len(inner)-1]); len(inner) > 0 {
			member(inner)
		}
		return nil
	}
	if err := members(before); err != nil {
		return nil, err
	}
	for i := range NATKnobs {
		k := &NATKnobs[i]
		if typ == nat.OneToOne && k.notOneToOne != "" {
			continue
		}
		key, _ := json.Marshal(k.JSONKey())
		val, err := json.Marshal(k.Value(b))
		if err != nil {
			return nil, err
		}
		member(append(append(key, ':'), val...))
	}
	if err := members(after); err != nil {
		return nil, err
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// NATKnobKeys stands, in NATNode, for the keys of NATKnobs: each a field
// of its Format type with its Default and, as tag doc, its Meaning (see
// KnobFields).
type NATKnobKeys struct{}

// KeyFields are the fields NATKnobKeys stands for.
func (NATKnobKeys) KeyFields() []reflect.StructField { return KnobFields() }

// KnobFields are the keys of NATKnobs as fields of a format struct, for
// what reads the format types (formatFields, internal/schemagen): each
// with a yaml, a default and a doc tag, the doc standing in for the doc
// comment a written field has.
func KnobFields() []reflect.StructField {
	fields := make([]reflect.StructField, len(NATKnobs))
	for i, k := range NATKnobs {
		fields[i] = registryField(k.Key, k.Format, k.Default, k.Meaning)
	}
	return fields
}

// registryField is a key of a registry as a field of a format struct:
// the Go name a field of key would have, its format type, and as tags its
// key, its default and, standing in for the doc comment a written field
// has, doc.
func registryField(key string, format reflect.Type, def, doc string) reflect.StructField {
	return reflect.StructField{
		Name: knobFieldName(key),
		Type: format,
		Tag:  reflect.StructTag(fmt.Sprintf("yaml:%q default:%q doc:%q", key, def, doc)),
	}
}

// knobFieldName is the Go name a field of key would have: port-range,
// PortRange.
func knobFieldName(key string) string {
	var b strings.Builder
	for w := range strings.SplitSeq(key, "-") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// knobs are the NAT behaviour settings a file gives, each with the value
// it was read from so that defaults and contradictions can be worked out
// once all keys are read.
type knobs struct {
	typ    nat.Type
	typVal *value
	// given are the knobs of NATKnobs the file gives valid values for,
	// by key.
	given map[string]givenKnob

	// portMapping lists the protocols of PortMappingProtocols the NAT
	// speaks; portMappingBad says the value was invalid, so that a
	// portmap step from behind this NAT is not reported again.
	portMapping    []string
	portMappingBad bool
	// firewall6 is "" for off; firewall6Val is nil when not given.
	firewall6    nat.Dependence
	firewall6Val *value
}

// givenKnob is a knob's value and where it was read.
type givenKnob struct {
	x  any
	at *value
}

// Limits of timeout:. Under a second no test can keep a mapping alive; over
// a day the lab outlives any test that would notice it expire.
const (
	minTimeout = time.Second
	maxTimeout = 24 * time.Hour
)

// readNATKey decodes key f of NAT n, reporting whether it is a NAT key.
func (p *parser) readNATKey(n *nodeSpec, f entry, path string) bool {
	k := &n.nat.knobs
	v := f.val
	if kb := NATKnobNamed(f.key); kb != nil {
		if x, ok := kb.read(p, v, path); ok {
			if k.given == nil {
				k.given = make(map[string]givenKnob)
			}
			k.given[kb.Key] = givenKnob{x, v}
		}
		return true
	}
	switch f.key {
	case "type":
		if t, ok := p.natType(v, path); ok {
			k.typ, k.typVal = t, v
		}
	case "port-mapping":
		k.portMapping, k.portMappingBad = p.portMapping(v, path)
	case "firewall6":
		if !p.needInternet6(f, path) {
			break
		}
		if d, ok := p.firewall6(v, path); ok {
			k.firewall6, k.firewall6Val = d, v
		}
	case "lan":
		n.nat.lanVal = v
	case "lan6":
		if p.needInternet6(f, path) {
			n.nat.lan6Val = v
		}
	case "forward":
		n.nat.forwardVal, n.nat.forwardPath = v, path
	case "pooling":
		p.readPooling(n, v, path)
	case "port-block":
		p.readPortBlock(n, v, path)
	default:
		return false
	}
	return true
}

// natType reads a classic NAT type name.
func (p *parser) natType(v *value, path string) (nat.Type, bool) {
	s, ok := p.str(v, path, "a NAT type")
	if !ok {
		return "", false
	}
	t, err := nat.ParseType(s)
	if err != nil {
		p.errs.errorf(v.pos, "%s: %v", path, err)
		return "", false
	}
	return t, true
}

// dependence reads a mapping or filtering behaviour.
func (p *parser) dependence(v *value, path string) (nat.Dependence, bool) {
	s, ok := p.str(v, path, "endpoint-independent, address-dependent or address-and-port-dependent")
	if !ok {
		return "", false
	}
	d, err := nat.ParseDependence(s)
	if err != nil {
		p.errs.errorf(v.pos, "%s: %v", path, err)
		return "", false
	}
	return d, true
}

// portAllocation reads how a NAT picks public ports.
func (p *parser) portAllocation(v *value, path string) (nat.PortAllocation, bool) {
	s, ok := p.str(v, path, "a port allocation")
	if !ok {
		return "", false
	}
	a, err := nat.ParsePortAllocation(s)
	if err != nil {
		p.errs.errorf(v.pos, "%s: %v", path, err)
		return "", false
	}
	return a, true
}

// TimeoutsValue is a timeout map as a file writes it, every protocol
// spelt out.
type TimeoutsValue struct {
	UDP            string `json:"udp" yaml:"udp"`
	TCPEstablished string `json:"tcp-established" yaml:"tcp-established"`
	TCPTransitory  string `json:"tcp-transitory" yaml:"tcp-transitory"`
	ICMP           string `json:"icmp" yaml:"icmp"`
}

// timeoutsValue is t as a file writes it: UDP's duration alone where the
// others are the defaults, a TimeoutsValue otherwise.
func timeoutsValue(t nat.Timeouts) any {
	if t.OnlyUDP() {
		return fmtDuration(t.UDP)
	}
	return TimeoutsValue{fmtDuration(t.UDP), fmtDuration(t.TCPEstablished), fmtDuration(t.TCPTransitory), fmtDuration(t.ICMP)}
}

// timeoutsPhrase is t in natlab show's line: 2m, or {udp 2m, ...}.
func timeoutsPhrase(t nat.Timeouts) string {
	if t.OnlyUDP() {
		return fmtDuration(t.UDP)
	}
	parts := make([]string, len(nat.TimeoutKeys))
	for i, k := range nat.TimeoutKeys {
		parts[i] = k + " " + fmtDuration(*t.Of(k))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// timeoutsWant is what a timeout takes, for messages.
const timeoutsWant = "a duration such as 2m, or a map such as {udp: 2m, tcp-established: 2h4m, tcp-transitory: 4m, icmp: 60s}"

// timeouts reads a nat's timeout: one duration, UDP's, or a map of them
// by protocol. TCP's and ICMP's are conntrack's, which counts whole
// seconds.
func (p *parser) timeouts(v *value, path string) (nat.Timeouts, bool) {
	if v.kind != kindMap {
		if v.kind != kindInvalid && !v.isScalar() {
			p.errs.errorf(v.pos, "%s: want %s, not %s", path, timeoutsWant, v.describe())
			return nat.Timeouts{}, false
		}
		d, ok := p.duration(v, path, minTimeout, maxTimeout)
		return nat.UDPOnly(d), ok
	}
	t, ok := nat.DefaultTimeouts, true
	if len(v.entries) == 0 {
		p.errs.errorf(v.pos, "%s: an empty map; want %s", path, timeoutsWant)
		return nat.Timeouts{}, false
	}
	for _, e := range v.entries {
		kpath := path + "." + e.key
		at := t.Of(e.key)
		if at == nil {
			msg := unknownKeyMessage(e, kpath, "a timeout", nat.TimeoutKeys, "")
			switch strings.ToLower(e.key) {
			case "tcp":
				msg += "; TCP has two: tcp-established for an open connection, tcp-transitory for one opening or closing"
			case "icmpv6", "icmp6":
				msg = strings.TrimSuffix(msg, "; did you mean icmp?") + "; natlab's nats translate IPv4 only, and its IPv6 firewall keeps UDP's timeout"
			}
			p.errs.errorf(e.keyPos, "%s", msg)
			ok = false
			continue
		}
		d, dok := p.duration(e.val, kpath, minTimeout, maxTimeout)
		if dok && e.key != "udp" && d%time.Second != 0 {
			p.errs.errorf(e.val.pos, "%s: %s is not a whole number of seconds; conntrack, which times %s out, counts seconds", kpath, e.val.text, e.key)
			dok = false
		}
		if !dok {
			ok = false
			continue
		}
		*at = d
	}
	return t, ok
}

// refresh reads which packets refresh a mapping.
func (p *parser) refresh(v *value, path string) (nat.Refresh, bool) {
	want := "both or outbound"
	if v.kind == kindBool {
		p.errs.errorf(v.pos, "%s: want %s, not %s", path, want, v.describe())
		return "", false
	}
	s, ok := p.str(v, path, want)
	if !ok {
		return "", false
	}
	r, err := nat.ParseRefresh(s)
	if err == nil {
		return r, true
	}
	msg := fmt.Sprintf("%s: %v", path, err)
	switch s {
	case "inbound":
		msg += "; RFC 4787 REQ-6 requires outbound refresh, so inbound alone is no choice: both adds it to outbound"
	default:
		if sug := suggest.Closest(strings.ToLower(s), words(nat.Refreshes)); sug != "" {
			msg += "; did you mean " + sug + "?"
		}
	}
	p.errs.errorf(v.pos, "%s", msg)
	return "", false
}

// boolean reads true or false. Quoted, they are strings that someone
// probably did not mean as such, so the message says so.
func (p *parser) boolean(v *value, path string) (bool, bool) {
	switch v.kind {
	case kindInvalid:
	case kindBool:
		return v.boolean, true
	case kindString:
		if b := strings.ToLower(v.text); b == "true" || b == "false" {
			p.errs.errorf(v.pos, "%s: want true or false without quotes, not the string %q", path, v.text)
			break
		}
		p.errs.errorf(v.pos, "%s: want true or false, not %s", path, v.describe())
	default:
		p.errs.errorf(v.pos, "%s: want true or false, not %s", path, v.describe())
	}
	return false, false
}

// portMappingWant is what port-mapping takes, for messages.
func portMappingWant() string {
	return strings.Join(PortMappingProtocols, ", ") + " or none, or a list of them such as [" + strings.Join(PortMappingProtocols, ", ") + "]"
}

// protocolsWant is what an item of a port-mapping list takes: "a, b or c".
func protocolsWant() string {
	ps := PortMappingProtocols
	return strings.Join(ps[:len(ps)-1], ", ") + " or " + ps[len(ps)-1]
}

// portMapping reads how nodes behind a NAT can ask it for a mapping: a
// protocol, none, or a list of protocols. It returns them in the order of
// PortMappingProtocols, and bad=true after reporting an invalid value.
func (p *parser) portMapping(v *value, path string) (protocols []string, bad bool) {
	switch v.kind {
	case kindInvalid:
		return nil, true
	case kindSeq:
		seen := make(map[string]int)
		for i, item := range v.items {
			ipath := indexPath(path, i)
			s, ok := p.portMappingProtocol(item, ipath, false)
			if !ok {
				bad = true
				continue
			}
			if first, dup := seen[s]; dup {
				p.errs.errorf(item.pos, "%s: %s is already listed at %s", ipath, s, indexPath(path, first))
				continue
			}
			seen[s] = i
		}
		for _, s := range PortMappingProtocols {
			if _, ok := seen[s]; ok {
				protocols = append(protocols, s)
			}
		}
		return protocols, bad
	}
	s, ok := p.portMappingProtocol(v, path, true)
	if !ok {
		return nil, true
	}
	if s == "none" {
		return nil, false
	}
	return []string{s}, false
}

// portMappingProtocol reads one protocol of port-mapping, or none where
// orNone allows it (not in a list).
func (p *parser) portMappingProtocol(v *value, path string, orNone bool) (string, bool) {
	want := portMappingWant()
	if !orNone {
		want = protocolsWant()
	}
	if v.kind == kindBool {
		p.errs.errorf(v.pos, "%s: want %s, not %s", path, want, v.describe())
		return "", false
	}
	s, ok := p.str(v, path, want)
	switch {
	case !ok:
		return "", false
	case slices.Contains(PortMappingProtocols, s):
		return s, true
	case s == "none" && orNone:
		return s, true
	}
	msg := fmt.Sprintf("%s: unknown value %q; want %s", path, s, want)
	words := PortMappingProtocols
	if orNone {
		words = append(slices.Clip(words), "none")
	}
	switch lower := strings.ToLower(s); {
	case s == "none":
		msg = fmt.Sprintf("%s: none in a list; write port-mapping: none, or leave the protocols out", path)
	case strings.HasPrefix(lower, "upnp"):
		msg += "; write upnp for UPnP's Internet Gateway Device"
	default:
		if sug := suggest.Closest(lower, words); sug != "" {
			msg += "; did you mean " + sug + "?"
		}
	}
	p.errs.errorf(v.pos, "%s", msg)
	return "", false
}

// firewall6Want is what firewall6 takes.
const firewall6Want = "endpoint-independent, address-dependent, address-and-port-dependent or off"

// firewall6 reads the filtering of a NAT's IPv6 firewall; off is "".
func (p *parser) firewall6(v *value, path string) (nat.Dependence, bool) {
	if v.kind == kindBool {
		msg := fmt.Sprintf("%s: want %s, not %s", path, firewall6Want, v.describe())
		if !v.boolean {
			msg += "; write off to turn the firewall off"
		}
		p.errs.errorf(v.pos, "%s", msg)
		return "", false
	}
	s, ok := p.str(v, path, firewall6Want)
	if !ok {
		return "", false
	}
	if s == "off" {
		return "", true
	}
	if d, err := nat.ParseDependence(s); err == nil {
		return d, true
	}
	msg := fmt.Sprintf("%s: unknown value %q; want %s", path, s, firewall6Want)
	accepted := []string{"off"}
	for _, d := range nat.Dependences {
		accepted = append(accepted, string(d))
	}
	if t, err := nat.ParseType(s); err == nil {
		msg += fmt.Sprintf("; firewall6 takes a filtering behaviour, and %s filters %s", s, t.Filtering())
	} else if sug := suggest.Closest(s, accepted); sug != "" {
		msg += "; did you mean " + sug + "?"
	}
	p.errs.errorf(v.pos, "%s", msg)
	return "", false
}

const portRangeWant = "FIRST-LAST with 1 <= FIRST <= LAST <= 65535, such as 49152-65535"

func (p *parser) portRange(v *value, path string) (nat.PortRange, bool) {
	switch v.kind {
	case kindInvalid:
		return nat.PortRange{}, false
	case kindString:
	default:
		p.errs.errorf(v.pos, "%s: want %s, not %s", path, portRangeWant, v.describe())
		return nat.PortRange{}, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(v.text), "-")
	a, errA := strconv.ParseUint(strings.TrimSpace(first), 10, 32)
	b, errB := strconv.ParseUint(strings.TrimSpace(last), 10, 32)
	switch {
	case !found || errA != nil || errB != nil:
		p.errs.errorf(v.pos, "%s: invalid port range %q; want %s", path, v.text, portRangeWant)
	case a < 1 || a > 65535 || b < 1 || b > 65535:
		p.errs.errorf(v.pos, "%s: port range %q goes beyond the ports 1 to 65535; want %s", path, v.text, portRangeWant)
	case a > b:
		p.errs.errorf(v.pos, "%s: port range %q starts after it ends; want %s", path, v.text, portRangeWant)
	default:
		return nat.PortRange{First: uint16(a), Last: uint16(b)}, true
	}
	return nat.PortRange{}, false
}

const timeoutWant = "a duration such as 30s or 2m, or a number of seconds"

// maxSeconds is the largest number of seconds a time.Duration holds.
const maxSeconds = math.MaxInt64 / int64(time.Second)

// duration reads a Go duration (30s, 1m30s, 500ms) or a whole number of
// seconds, from lo to hi.
func (p *parser) duration(v *value, path string, lo, hi time.Duration) (time.Duration, bool) {
	var d time.Duration
	if secs, ok := v.integer(); ok {
		// Numbers of seconds beyond what a Duration holds would wrap
		// around, possibly into the allowed range.
		switch {
		case secs > int64(hi/time.Second):
			p.errs.errorf(v.pos, "%s: %s seconds is longer than the maximum %s", path, v.text, fmtDuration(hi))
			return 0, false
		case secs < -maxSeconds:
			p.errs.errorf(v.pos, "%s: %s seconds is shorter than the minimum %s", path, v.text, fmtDuration(lo))
			return 0, false
		}
		d = time.Duration(secs) * time.Second
	} else {
		switch v.kind {
		case kindInvalid:
			return 0, false
		case kindString:
		default:
			p.errs.errorf(v.pos, "%s: want %s, not %s", path, timeoutWant, v.describe())
			return 0, false
		}
		var err error
		if d, err = time.ParseDuration(strings.TrimSpace(v.text)); err != nil {
			p.errs.errorf(v.pos, "%s: invalid duration %q; want %s", path, v.text, timeoutWant)
			return 0, false
		}
	}
	switch {
	case d < lo:
		p.errs.errorf(v.pos, "%s: %s is shorter than the minimum %s", path, fmtDuration(d), fmtDuration(lo))
	case d > hi:
		p.errs.errorf(v.pos, "%s: %s is longer than the maximum %s", path, fmtDuration(d), fmtDuration(hi))
	default:
		return d, true
	}
	return 0, false
}

// fmtDuration writes d the short way people write it in a file: 2m, not
// 2m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// behaviour works out the NAT's type and complete behaviour from its knobs.
// A type stands for a mapping and a filtering; a knob that says the same
// is fine, one that says otherwise is an error, since one of the two is
// not what the author meant.
func (p *parser) behaviour(n *nodeSpec) (nat.Type, nat.Behaviour) {
	k := &n.nat.knobs
	base := nat.PortRestrictedCone
	if k.typVal != nil {
		base = k.typ
	}
	var b nat.Behaviour
	// First what the type stands for, which names the classic type of
	// knobs written without one; then the rest, whose defaults may
	// depend on it.
	for _, typed := range []bool{true, false} {
		typ := base
		if !typed && k.typVal == nil {
			typ, _ = nat.TypeOf(b.Mapping, b.Filtering)
		}
		for i := range NATKnobs {
			kb := &NATKnobs[i]
			if kb.typed != typed {
				continue
			}
			kb.set(&b, kb.def(typ))
			g, ok := k.given[kb.Key]
			switch {
			case !ok:
			case base == nat.OneToOne && k.typVal != nil && kb.notOneToOne != "":
				p.errs.errorf(g.at.pos, "%s.%s: a one-to-one nat takes no %s: %s; remove %s, or choose another type",
					n.path, kb.Key, kb.Key, kb.notOneToOne, kb.Key)
			case typed && k.typVal != nil:
				if want := kb.def(base); g.x != want {
					p.errs.errorf(g.at.pos, "%s.%s: %v contradicts type: %s, which means %s: %v; remove one of them",
						n.path, kb.Key, kb.ValueOf(g.x), base, kb.Key, kb.ValueOf(want))
				}
			default:
				kb.set(&b, g.x)
			}
		}
	}
	typ := k.typ
	if k.typVal == nil {
		typ, _ = nat.TypeOf(b.Mapping, b.Filtering)
	}
	return typ, b
}

// contradicts reports a mapping or filtering knob, read from v, that says
// otherwise than the type of the same mapping at path.
func (p *parser) contradicts(path string, typ nat.Type, knob string, got nat.Dependence, v *value) {
	want := typ.Mapping()
	if knob == "filtering" {
		want = typ.Filtering()
	}
	if v == nil || got == want {
		return
	}
	p.errs.errorf(v.pos, "%s.%s: %s contradicts type: %s, which means %s: %s; remove one of them",
		path, knob, got, typ, knob, want)
}
