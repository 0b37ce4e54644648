package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/natlab/natlab/internal/suggest"
)

// MaxStepNameLen is the longest step name, in characters: a name is one
// line of a report.
const MaxStepNameLen = 80

// DefaultSendPort is the port a send step's receiver listens on unless the
// step says otherwise.
const DefaultSendPort = 5000

// Limits of the durations steps take. A step's timeout under 100ms could
// not see one round trip through a NAT chain; a test that needs more than
// five minutes for one connection is stuck. A command may take longer,
// but not all day. A wait is for timers such as mapping timeouts, which a
// lab keeps short.
const (
	MinStepTimeout = 100 * time.Millisecond
	MaxStepTimeout = 5 * time.Minute
	MaxExecTimeout = time.Hour
	MinWait        = time.Millisecond
	MaxWait        = 10 * time.Minute
)

// stepsExample is the hint for a steps: value that is not a list.
const stepsExample = "[{punch: {between: [alice, bob]}}, {wait: 2s}]"

// isStepField reports whether key is a field of some kind of step.
func (p *parser) isStepField(key string) bool {
	for _, k := range p.kinds {
		if slices.Contains(k.Fields(), key) {
			return true
		}
	}
	return false
}

// readSteps reads the steps: list. Node references are checked only when
// the nodes could be read (nodesOK); the rest of each step always is.
func (p *parser) readSteps(e *entry) {
	v := e.val
	switch v.kind {
	case kindInvalid, kindNull:
		return
	case kindSeq:
	default:
		p.errs.errorf(v.pos, "steps: want a list of steps such as %s, not %s", stepsExample, v.describe())
		return
	}
	for i, item := range v.items {
		if s, ok := p.readStep(item, indexPath("steps", i)); ok {
			p.topo.Steps = append(p.topo.Steps, *s)
		}
	}
}

