// Package nat names NAT behaviour in the terms of RFC 4787 (NAT behavioural
// requirements for unicast UDP) and maps the four classic names onto them.
//
// The same words are used in scenario files, in the rules natrules builds and
// in what a classification reports, so a user reads one vocabulary throughout.
package nat

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/natlab/natlab/internal/suggest"
)

// Dependence is how much of a remote endpoint a NAT looks at: nothing, its
// address, or its address and port. RFC 4787 uses the same three words for
// both mapping (section 4.1) and filtering (section 5).
type Dependence string

const (
	EndpointIndependent     Dependence = "endpoint-independent"
	AddressDependent        Dependence = "address-dependent"
	AddressAndPortDependent Dependence = "address-and-port-dependent"
)

// Dependences lists the three in order of increasing strictness.
var Dependences = []Dependence{EndpointIndependent, AddressDependent, AddressAndPortDependent}

// ParseDependence accepts the RFC 4787 words.
func ParseDependence(s string) (Dependence, error) {
	for _, d := range Dependences {
		if s == string(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("unknown value %q; want %s", s, joinQuoted(Dependences))
}

// PortAllocation is how a NAT picks the public port of a new mapping
// (RFC 4787 section 4.2).
type PortAllocation string

const (
	// PortPreserve keeps the private port when no other mapping holds it and
	// picks a random free port otherwise, as Linux and most home routers do.
	PortPreserve PortAllocation = "preserve"
	// PortSequential hands out consecutive ports from the start of the range
	// (with port-range 48721-65535: 48721, 48722, ...), which makes the
	// next mapping predictable.
	PortSequential PortAllocation = "sequential"
	// PortRandom picks a random free port for every new mapping.
	PortRandom PortAllocation = "random"
)

// PortAllocations lists the accepted values.
var PortAllocations = []PortAllocation{PortPreserve, PortSequential, PortRandom}

// ParsePortAllocation accepts preserve, sequential or random.
func ParsePortAllocation(s string) (PortAllocation, error) {
	for _, p := range PortAllocations {
		if s == string(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown value %q; want %s", s, joinQuoted(PortAllocations))
}

// Refresh is which packets keep a mapping alive (RFC 4787 section 4.3,
// "NAT outbound refresh behavior" and "NAT inbound refresh behavior").
type Refresh string

const (
	// RefreshBoth lets packets in either direction refresh a mapping, as
	// Linux's conntrack (and so most Linux-based home routers) does.
	RefreshBoth Refresh = "both"
	// RefreshOutbound lets only packets from inside refresh a mapping
	// (REQ-6 requires outbound refresh; inbound refresh is a MAY): a
	// mapping whose host only listens expires at its timeout however
	// much the remote sends, which is what keepalives sent by the remote
	// side alone run into.
	RefreshOutbound Refresh = "outbound"
)

// Refreshes lists the accepted values.
var Refreshes = []Refresh{RefreshBoth, RefreshOutbound}

// ParseRefresh accepts both or outbound.
func ParseRefresh(s string) (Refresh, error) {
	for _, r := range Refreshes {
		if s == string(r) {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown value %q; want %s", s, joinQuoted(Refreshes))
}

// Type is one of the four classic NAT names, each a shorthand for a mapping
// and a filtering behaviour, or OneToOne.
type Type string

const (
	FullCone              Type = "full-cone"
	AddressRestrictedCone Type = "address-restricted-cone"
	PortRestrictedCone    Type = "port-restricted-cone"
	Symmetric             Type = "symmetric"
	// OneToOne is 1:1 NAT, as a cloud VM's public address (an AWS
	// elastic IP): the one private address behind the NAT owns its
	// public address, every port of it. Inbound packets from anyone, to
	// any port, are translated to the private address with the port
	// kept, and outbound ones leave from the public address with their
	// own port. It is no classic name and not in Types (which the punch
	// matrix crosses): in RFC 4787's terms it maps and filters
	// endpoint-independently, and what sets it apart, that no mapping is
	// needed to be reached, is no knob of Behaviour but the type itself.
	OneToOne Type = "one-to-one"
)

// Types lists the classic names in order from most to least permissive.
var Types = []Type{FullCone, AddressRestrictedCone, PortRestrictedCone, Symmetric}

// AllTypes is Types and OneToOne: every type a file may name.
var AllTypes = append(slices.Clone(Types), OneToOne)

// typeAliases are other spellings people use for the same types.
var typeAliases = map[string]Type{
	"restricted-cone": AddressRestrictedCone,
}

// TypeNames lists every name ParseType accepts: the classic names, then
// the aliases.
func TypeNames() []string {
	names := make([]string, 0, len(AllTypes)+len(typeAliases))
	for _, t := range AllTypes {
		names = append(names, string(t))
	}
	var aliases []string
	for a := range typeAliases {
		aliases = append(aliases, a)
	}
	slices.Sort(aliases)
	return append(names, aliases...)
}

// ParseType accepts a classic name, one of its common aliases, or
// one-to-one.
func ParseType(s string) (Type, error) {
	for _, t := range AllTypes {
		if s == string(t) {
			return t, nil
		}
	}
	if t, ok := typeAliases[s]; ok {
		return t, nil
	}
	msg := fmt.Sprintf("unknown NAT type %q; want %s (restricted-cone is accepted for address-restricted-cone)", s, joinQuoted(AllTypes))
	if sug := suggest.Closest(strings.ToLower(s), TypeNames()); sug != "" {
		msg += "; did you mean " + sug + "?"
	}
	return "", errors.New(msg)
}

// Mapping is the mapping behaviour the classic name stands for.
func (t Type) Mapping() Dependence {
	if t == Symmetric {
		return AddressAndPortDependent
	}
	return EndpointIndependent
}

// Filtering is the filtering behaviour the classic name stands for.
func (t Type) Filtering() Dependence {
	switch t {
	case FullCone, OneToOne:
		return EndpointIndependent
	case AddressRestrictedCone:
		return AddressDependent
	default:
		return AddressAndPortDependent
	}
}

// DefaultPorts is the port allocation a type gets when a scenario does not
// say: cone NATs preserve ports, symmetric NATs pick them at random, which is
// the variant that defeats hole punching and port prediction.
func (t Type) DefaultPorts() PortAllocation {
	if t == Symmetric {
		return PortRandom
	}
	return PortPreserve
}

// TypeOf names a mapping and filtering combination with its classic name.
// Combinations the classic names do not cover (for example
// address-dependent mapping) report ok=false.
func TypeOf(mapping, filtering Dependence) (t Type, ok bool) {
	for _, t := range Types {
		if t.Mapping() == mapping && t.Filtering() == filtering {
			return t, true
		}
	}
	return "", false
}

// PortRange is an inclusive range of public ports a NAT allocates from.
//
// Its JSON names are part of labstate's lab records (see Behaviour).
type PortRange struct {
	First uint16 `json:"First"`
	Last  uint16 `json:"Last"`
}

// DefaultPortRange is where new public ports come from unless a scenario says
// otherwise: everything above the well-known ports.
var DefaultPortRange = PortRange{First: 1024, Last: 65535}

// Size is the number of ports in the range.
func (r PortRange) Size() int { return int(r.Last) - int(r.First) + 1 }

// Contains reports whether port lies in the range.
func (r PortRange) Contains(port uint16) bool { return port >= r.First && port <= r.Last }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// DefaultTimeout is the UDP mapping lifetime when a scenario does not set
// one: the two minutes RFC 4787 REQ-5 asks for at least.
const DefaultTimeout = 2 * time.Minute

// Timeouts is how long an idle mapping lives, by protocol: UDP's, in
// natlab's own maps (RFC 4787 REQ-5: at least 2 minutes), and those of
// the protocols conntrack translates alone: a TCP connection established
// (RFC 5382 REQ-5: at least 2 h 4 min) and one opening or closing
// ("transitory": at least 4 min), and an ICMP query such as an echo
// (RFC 5508 REQ-1: at least 60 s).
//
// Lab records hold it as an object of nanoseconds (format 4); records of
// format 3 and before held UDP's alone, as a number, which reads as a
// Timeouts with only UDP set (labstate fills the others in).
type Timeouts struct {
	UDP            time.Duration `json:"UDP"`
	TCPEstablished time.Duration `json:"TCPEstablished"`
	TCPTransitory  time.Duration `json:"TCPTransitory"`
	ICMP           time.Duration `json:"ICMP"`
}

// DefaultTimeouts are the timeouts of a NAT that sets none: RFC 4787's
// minimum for UDP and the minimums of RFC 5382 and RFC 5508 for TCP and
// ICMP. (Linux's own defaults are 5 days for an established TCP
// connection, within RFC 5382, and 30 s for ICMP, below RFC 5508's 60.)
var DefaultTimeouts = Timeouts{UDP: DefaultTimeout, TCPEstablished: 2*time.Hour + 4*time.Minute, TCPTransitory: 4 * time.Minute, ICMP: time.Minute}

// UDPOnly is t with UDP's timeout udp: what timeout: 2m means.
func UDPOnly(udp time.Duration) Timeouts {
	t := DefaultTimeouts
	t.UDP = udp
	return t
}

// OnlyUDP says whether t is DefaultTimeouts but for UDP: the timeouts a
// file writes as one duration.
func (t Timeouts) OnlyUDP() bool { return UDPOnly(t.UDP) == t }

// TimeoutKeys are the protocols' keys of a file's timeout map, in the
// order files, messages and views list them.
var TimeoutKeys = []string{"udp", "tcp-established", "tcp-transitory", "icmp"}

// Of is the timeout of the protocol key names (one of TimeoutKeys).
func (t *Timeouts) Of(key string) *time.Duration {
	switch key {
	case "udp":
		return &t.UDP
	case "tcp-established":
		return &t.TCPEstablished
	case "tcp-transitory":
		return &t.TCPTransitory
	case "icmp":
		return &t.ICMP
	}
	return nil
}

// String is UDP's timeout alone (2m) where the others are the defaults,
// and each protocol's otherwise (udp 2m, tcp-established 1h, ...).
func (t Timeouts) String() string {
	if t.OnlyUDP() {
		return FormatDuration(t.UDP)
	}
	parts := make([]string, len(TimeoutKeys))
	for i, k := range TimeoutKeys {
		parts[i] = k + " " + FormatDuration(*t.Of(k))
	}
	return strings.Join(parts, ", ")
}

// UnmarshalJSON reads the object of format 4 or, from older records,
// UDP's timeout alone as a number of nanoseconds.
func (t *Timeouts) UnmarshalJSON(data []byte) error {
	var ns int64
	if err := json.Unmarshal(data, &ns); err == nil {
		*t = Timeouts{UDP: time.Duration(ns)}
		return nil
	}
	type plain Timeouts
	return json.Unmarshal(data, (*plain)(t))
}

// Behaviour is the complete observable behaviour of one NAT for UDP.
//
// Lab records (package labstate) store it as JSON, and a natlab reads the
// records of labs an older natlab brought up: the JSON names are a file
// format, fixed by the tags, not by the Go names. They are the names the
// fields had when records first held them (format version 1); a field
// renamed in Go keeps its tag, and a change of tag is a new format version.
// Timeout is in nanoseconds.
type Behaviour struct {
	Mapping   Dependence     `json:"Mapping"`
	Filtering Dependence     `json:"Filtering"`
	Ports     PortAllocation `json:"Ports"`
	PortRange PortRange      `json:"PortRange"`
	// Hairpin loops packets from inside to one of the NAT's own public
	// endpoints back to the owner of that mapping (RFC 4787 section 6).
	Hairpin bool `json:"Hairpin"`
	// Timeout is how long a mapping lives without traffic that
	// refreshes it, by protocol.
	Timeout Timeouts `json:"Timeout"`
	// Refresh says which traffic refreshes a mapping. Records of format
	// 3 and before have none; labstate reads them as RefreshBoth, what
	// natlab then did (format 4 added it).
	Refresh Refresh `json:"Refresh"`
}

// Type names the behaviour with its classic name where one fits.
func (b Behaviour) Type() (Type, bool) { return TypeOf(b.Mapping, b.Filtering) }

// String describes the behaviour in one line, classic name first where one
// fits, for status output and logs.
func (b Behaviour) String() string {
	var s strings.Builder
	if t, ok := b.Type(); ok {
		s.WriteString(string(t))
	} else {
		fmt.Fprintf(&s, "mapping %s, filtering %s", b.Mapping, b.Filtering)
	}
	fmt.Fprintf(&s, ", ports %s", b.Ports)
	if b.PortRange != DefaultPortRange {
		fmt.Fprintf(&s, " %s", b.PortRange)
	}
	if b.Hairpin {
		s.WriteString(", hairpin")
	} else {
		s.WriteString(", no hairpin")
	}
	if b.Timeout.OnlyUDP() {
		fmt.Fprintf(&s, ", timeout %s", b.Timeout)
	} else {
		fmt.Fprintf(&s, ", timeouts %s", b.Timeout)
	}
	if b.Refresh == RefreshOutbound {
		s.WriteString(", refresh outbound")
	}
	return s.String()
}

// FormatDuration prints a duration the way nft does and people write
// timeouts: 2m, 1m30s, 30s500ms, 1d2h.
func FormatDuration(d time.Duration) string {
	var b strings.Builder
	units := []struct {
		suffix string
		size   time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}}
	for _, u := range units {
		if n := d / u.size; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.suffix)
			d -= n * u.size
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

func joinQuoted[T ~string](values []T) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = string(v)
	}
	return strings.Join(q, ", ")
}

// rank orders dependences from least to most strict.
func (d Dependence) rank() int {
	switch d {
	case EndpointIndependent:
		return 0
	case AddressDependent:
		return 1
	}
	return 2
}

// Compose is the behaviour a peer sees through inner NAT behind outer NAT
// (carrier-grade NAT): each layer can only make mapping and filtering
// stricter, and the outer NAT's port allocation shows unless it preserves
// the ports the inner one picked. A packet to the peer's own public
// endpoint loops back at the outer NAT, if that hairpins, and then comes
// to the inner NAT from the outer's public address, which only
// endpoint-independent filtering lets in.
func Compose(inner, outer Behaviour) Behaviour {
	b := outer
	if inner.Mapping.rank() > b.Mapping.rank() {
		b.Mapping = inner.Mapping
	}
	if inner.Filtering.rank() > b.Filtering.rank() {
		b.Filtering = inner.Filtering
	}
	if outer.Ports == PortPreserve {
		b.Ports = inner.Ports
	}
	b.Hairpin = outer.Hairpin && inner.Filtering == EndpointIndependent
	for _, k := range TimeoutKeys {
		*b.Timeout.Of(k) = min(*inner.Timeout.Of(k), *outer.Timeout.Of(k))
	}
	// Inbound packets refresh the pair only if both let them.
	if inner.Refresh == RefreshOutbound || outer.Refresh == RefreshOutbound {
		b.Refresh = RefreshOutbound
	}
	return b
}
