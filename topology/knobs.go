package topology

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/natlab/natlab/internal/suggest"
	"github.com/natlab/natlab/nat"
)

// knobs are the NAT behaviour settings a file gives, each with the value
// it was read from (nil when not given, or not valid) so that defaults and
// contradictions can be worked out once all keys are read.
type knobs struct {
	typ                  nat.Type
	mapping, filtering   nat.Dependence
	ports                nat.PortAllocation
	portRange            nat.PortRange
	hairpin              bool
	timeout              time.Duration
	typVal               *value
	mappingVal           *value
	filteringVal         *value
	portsVal, portRangeV *value
	hairpinVal           *value
	timeoutVal           *value

	// portMapping is "" or PortMappingNATPMP; portMappingBad says the
	// value was invalid, so that a portmap step from behind this NAT is
	// not reported again.
	portMapping    string
	portMappingBad bool
	// firewall6 is "" for off; firewall6Val is nil when not given.
	firewall6    nat.Dependence
	firewall6Val *value
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
	switch f.key {
	case "type":
		if t, ok := p.natType(v, path); ok {
			k.typ, k.typVal = t, v
		}
	case "mapping", "filtering":
		d, ok := p.dependence(v, path)
		switch {
		case !ok:
		case f.key == "mapping":
			k.mapping, k.mappingVal = d, v
		default:
			k.filtering, k.filteringVal = d, v
		}
	case "ports":
		if a, ok := p.portAllocation(v, path); ok {
			k.ports, k.portsVal = a, v
		}
	case "port-range":
		if r, ok := p.portRange(v, path); ok {
			k.portRange, k.portRangeV = r, v
		}
	case "hairpin":
		if b, ok := p.boolean(v, path); ok {
			k.hairpin, k.hairpinVal = b, v
		}
	case "timeout":
		if d, ok := p.duration(v, path, minTimeout, maxTimeout); ok {
			k.timeout, k.timeoutVal = d, v
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

const portMappingWant = "nat-pmp or none"

// portMapping reads how nodes behind a NAT can ask it for a mapping. It
// reports bad=true after reporting an invalid value.
func (p *parser) portMapping(v *value, path string) (mapping string, bad bool) {
	if v.kind == kindBool {
		p.errs.errorf(v.pos, "%s: want %s, not %s", path, portMappingWant, v.describe())
		return "", true
	}
	s, ok := p.str(v, path, portMappingWant)
	switch {
	case !ok:
		return "", true
	case s == PortMappingNATPMP:
		return s, false
	case s == "none":
		return "", false
	}
	msg := fmt.Sprintf("%s: unknown value %q; want %s", path, s, portMappingWant)
	switch lower := strings.ToLower(s); {
	case lower == "upnp" || lower == "pcp" || strings.HasPrefix(lower, "upnp-"):
		msg += "; natlab's nats speak NAT-PMP (RFC 6886) only"
	default:
		if sug := suggest.Closest(lower, []string{PortMappingNATPMP, "none"}); sug != "" {
			msg += "; did you mean " + sug + "?"
		}
	}
	p.errs.errorf(v.pos, "%s", msg)
	return "", true
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
		p.contradicts(n.path, base, "mapping", k.mapping, k.mappingVal)
		p.contradicts(n.path, base, "filtering", k.filtering, k.filteringVal)
	}
	b := nat.Behaviour{
		Mapping:   base.Mapping(),
		Filtering: base.Filtering(),
		Ports:     nat.PortPreserve,
		PortRange: nat.DefaultPortRange,
		// RFC 4787 REQ-9: a NAT MUST support hairpinning.
		Hairpin: true,
		Timeout: nat.DefaultTimeout,
	}
	if k.mappingVal != nil && k.typVal == nil {
		b.Mapping = k.mapping
	}
	if k.filteringVal != nil && k.typVal == nil {
		b.Filtering = k.filtering
	}
	typ := k.typ
	if k.typVal == nil {
		typ, _ = nat.TypeOf(b.Mapping, b.Filtering)
	}
	if typ != "" {
		b.Ports = typ.DefaultPorts()
	}
	if k.portsVal != nil {
		b.Ports = k.ports
	}
	if k.portRangeV != nil {
		b.PortRange = k.portRange
	}
	if k.hairpinVal != nil {
		b.Hairpin = k.hairpin
	}
	if k.timeoutVal != nil {
		b.Timeout = k.timeout
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