// readStep reads one item of steps:, a mapping whose one key is the kind.
func (p *parser) readStep(v *value, path string) (*Step, bool) {
	switch v.kind {
	case kindInvalid:
		return nil, false
	case kindMap:
	default:
		p.errs.errorf(v.pos, "%s: want a step such as {wait: 2s} or {punch: {between: [alice, bob]}}, not %s", path, v.describe())
		return nil, false
	}
	if len(v.entries) == 0 {
		p.errs.errorf(v.pos, "%s: empty step; want one of %s, such as {wait: 2s}", path, p.kinds.list())
		return nil, false
	}
	var kindEntry *entry
	for i := range v.entries {
		e := &v.entries[i]
		if p.kinds.Of(e.key) == nil {
			continue
		}
		if kindEntry != nil {
			p.errs.errorf(e.keyPos, "%s.%s: a step has one kind, and this one is %s; make %s a step of its own, a new - item", path, e.key, kindEntry.key, e.key)
			continue
		}
		kindEntry = e
	}
	var kind StepKind
	if kindEntry != nil {
		kind = p.kinds.Of(kindEntry.key)
	}
	// Keys that are fields rather than kinds were most likely meant to
	// go under the kind, or stand for a kind left out.
	fieldsOnly, unknown := false, false
	for _, e := range v.entries {
		switch {
		case p.kinds.Of(e.key) != nil:
		case kind != nil && kind.Scalar() && p.isStepField(e.key):
			what := "value"
			if w, ok := kind.(interface{ ValueWhat() string }); ok {
				what = w.ValueWhat()
			}
			msg := fmt.Sprintf("%s.%s: %s takes only its %s, as in {%s}", path, e.key, StepWhat(kind.Key()), what, kind.Example())
			if e.key == "name" {
				msg += fmt.Sprintf(`; its name is made from it, such as "%s"`, strings.ReplaceAll(kind.Example(), ": ", " "))
			}
			p.errs.errorf(e.keyPos, "%s", msg)
		case kind != nil && slices.Contains(kind.Fields(), e.key):
			p.errs.errorf(e.keyPos, "%s.%s: %s is a field of the step, so it goes under %s: with the others, as in {%s, %s: ...}}",
				path, e.key, e.key, kind.Key(), strings.TrimSuffix(kind.Example(), "}"), e.key)
		case kind == nil && p.isStepField(e.key):
			fieldsOnly = true
		case kind != nil && p.isStepField(e.key):
			p.errs.errorf(e.keyPos, "%s.%s: not a step kind, nor a field of %s, which takes %s",
				path, e.key, StepWhat(kind.Key()), strings.Join(kind.Fields(), ", "))
		default:
			unknown = true
			msg := fmt.Sprintf("%s.%s: unknown step kind; want %s", path, e.key, p.kinds.list())
			if s := suggest.Closest(e.key, p.kinds.Keys()); s != "" {
				msg += "; did you mean " + s + "?"
			}
			p.errs.errorf(e.keyPos, "%s", msg)
		}
	}
	if kind == nil {
		if fieldsOnly && !unknown {
			p.errs.errorf(v.pos, "%s: missing the step kind; a step is KIND: {FIELDS} with KIND one of %s, such as {punch: {between: [alice, bob]}}", path, p.kinds.list())
		}
		return nil, false
	}

	f := &StepFields{p: p, kind: kind, pos: kindEntry.keyPos, path: joinPath(path, kindEntry.key), ok: true, family: FamilyIPv4}
	errsBefore := len(p.errs)
	if kind.Scalar() {
		f.scalar = kindEntry.val
		spec, name := kind.Read(f)
		return &Step{Kind: kind.Key(), Name: name, Pos: f.pos, Spec: spec}, f.ok && len(p.errs) == errsBefore
	}
	switch fv := kindEntry.val; fv.kind {
	case kindInvalid:
		return nil, false
	case kindNull:
		// Nothing given: reported below as missing fields.
		f.fields = &value{kind: kindMap, pos: kindEntry.keyPos}
	case kindMap:
		f.fields = fv
	default:
		p.errs.errorf(fv.pos, "%s: want the step's fields, as in %s, not %s", f.path, kind.Example(), fv.describe())
		return nil, false
	}
	for _, e := range f.fields.entries {
		if !slices.Contains(kind.Fields(), e.key) {
			p.unknownKey(e, joinPath(f.path, e.key), StepWhat(kind.Key()), kind.Fields())
		}
	}
	var missing []string
	for _, key := range kind.Required() {
		if f.field(key) == nil {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		f.Errorf(f.pos, "%s: missing %s; for example %s", f.path, strings.Join(missing, " and "), kind.Example())
	}
	spec, name := kind.Read(f)
	if v := f.field("name"); v != nil {
		name = f.name(v)
	}
	return &Step{Kind: kind.Key(), Name: name, Pos: f.pos, Spec: spec}, f.ok && len(p.errs) == errsBefore
}

// StepFields is what a step kind reads its step from: the fields the file
// gives, and readers for the values steps share (node references,
// servers, ports, durations, addresses, outcomes). Each reader reports
// what is wrong with its field, with the field's path, line and column,
// and returns the zero value (or the default) then; a kind need not check
// for errors, only read its fields in the order its messages should come.
type StepFields struct {
	p    *parser
	kind StepKind
	pos  Position
	path string
	// fields is the step's mapping; scalar the value of a scalar kind.
	fields, scalar *value
	// family is the step's address family once Family has read it.
	family string
	// familyBad says the step's family: was invalid, so that addresses
	// are not checked against a family the file did not mean.
	familyBad bool
	// ok is false once a value of the step turned out unusable, whether
	// that was reported here or before (an unknown alias, a node whose
	// kind is wrong).
	ok bool
}

// field returns the value of key, or nil when the step does not give it.
func (r *StepFields) field(key string) *value {
	if r.fields == nil {
		return nil
	}
	if e := r.fields.get(key); e != nil {
		return e.val
	}
	return nil
}

// Path is where the step's fields are, for messages: steps[2].punch.
func (r *StepFields) Path() string { return r.path }

// Pos is where the step's kind is written.
func (r *StepFields) Pos() Position { return r.pos }

// Has says whether the step gives key.
func (r *StepFields) Has(key string) bool { return r.field(key) != nil }

// At is where the value of key is, or the step's position when it has
// none.
func (r *StepFields) At(key string) Position {
	if v := r.field(key); v != nil {
		return v.pos
	}
	return r.pos
}

// Errorf reports a problem with the step at pos; the step is then not
// used.
func (r *StepFields) Errorf(pos Position, format string, args ...any) {
	r.errorf(pos, format, args...)
}

// errorf reports a problem with the step.
func (r *StepFields) errorf(pos Position, format string, args ...any) {
	r.ok = false
	r.p.errs.errorf(pos, format, args...)
}

// check notes the result of a parser call that reports its own problems.
func (r *StepFields) check(ok bool) {
	r.ok = r.ok && ok
}

// nodeField reads key as the name of a node w accepts: the name as
// written, and whether it names a usable node of that kind.
func (r *StepFields) nodeField(key string, w nodeWant) (string, bool) {
	v := r.field(key)
	if v == nil {
		return "", false
	}
	name, n := r.node(v, joinPath(r.path, key), w)
	return name, n != nil
}

// Host reads key as the name of a host.
func (r *StepFields) Host(key string) (string, bool) { return r.nodeField(key, hostsOnly) }

// HostOrServer reads key as the name of a host or a server.
func (r *StepFields) HostOrServer(key string) (string, bool) { return r.nodeField(key, hostOrServer) }

// NAT reads key as the name of a nat.
func (r *StepFields) NAT(key string) (string, bool) { return r.nodeField(key, natsOnly) }

// NodeOrInternet reads key as the name of any node, or internet for the
// internet segment's own namespace.
func (r *StepFields) NodeOrInternet(key string) (string, bool) { return r.nodeField(key, anyNode) }

// Server reads key as the name of a server that runs svc, or picks the
// first such server in the file when the step leaves it out. When there
// is none at all and the step needs one, that is reported at the step.
// ok says the server is usable.
func (r *StepFields) Server(key string, svc Service, needed bool) (name string, ok bool) {
	name, n := r.server(key, svc, needed)
	return name, n != nil
}

// Flag reads an optional boolean field.
func (r *StepFields) Flag(key string) bool {
	v := r.field(key)
	if v == nil {
		return false
	}
	b, ok := r.p.boolean(v, joinPath(r.path, key))
	r.check(ok)
	return b
}

// Duration reads an optional duration field from lo to hi; def when the
// step leaves it out.
func (r *StepFields) Duration(key string, lo, hi, def time.Duration) time.Duration {
	v := r.field(key)
	if v == nil {
		return def
	}
	d, ok := r.p.duration(v, joinPath(r.path, key), lo, hi)
	r.check(ok)
	return d
}

// Timeout reads timeout:, from MinStepTimeout to hi; def when left out.
func (r *StepFields) Timeout(def, hi time.Duration) time.Duration {
	return r.Duration("timeout", MinStepTimeout, hi, def)
}

// ScalarDuration reads the value of a scalar kind as a duration from lo
// to hi.
func (r *StepFields) ScalarDuration(lo, hi time.Duration) time.Duration {
	d, ok := r.p.duration(r.scalar, r.path, lo, hi)
	r.check(ok)
	return d
}

// Port reads an optional port field; def when the step leaves it out.
func (r *StepFields) Port(key string, def uint16) uint16 {
	v := r.field(key)
	if v == nil {
		return def
	}
	port, ok := r.p.port(v, joinPath(r.path, key))
	r.check(ok)
	return port
}

// Protocol reads an optional protocol field; def when left out.
func (r *StepFields) Protocol(key string, def Protocol) Protocol {
	v := r.field(key)
	if v == nil {
		return def
	}
	proto, ok := r.p.protocol(v, joinPath(r.path, key))
	r.check(ok)
	return proto
}

// IsMap says whether key holds a mapping, such as a stun step's expected
// classification.
func (r *StepFields) IsMap(key string) bool {
	v := r.field(key)
	return v != nil && v.kind == kindMap
}

// Word reads key as text, for a kind that checks the words itself; ok is
// false when it is left out or not text (which is reported).
func (r *StepFields) Word(key, want string) (string, bool) {
	v := r.field(key)
	if v == nil {
		return "", false
	}
	switch {
	case v.kind == kindInvalid:
		r.ok = false
		return "", false
	case !v.isScalar():
		r.errorf(v.pos, "%s: want %s, not %s", joinPath(r.path, key), want, v.describe())
		return "", false
	}
	return v.text, true
}

// Outcome reads expect: as one of words, def when it is left out. want
// says what it takes, for messages; hints answer words that belong to
// other kinds of step ("ok": "did you mean delivered?").
func (r *StepFields) Outcome(words []string, def, want string, hints map[string]string) string {
	word, ok := r.Word("expect", want)
	if !ok {
		if r.field("expect") == nil {
			return def
		}
		return ""
	}
	if !slices.Contains(words, word) {
		msg := fmt.Sprintf("%s: unknown outcome %q; want %s", joinPath(r.path, "expect"), word, want)
		if hint := hints[word]; hint != "" {
			msg += "; " + hint
		} else if sug := suggest.Closest(word, words); sug != "" {
			msg += "; did you mean " + sug + "?"
		}
		r.errorf(r.field("expect").pos, "%s", msg)
		return ""
	}
	return word
}

// NeedsServer reports, at key, that the step needs a server running svc
// for what key says (word) when the lab has none.
func (r *StepFields) NeedsServer(key, word string, svc Service) {
	v := r.field(key)
	if v == nil || !r.p.servicesKnown() || r.p.firstServer(svc) != nil {
		return
	}
	r.errorf(v.pos, "%s: %s needs a server with services: [%s], and the lab has none; add one such as %s: {kind: server, services: [%s]}", joinPath(r.path, key), word, svc, svc, svc)
}

// name reads a step's name:, a one-line label.
func (r *StepFields) name(v *value) string {
	path := joinPath(r.path, "name")
	text, ok := r.p.str(v, path, "a label for reports")
	if !ok {
		r.ok = false
		return ""
	}
	// A block scalar (name: |) ends in a newline; that is still one line.
	text = strings.TrimSpace(text)
	switch n := utf8.RuneCountInString(text); {
	case text == "":
		r.errorf(v.pos, "%s: empty name; leave name out to have one made from the step", path)
	case strings.ContainsFunc(text, isControl):
		r.errorf(v.pos, "%s: want one line of text; a step's name is a line of its report", path)
	case n > MaxStepNameLen:
		r.errorf(v.pos, "%s: %d characters; a step name is at most %d", path, n, MaxStepNameLen)
	}
	return text
}

// FormatDuration writes d the short way people write it in a file: 2m,
// not 2m0s.
func FormatDuration(d time.Duration) string { return fmtDuration(d) }

// FamilyWord is how a step's name shows its family: nothing for the
// default.
func FamilyWord(family string) string {
	if family == FamilyIPv6 {
		return "ipv6 "
	}
	return ""
}

// Between reads between:, the two distinct hosts a step connects, in the
// order the file gives them.
func (r *StepFields) Between() [2]string {
	var pair [2]string
	v := r.field("between")
	if v == nil {
		return pair
	}
	path := joinPath(r.path, "between")
	switch v.kind {
	case kindInvalid:
		r.ok = false
		return pair
	case kindSeq:
	default:
		r.errorf(v.pos, "%s: want a list of two hosts such as [alice, bob], not %s", path, v.describe())
		return pair
	}
	switch len(v.items) {
	case 2:
	case 0:
		r.errorf(v.pos, "%s: want two hosts such as [alice, bob], not an empty list", path)
	default:
		r.errorf(v.pos, "%s: want two hosts such as [alice, bob], not a list of %d", path, len(v.items))
	}
	seen := make(map[string]int)
	for i, item := range v.items {
		ipath := indexPath(path, i)
		name, _ := r.node(item, ipath, hostsOnly)
		if name == "" {
			continue
		}
		if first, dup := seen[name]; dup {
			r.errorf(item.pos, "%s: %s is already listed at %s; want two different hosts", ipath, name, indexPath(path, first))
			continue
		}
		seen[name] = i
		if i < len(pair) {
			pair[i] = name
		}
	}
	return pair
}

// STUNServers reads key as two or more distinct STUN servers whose view
// of one socket a stun step compares; from is the step's node, which
// cannot be one of them (fromOK: it is a usable node).
func (r *StepFields) STUNServers(key, from string, fromOK bool) []string {
	v := r.field(key)
	if v == nil {
		return nil
	}
	path := joinPath(r.path, key)
	if r.field("server") != nil {
		r.errorf(v.pos, "%s: server: names a STUN server already; give either server: to ask one, or servers: to compare what two or more see", path)
	}
	switch v.kind {
	case kindInvalid:
		r.ok = false
		return nil
	case kindSeq:
	default:
		r.errorf(v.pos, "%s: want a list of two or more servers with services: [stun], such as [stun1, stun2], not %s", path, v.describe())
		return nil
	}
	switch len(v.items) {
	case 0:
		r.errorf(v.pos, "%s: want two or more servers with services: [stun], such as [stun1, stun2], not an empty list", path)
	case 1:
		one := "stun1"
		if item := v.items[0]; item.isScalar() {
			one = item.text
		}
		r.errorf(v.pos, "%s: want two or more servers to compare, not a list of 1; to ask one server, write server: %s", path, one)
	}
	var servers []string
	seen := make(map[string]int)
	for i, item := range v.items {
		ipath := indexPath(path, i)
		name, n := r.node(item, ipath, serverWith(ServiceSTUN))
		if name == "" {
			continue
		}
		if first, dup := seen[name]; dup {
			r.errorf(item.pos, "%s: %s is already listed at %s; want different servers", ipath, name, indexPath(path, first))
			continue
		}
		seen[name] = i
		servers = append(servers, name)
		if fromOK && n != nil && name == from {
			r.errorf(r.field("from").pos, "%s.from: %s is one of this step's STUN servers too; a node cannot find its public address by asking itself, so leave it out of servers: or run the step from a host", r.path, name)
		}
	}
	return servers
}

// UpgradeServers reads the servers of an upgrade step: server:, the relay
// to start on (a server with derp or turn; by default the first with
// derp, else with turn), whether it is a DERP server, and the first
// server with stun, to find the direct path with.
func (r *StepFields) UpgradeServers() (relay string, derp bool, stun string) {
	p := r.p
	derp = true
	if v := r.field("server"); v != nil {
		// A server with derp or turn.
		name, n := r.node(v, joinPath(r.path, "server"), nodeWant{kinds: []Kind{KindServer}})
		switch {
		case n == nil:
		case slices.Contains(n.node.Services, ServiceDERP):
			relay = name
		case slices.Contains(n.node.Services, ServiceTURN):
			relay, derp = name, false
		default:
			r.errorf(v.pos, "%s.server: %s runs neither derp nor turn, and upgrade starts on one of them", r.path, name)
		}
		if n != nil && relay == "" && !n.servicesBad {
			r.ok = false
		}
	} else if p.firstServer(ServiceDERP) != nil {
		relay, _ = r.defaultServer(ServiceDERP, true)
	} else {
		derp = false
	}
	if r.field("server") == nil && !derp && p.servicesKnown() && p.firstServer(ServiceTURN) == nil && p.firstServer(ServiceSTUN) == nil {
		// One message for both.
		r.errorf(r.pos, "%s: upgrade needs a server with services: [derp] or [turn] to start on and one with services: [stun] to find the direct path, and the lab has neither; add one such as relay: {kind: server, services: [derp, stun]}", r.path)
	} else {
		if r.field("server") == nil && !derp {
			relay, _ = r.defaultServer(ServiceTURN, true)
		}
		stun, _ = r.defaultServer(ServiceSTUN, true)
	}
	return relay, derp, stun
}

// NATPMPHost reads key as a host right behind a nat it can ask for a
// mapping with NAT-PMP.
func (r *StepFields) NATPMPHost(key string) string {
	v := r.field(key)
	if v == nil {
		return ""
	}
	path := joinPath(r.path, key)
	name, from := r.node(v, path, hostsOnly)
	if from == nil {
		return name
	}
	parent := from.parent
	switch {
	case !from.uplinkKnown:
		// Its behind: was already reported.
		r.ok = false
	case parent == nil:
		var names []string
		for _, n := range r.p.nodes {
			if n.ok && n.node.Kind == KindHost && n.parent != nil && n.parent.node.NAT.PortMapping == PortMappingNATPMP {
				names = append(names, n.node.Name)
			}
		}
		msg := ", and no nat has port-mapping: nat-pmp"
		if len(names) > 0 {
			slices.Sort(names)
			msg = "; the hosts behind one are " + listNames(names)
		}
		r.errorf(v.pos, "%s: %s is on the internet, so no nat maps ports for it; want a host behind a nat with port-mapping: nat-pmp%s", path, from.node.Name, msg)
	case parent.nat.knobs.portMappingBad:
		// Its port-mapping: was already reported.
		r.ok = false
	case parent.node.NAT.PortMapping != PortMappingNATPMP:
		r.errorf(v.pos, "%s: %s is behind %s, whose port-mapping is none; add port-mapping: nat-pmp to %s", path, from.node.Name, parent.node.Name, parent.node.Name)
	}
	return name
}

// MinTunnelPort is the lowest public port a tunnel server gives out: the
// ports below are the well-known ones.
const MinTunnelPort = 1024

// TunnelPublicPort reads key as the public port a tunnel step asks its
// server for; 0, for the server to pick one, when it is left out.
func (r *StepFields) TunnelPublicPort(key string) uint16 {
	v := r.field(key)
	if v == nil {
		return 0
	}
	path := joinPath(r.path, key)
	const pick = "leave public-port out to have the tunnel server pick one"
	n, ok := v.integer()
	switch {
	case v.kind == kindInvalid:
		r.ok = false
	case !ok:
		r.errorf(v.pos, "%s: want a port number from %d to 65535, not %s; %s", path, MinTunnelPort, v.describe(), pick)
	case 0 < n && n < MinTunnelPort:
		r.errorf(v.pos, "%s: port %s is below %d; a tunnel server gives out ports %d to 65535, so choose one of those, or %s", path, v.text, MinTunnelPort, MinTunnelPort, pick)
	case n < MinTunnelPort || n > 65535:
		r.errorf(v.pos, "%s: port %s is out of range; want %d to 65535, or %s", path, v.text, MinTunnelPort, pick)
	default:
		return uint16(n)
	}
	return 0
}

// tableExpectKeys are the keys a table step's expect takes.
var tableExpectKeys = formatKeys[TableExpect]()

// TableExpectWant says what a table step's expect takes.
const TableExpectWant = "the size of the table, such as {mappings: 2, flows: 3}"

// TableCounts reads key as how many mappings and flows a table step
// expects; nil for a count not given.
func (r *StepFields) TableCounts(key string) (mappings, flows *int) {
	v := r.field(key)
	if v == nil {
		return nil, nil
	}
	path := joinPath(r.path, key)
	p := r.p
	switch v.kind {
	case kindInvalid:
		r.ok = false
		return nil, nil
	case kindMap:
	default:
		r.errorf(v.pos, "%s: want %s, not %s", path, TableExpectWant, v.describe())
		return nil, nil
	}
	if len(v.entries) == 0 {
		r.errorf(v.pos, "%s: empty expectation; give %s or both, such as {mappings: 2}, or leave expect out to just read the table", path, strings.Join(tableExpectKeys, ", "))
		return nil, nil
	}
	for _, e := range v.entries {
		epath := joinPath(path, e.key)
		switch e.key {
		case "mappings":
			mappings = r.count(e.val, epath)
		case "flows":
			flows = r.count(e.val, epath)
		default:
			r.ok = false
			p.unknownKey(e, epath, "a table step's expect", tableExpectKeys)
		}
	}
	return mappings, flows
}

// maxCount is the largest count a table step expects.
const maxCount = 65535

// count reads a number of table entries, or returns nil after reporting
// why it is not one.
func (r *StepFields) count(v *value, path string) *int {
	n, ok := v.integer()
	switch {
	case v.kind == kindInvalid:
		r.ok = false
	case !ok:
		r.errorf(v.pos, "%s: want a number from 0 to %d, not %s", path, maxCount, v.describe())
	case n < 0 || n > maxCount:
		r.errorf(v.pos, "%s: %s is out of range; want 0 to %d", path, v.text, maxCount)
	default:
		c := int(n)
		return &c
	}
	return nil
}

const commandWant = `a shell command such as "ping -c1 203.0.113.10", or a list such as [ping, -c1, 203.0.113.10]`

// Command reads key as what an exec step runs: one string for sh -c
// (shell), or a program and its arguments.
func (r *StepFields) Command(key string) (argv []string, shell bool) {
	v := r.field(key)
	if v == nil {
		return nil, false
	}
	path := joinPath(r.path, key)
	switch {
	case v.kind == kindInvalid:
		r.ok = false
	case v.isScalar():
		if strings.TrimSpace(v.text) == "" {
			r.errorf(v.pos, "%s: empty command; want %s", path, commandWant)
			return nil, false
		}
		if strings.ContainsRune(v.text, 0) {
			r.errorf(v.pos, "%s: contains a NUL character, which no command can hold", path)
			return nil, false
		}
		return []string{v.text}, true
	case v.kind == kindSeq:
		if len(v.items) == 0 {
			r.errorf(v.pos, "%s: empty list; want a program and its arguments, such as [ping, -c1, 203.0.113.10]", path)
			return nil, false
		}
		argv := make([]string, 0, len(v.items))
		for i, item := range v.items {
			ipath := indexPath(path, i)
			arg, ok := r.p.str(item, ipath, "an argument")
			switch {
			case !ok:
				r.ok = false
			case i == 0 && strings.TrimSpace(arg) == "":
				r.errorf(item.pos, "%s: empty program name; the first item is the program to run, such as ping", ipath)
			case strings.ContainsRune(arg, 0):
				r.errorf(item.pos, "%s: contains a NUL character, which no argument can hold", ipath)
			default:
				argv = append(argv, arg)
			}
		}
		return argv, false
	default:
		r.errorf(v.pos, "%s: want %s, not %s", path, commandWant, v.describe())
	}
	return nil, false
}

// classificationKeys are the keys an expected classification takes.
var classificationKeys = formatKeys[ClassificationExpect]()

// Classification reads key as the NAT behaviour a stun step expects
// discovery to report, from server, the step's STUN server.
func (r *StepFields) Classification(key, server string) *Classification {
	v := r.field(key)
	if v == nil {
		return nil
	}
	path := joinPath(r.path, key)
	p := r.p
	if len(v.entries) == 0 {
		r.errorf(v.pos, "%s: empty classification; give at least one of %s, or write ok or fail", path, strings.Join(classificationKeys, ", "))
		return nil
	}
	c := &Classification{}
	var mappingVal, filteringVal *value
	typeGiven := false
	for _, e := range v.entries {
		epath := joinPath(path, e.key)
		switch e.key {
		case "type":
			t, ok := p.natType(e.val, epath)
			c.Type, typeGiven = t, ok
			r.check(ok)
		case "mapping", "filtering":
			d, ok := p.dependence(e.val, epath)
			r.check(ok)
			switch {
			case !ok:
			case e.key == "mapping":
				c.Mapping, mappingVal = d, e.val
			default:
				c.Filtering, filteringVal = d, e.val
			}
		case "ports":
			a, ok := p.portAllocation(e.val, epath)
			c.Ports = a
			r.check(ok)
		case "hairpin":
			if b, ok := p.boolean(e.val, epath); ok {
				c.Hairpin = &b
			} else {
				r.ok = false
			}
		default:
			r.ok = false
			p.unknownKey(e, epath, "a classification", classificationKeys)
		}
	}
	if typeGiven {
		p.contradicts(path, c.Type, "mapping", c.Mapping, mappingVal)
		p.contradicts(path, c.Type, "filtering", c.Filtering, filteringVal)
		c.Mapping, c.Filtering = c.Type.Mapping(), c.Type.Filtering()
	}
	// RFC 5780 discovery, which starts with the mapping test, needs
	// answers from a second address.
	if n := p.byName[server]; p.nodesOK && n != nil && serverWith(ServiceSTUN).accepts(n) && n.addrsGiven && len(n.addrs) == 1 {
		r.errorf(v.pos, "%s: classifying a NAT (RFC 5780) needs a STUN server with two addresses, and %s has one; give it a second, or leave its addresses out to get two",
			path, n.node.Name)
	}
	return c
}

// ShellQuote quotes an argument for showing a command, where needed.
func ShellQuote(arg string) string {
	if arg != "" && !strings.ContainsFunc(arg, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) {
		return arg
	}
	return strconv.Quote(arg)
}

// Clip makes s one line of at most n characters, ending in ... when cut.
func Clip(s string, n int) string {
	line, _, more := strings.Cut(strings.TrimSpace(s), "\n")
	line = strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(line))
	if more || utf8.RuneCountInString(line) > n {
		runes := []rune(line)
		line = string(runes[:min(len(runes), n-3)]) + "..."
	}
	return line
}

// nodeWant says which nodes a field of a step accepts.
type nodeWant struct {
	// kinds are the kinds accepted; nil means any.
	kinds []Kind
	// service is one a server must run, if any.
	service Service
	// internet says the internet segment is accepted too.
	internet bool
}

var (
	hostsOnly    = nodeWant{kinds: []Kind{KindHost}}
	hostOrServer = nodeWant{kinds: []Kind{KindHost, KindServer}}
	natsOnly     = nodeWant{kinds: []Kind{KindNAT}}
	anyNode      = nodeWant{internet: true}
	// nodesOnly is any node, but not the internet segment.
	nodesOnly = nodeWant{}
)

func serverWith(svc Service) nodeWant {
	return nodeWant{kinds: []Kind{KindServer}, service: svc}
}

// what names one accepted node: "a host or a server".
func (w nodeWant) what() string {
	switch {
	case w.service != "":
		return "a server with services: [" + string(w.service) + "]"
	case w.kinds == nil:
		return "a node"
	}
	parts := make([]string, len(w.kinds))
	for i, k := range w.kinds {
		parts[i] = "a " + string(k)
	}
	return strings.Join(parts, " or ")
}

// plural names the accepted nodes: "the hosts and servers".
func (w nodeWant) plural() string {
	switch {
	case w.service != "":
		return "the servers with " + string(w.service)
	case w.kinds == nil:
		return "the nodes"
	}
	parts := make([]string, len(w.kinds))
	for i, k := range w.kinds {
		parts[i] = string(k) + "s"
	}
	return "the " + strings.Join(parts, " and ")
}

// none says that the lab has no accepted node.
func (w nodeWant) none() string {
	switch {
	case w.service != "":
		return "no server runs " + string(w.service)
	case w.kinds == nil:
		return "the lab has no nodes"
	}
	parts := make([]string, len(w.kinds))
	for i, k := range w.kinds {
		parts[i] = string(k) + "s"
	}
	return "the lab has no " + strings.Join(parts, " or ")
}

func (w nodeWant) kindOK(n *nodeSpec) bool {
	return w.kinds == nil || slices.Contains(w.kinds, n.node.Kind)
}

func (w nodeWant) accepts(n *nodeSpec) bool {
	return n.ok && w.kindOK(n) && (w.service == "" || slices.Contains(n.node.Services, w.service))
}

// candidates says which nodes w accepts, for messages: "; the hosts are
// alice, bob" or ", and the lab has no hosts".
func (p *parser) candidates(w nodeWant) string {
	var names []string
	for _, n := range p.nodes {
		if w.accepts(n) {
			names = append(names, n.node.Name)
		}
	}
	if len(names) == 0 {
		return ", and " + w.none()
	}
	slices.Sort(names)
	msg := "; " + w.plural() + " are " + listNames(names)
	if w.internet {
		msg += ", and internet for the internet segment"
	}
	return msg
}

// node reads the name of a node that w accepts. It returns the name when
// v is one, and the node when it exists and is usable; problems with it
// are reported, but not again for a node whose own definition was.
func (r *StepFields) node(v *value, path string, w nodeWant) (string, *nodeSpec) {
	p := r.p
	name, ok := p.str(v, path, "the name of "+w.what())
	if !ok {
		r.ok = false
		return "", nil
	}
	if !p.nodesOK || name == Internet && w.internet {
		return name, nil
	}
	n, found := p.byName[name]
	switch {
	case name == Internet:
		if !found {
			r.errorf(v.pos, "%s: internet is the internet segment, not a node%s", path, p.candidates(w))
		}
		// Otherwise the node's reserved name was already reported.
		r.ok = false
	case !found:
		r.errorf(v.pos, "%s: no node named %q%s", path, name, p.candidates(w))
	case !n.ok:
		// Its kind was already reported.
		r.ok = false
	case !w.kindOK(n):
		r.errorf(v.pos, "%s: %s is a %s, not %s%s", path, name, n.node.Kind, w.what(), p.candidates(w))
	case w.service != "" && !slices.Contains(n.node.Services, w.service):
		switch {
		case n.servicesBad:
			// Its services were already reported.
			r.ok = false
		case p.firstServer(w.service) == nil:
			r.errorf(v.pos, "%s: %s does not run %s, and no server does; add %s to its services", path, name, w.service, w.service)
		default:
			r.errorf(v.pos, "%s: %s does not run %s%s", path, name, w.service, p.candidates(w))
		}
	default:
		return name, n
	}
	return name, nil
}

// server reads the field key naming a server that runs svc, or picks the
// first such server in the file; it returns nil when there is no usable
// one. When there is none at all and the step needs one, that is reported
// at the step.
func (r *StepFields) server(key string, svc Service, needed bool) (string, *nodeSpec) {
	if v := r.field(key); v != nil {
		return r.node(v, joinPath(r.path, key), serverWith(svc))
	}
	return r.defaultServer(svc, needed)
}

// defaultServer picks the first server in the file that runs svc; it
// reports at the step when there is none and the step needs one.
func (r *StepFields) defaultServer(svc Service, needed bool) (string, *nodeSpec) {
	if !r.p.nodesOK {
		return "", nil
	}
	if n := r.p.firstServer(svc); n != nil {
		return n.node.Name, n
	}
	if needed && r.p.servicesKnown() {
		r.errorf(r.pos, "%s: %s needs a server with services: [%s], and the lab has none; add one such as %s: {kind: server, services: [%s]}",
			r.path, r.kind.Key(), svc, svc, svc)
	}
	return "", nil
}

// firstServer returns the first server in the file that runs svc, or nil.
func (p *parser) firstServer(svc Service) *nodeSpec {
	for _, n := range p.nodes {
		if n.ok && n.node.Kind == KindServer && slices.Contains(n.node.Services, svc) {
			return n
		}
	}
	return nil
}

// servicesKnown says whether every node's services are known, so that a
// missing server is a problem of its own and not of a node or services:
// list already reported.
func (p *parser) servicesKnown() bool {
	if !p.nodesOK {
		return false
	}
	for _, n := range p.nodes {
		if !n.ok || n.servicesBad {
			return false
		}
	}
	return true
}

// Family reads family:, the address family of a step, ipv4 by default.
// The addresses SendTo and SeenAs read are of this family, so it is read
// first.
func (r *StepFields) Family() string {
	r.family = r.readFamily()
	return r.family
}

func (r *StepFields) readFamily() string {
	v := r.field("family")
	if v == nil {
		return FamilyIPv4
	}
	path := joinPath(r.path, "family")
	s, ok := r.p.str(v, path, "ipv4 or ipv6")
	switch {
	case !ok:
	case s == FamilyIPv4:
		return s
	case s == FamilyIPv6:
		if !r.p.inet6Set {
			r.errorf(v.pos, "%s: the lab is IPv4 only; add internet6: such as %s at the top level to make it dual stack", path, internet6Example)
		}
		return s
	default:
		msg := fmt.Sprintf("%s: unknown family %q; want ipv4 or ipv6", path, s)
		if sug := familyHint(s); sug != "" {
			msg += "; did you mean " + sug + "?"
		}
		r.errorf(v.pos, "%s", msg)
	}
	r.ok, r.familyBad = false, true
	return FamilyIPv4
}

// familyHint guesses the family meant by another spelling: IPv6, inet6,
// v4, 6.
func familyHint(s string) string {
	lower := strings.ToLower(strings.TrimSpace(s))
	switch {
	case lower == FamilyIPv4 || lower == FamilyIPv6:
		return lower
	case strings.HasSuffix(lower, "6"):
		return FamilyIPv6
	case strings.HasSuffix(lower, "4"), lower == "inet":
		return FamilyIPv4
	case suggest.Distance(lower, FamilyIPv4) == suggest.Distance(lower, FamilyIPv6):
		// As close to both, such as ipv7: no guess.
		return ""
	}
	return suggest.Closest(lower, []string{FamilyIPv4, FamilyIPv6})
}

// isIPv6Text says whether an address as written is meant as IPv6: it has
// more than one colon, or brackets.
func isIPv6Text(s string) bool {
	return strings.Count(s, ":") > 1 || strings.HasPrefix(s, "[")
}

// example6 is an IPv6 address for messages: the internet's first.
func (p *parser) example6() string {
	if p.inet6OK {
		return hostAddr6(p.topo.Internet6Segment, 1).String()
	}
	return "2001:db8::1"
}

// wrongFamily reports target, an address of family got, when the step
// sends over the other family; want says what the field takes.
func (r *StepFields) wrongFamily(v *value, path, target, got, want string) bool {
	if r.familyBad || r.family == got {
		return false
	}
	if got == FamilyIPv6 {
		msg := fmt.Sprintf("%s: %q is IPv6, and this step sends over IPv4; add family: ipv6", path, target)
		if !r.p.inet6Set {
			msg += fmt.Sprintf(", and internet6: such as %s at the top level to make the lab dual stack", internet6Example)
		}
		r.errorf(v.pos, "%s", msg)
		return true
	}
	r.errorf(v.pos, "%s: %s is IPv4, and this step sends over IPv6; want %s, or leave family out to send over IPv4", path, target, want)
	return true
}

// addr6Text reads an IPv6 address written in a step: ADDRESS, or
// [ADDRESS]:PORT. The port is 0 when none is given, which is an error when
// needPort is set; want says what the field takes.
func (r *StepFields) addr6Text(v *value, path, target, want string, needPort bool) (netip.AddrPort, bool) {
	text, portText, hasPort := target, "", false
	if strings.HasPrefix(target, "[") {
		inner, rest, found := strings.Cut(target[1:], "]")
		if !found || rest != "" && !strings.HasPrefix(rest, ":") {
			r.errorf(v.pos, "%s: invalid address %q; want %s", path, target, want)
			return netip.AddrPort{}, false
		}
		text = inner
		if rest != "" {
			portText, hasPort = rest[1:], true
		}
	}
	a, err := netip.ParseAddr(text)
	switch {
	case err != nil || !a.Is6():
		r.errorf(v.pos, "%s: invalid IPv6 address %q; want %s", path, text, want)
	case a.Zone() != "":
		r.errorf(v.pos, "%s: %s has a zone, which no address of a lab has; want %s", path, a, want)
	case needPort && !hasPort:
		r.errorf(v.pos, "%s: %s has no port; want [ADDRESS]:PORT such as [%s]:%d", path, a, a, DefaultSendPort)
	default:
		var port uint64
		if hasPort {
			port, err = strconv.ParseUint(portText, 10, 16)
			if err != nil || port == 0 {
				alone := ""
				if !needPort {
					alone = ", or the address alone for any port"
				}
				r.errorf(v.pos, "%s: invalid port %q in %q; want [ADDRESS]:PORT with a port from 1 to 65535%s", path, portText, target, alone)
				return netip.AddrPort{}, false
			}
		}
		if pfx, what, ok := reserved6(a); ok {
			r.errorf(v.pos, "%s: %s is in %s, the %s range, where no node of a lab has an address", path, a, pfx, what)
			return netip.AddrPort{}, false
		}
		if r.p.inet6OK && !r.p.topo.Internet6.Contains(a) {
			r.errorf(v.pos, "%s: %s is outside %s, internet6, which holds every IPv6 address of the lab", path, a, r.p.topo.Internet6)
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(a, uint16(port)), true
	}
	return netip.AddrPort{}, false
}

// seenAsWant says what a send step's seen-as: takes.
func (r *StepFields) seenAsWant() string {
	if r.family == FamilyIPv6 {
		return fmt.Sprintf("a node, an IPv6 address, or [ADDRESS]:PORT such as [%s]:4000", r.p.example6())
	}
	return "a node, an IPv4 address, or ADDRESS:PORT such as 203.0.113.1:4000"
}

// SeenAs reads key as the source a send step's receiver must see: a
// node, which stands for its first address of the step's family and any
// port, an address with any port, or an address and port. node is the
// node named, if one is; addr is invalid when key is left out.
func (r *StepFields) SeenAs(key string) (node string, addr netip.AddrPort) {
	v := r.field(key)
	if v == nil {
		return "", netip.AddrPort{}
	}
	path := joinPath(r.path, key)
	r.seenAs(v, path, &node, &addr)
	return node, addr
}

func (r *StepFields) seenAs(v *value, path string, seenNode *string, seenAddr *netip.AddrPort) {
	text, ok := r.p.str(v, path, r.seenAsWant())
	if !ok {
		r.ok = false
		return
	}
	target := strings.TrimSpace(text)
	if isIPv6Text(target) {
		if r.wrongFamily(v, path, target, FamilyIPv6, r.seenAsWant()) {
			return
		}
		if ap, ok := r.addr6Text(v, path, target, r.seenAsWant(), false); ok {
			*seenAddr = ap
		}
		return
	}
	host, portText, hasPort := strings.Cut(target, ":")
	// Node names have no dots, so anything with one is meant as an
	// address.
	if !strings.Contains(host, ".") {
		if hasPort {
			addr := "ADDRESS"
			if n := r.p.byName[host]; n != nil {
				if addrs := r.familyAddrs(n); len(addrs) > 0 {
					addr = addrs[0].String()
					if addrs[0].Is6() {
						addr = "[" + addr + "]"
					}
				}
			}
			r.errorf(v.pos, "%s: %q: a node name stands for its address with any port; to check the port too, write the address, as in %s:%s", path, target, addr, portText)
			return
		}
		name, n := r.node(v, path, nodesOnly)
		*seenNode = name
		if n != nil {
			if addrs := r.familyAddrs(n); len(addrs) > 0 {
				*seenAddr = netip.AddrPortFrom(addrs[0], 0)
			}
		}
		return
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		r.errorf(v.pos, "%s: invalid IPv4 address %q; want %s", path, host, r.seenAsWant())
		return
	}
	if r.wrongFamily(v, path, target, FamilyIPv4, r.seenAsWant()) {
		return
	}
	var port uint64
	if hasPort {
		port, err = strconv.ParseUint(portText, 10, 16)
		if err != nil || port == 0 {
			r.errorf(v.pos, "%s: invalid port %q in %q; want ADDRESS:PORT with a port from 1 to 65535, or the address alone for any port", path, portText, target)
			return
		}
	}
	if r.reserved4(v, path, a) {
		return
	}
	*seenAddr = netip.AddrPortFrom(a, uint16(port))
}

// familyAddrs are the addresses of n in the step's family.
func (r *StepFields) familyAddrs(n *nodeSpec) []netip.Addr {
	if r.family == FamilyIPv6 {
		return n.node.Addresses6
	}
	return n.node.Addresses
}

// sendToWant says what a send step's to: takes.
func (r *StepFields) sendToWant() string {
	if r.family == FamilyIPv6 {
		return fmt.Sprintf("a host, a server, or [ADDRESS]:PORT such as [%s]:5000", r.p.example6())
	}
	return "a host, a server, or ADDRESS:PORT such as 203.0.113.1:5000"
}

// SendTo reads key as the destination of a send step: a node (node), or
// an address of the step's family with a port (addr).
func (r *StepFields) SendTo(key string) (node string, addr netip.AddrPort) {
	v := r.field(key)
	if v == nil {
		return "", netip.AddrPort{}
	}
	r.sendTo(v, joinPath(r.path, key), &node, &addr)
	return node, addr
}

func (r *StepFields) sendTo(v *value, path string, toNode *string, toAddr *netip.AddrPort) {
	text, ok := r.p.str(v, path, r.sendToWant())
	if !ok {
		r.ok = false
		return
	}
	target := strings.TrimSpace(text)
	if isIPv6Text(target) {
		if r.wrongFamily(v, path, target, FamilyIPv6, r.sendToWant()) {
			return
		}
		ap, ok := r.addr6Text(v, path, target, r.sendToWant(), true)
		if ok {
			*toAddr = ap
		}
		return
	}
	host, portText, hasPort := strings.Cut(target, ":")
	// Node names have no dots, so anything with one is meant as an
	// address.
	if !strings.Contains(host, ".") {
		if hasPort {
			r.errorf(v.pos, "%s: %q: to send to a node, give its name and the port apart, as in {to: %s, port: %s}", path, target, host, portText)
			return
		}
		if n := r.p.byName[host]; r.p.nodesOK && n != nil && n.ok && n.node.Kind == KindNAT && len(n.node.Addresses) > 0 {
			if r.family == FamilyIPv6 {
				r.errorf(v.pos, "%s: %s is a nat, not a host or a server; over IPv6 the nodes behind it have addresses of their own, so send to one of them", path, host)
			} else {
				r.errorf(v.pos, "%s: %s is a nat, not a host or a server; to send to its public address, as to a forwarded port, write to: \"%s:PORT\"", path, host, n.node.Addresses[0])
			}
			return
		}
		*toNode, _ = r.node(v, path, hostOrServer)
		return
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		r.errorf(v.pos, "%s: invalid IPv4 address %q; want %s", path, host, r.sendToWant())
		return
	}
	if r.wrongFamily(v, path, target, FamilyIPv4, r.sendToWant()) {
		return
	}
	if !hasPort {
		r.errorf(v.pos, "%s: %s has no port; want ADDRESS:PORT such as %s:%d", path, a, a, DefaultSendPort)
		return
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		r.errorf(v.pos, "%s: invalid port %q in %q; want ADDRESS:PORT with a port from 1 to 65535", path, portText, target)
		return
	}
	if r.reserved4(v, path, a) {
		return
	}
	*toAddr = netip.AddrPortFrom(a, uint16(port))
}

// reserved4 reports an IPv4 address in a range no node has an address
// in.
func (r *StepFields) reserved4(v *value, path string, a netip.Addr) bool {
	for _, rr := range reservedRanges {
		if rr.prefix.Contains(a) {
			r.errorf(v.pos, "%s: %s is in %s, the %s range, where no node of a lab has an address", path, a, rr.prefix, rr.what)
			return true
		}
	}
	return false
}
