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
	minStepTimeout = 100 * time.Millisecond
	maxStepTimeout = 5 * time.Minute
	maxExecTimeout = time.Hour
	minWait        = time.Millisecond
	maxWait        = 10 * time.Minute
)

// stepSpec says what one kind of step takes.
type stepSpec struct {
	// fields are the keys the step takes, in the order messages list
	// them; required are those it cannot do without. Both, and
	// outcomes, come from the step's type in format.go.
	fields   []string
	required []string
	// example is a minimal step of this kind, for messages.
	example string
	// outcomes are the words expect takes; outcome is the default.
	outcomes []string
	outcome  string
	// expectWant says what expect takes, for messages.
	expectWant string
	// timeout is the default timeout, and maxTimeout its upper limit;
	// zero for kinds without a timeout.
	timeout, maxTimeout time.Duration
}

var okFail = []string{"ok", "fail"}

var stepSpecs = map[StepKind]*stepSpec{
	StepSTUN: {
		example: "stun: {from: alice}",
		// Its outcomes same and different only go with servers:, where
		// stunServersWant replaces expectWant.
		outcome:    "ok",
		expectWant: "ok, fail or a classification such as {type: symmetric}",
	},
	StepPunch: {
		example:    "punch: {between: [alice, bob]}",
		outcome:    "ok",
		expectWant: "ok or fail",
		timeout:    5 * time.Second, maxTimeout: maxStepTimeout,
	},
	StepRelay: {
		example:    "relay: {between: [alice, bob]}",
		outcome:    "ok",
		expectWant: "ok or fail",
		timeout:    5 * time.Second, maxTimeout: maxStepTimeout,
	},
	StepUpgrade: {
		example:    "upgrade: {between: [alice, bob]}",
		outcome:    "direct",
		expectWant: "direct or relay",
		timeout:    10 * time.Second, maxTimeout: maxStepTimeout,
	},
	StepICE: {
		example:    "ice: {between: [alice, bob]}",
		expectWant: "host, srflx, prflx, relay or fail",
		timeout:    10 * time.Second, maxTimeout: maxStepTimeout,
	},
	StepSend: {
		example:    "send: {from: friend, to: alice}",
		outcome:    "delivered",
		expectWant: "delivered or dropped",
	},
	StepPortmap: {
		example:    "portmap: {from: alice, port: 8080}",
		outcome:    "ok",
		expectWant: "ok or fail",
	},
	StepTunnel: {
		example:    "tunnel: {from: alice, port: 8080}",
		outcome:    "ok",
		expectWant: "ok or fail",
	},
	StepTable: {
		example:    "table: {node: nat-a}",
		expectWant: tableExpectWant,
	},
	StepWait: {
		example: "wait: 2s",
	},
	StepExec: {
		example:    `exec: {node: alice, command: "ping -c1 203.0.113.10"}`,
		outcome:    "ok",
		expectWant: "ok or fail",
		timeout:    30 * time.Second, maxTimeout: maxExecTimeout,
	},
}

// outcomeHints answer expect words that belong to another kind of step.
var outcomeHints = map[StepKind]map[string]string{
	StepSend:    {"ok": "did you mean delivered?", "fail": "did you mean dropped?"},
	StepICE:     {"ok": "leave expect out to accept any successful connection"},
	StepUpgrade: {"ok": "did you mean direct?", "fail": "a failed upgrade leaves the hosts on the relay; did you mean relay?"},
}

// classificationKeys are the keys an expected classification takes.
var classificationKeys = formatKeys[ClassificationExpect]()

// stepKindList is the accepted kinds for messages: "stun, punch, ... or exec".
func stepKindList() string {
	names := make([]string, len(StepKinds))
	for i, k := range StepKinds {
		names[i] = string(k)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// stepWhat names a kind of step in messages: "an ice step".
func stepWhat(k StepKind) string {
	if strings.ContainsRune("aeiou", rune(k[0])) {
		return "an " + string(k) + " step"
	}
	return "a " + string(k) + " step"
}

// isStepField reports whether key is a field of some kind of step.
func isStepField(key string) bool {
	for _, spec := range stepSpecs {
		if slices.Contains(spec.fields, key) {
			return true
		}
	}
	return false
}

// stepsExample is the hint for a steps: value that is not a list.
const stepsExample = "[{punch: {between: [alice, bob]}}, {wait: 2s}]"

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
		p.errs.errorf(v.pos, "%s: empty step; want one of %s, such as {wait: 2s}", path, stepKindList())
		return nil, false
	}
	var kind *entry
	for i := range v.entries {
		e := &v.entries[i]
		if _, known := stepSpecs[StepKind(e.key)]; !known {
			continue
		}
		if kind != nil {
			p.errs.errorf(e.keyPos, "%s.%s: a step has one kind, and this one is %s; make %s a step of its own, a new - item", path, e.key, kind.key, e.key)
			continue
		}
		kind = e
	}
	// Keys that are fields rather than kinds were most likely meant to
	// go under the kind, or stand for a kind left out.
	fieldsOnly, unknown := false, false
	for _, e := range v.entries {
		switch {
		case stepSpecs[StepKind(e.key)] != nil:
		case kind != nil && kind.key == string(StepWait) && isStepField(e.key):
			msg := fmt.Sprintf("%s.%s: a wait step takes only its duration, as in {wait: 2s}", path, e.key)
			if e.key == "name" {
				msg += `; its name is made from it, such as "wait 2s"`
			}
			p.errs.errorf(e.keyPos, "%s", msg)
		case kind != nil && slices.Contains(stepSpecs[StepKind(kind.key)].fields, e.key):
			p.errs.errorf(e.keyPos, "%s.%s: %s is a field of the step, so it goes under %s: with the others, as in {%s, %s: ...}}",
				path, e.key, e.key, kind.key, strings.TrimSuffix(stepSpecs[StepKind(kind.key)].example, "}"), e.key)
		case kind == nil && isStepField(e.key):
			fieldsOnly = true
		case kind != nil && isStepField(e.key):
			k := StepKind(kind.key)
			p.errs.errorf(e.keyPos, "%s.%s: not a step kind, nor a field of %s, which takes %s",
				path, e.key, stepWhat(k), strings.Join(stepSpecs[k].fields, ", "))
		default:
			unknown = true
			msg := fmt.Sprintf("%s.%s: unknown step kind; want %s", path, e.key, stepKindList())
			names := make([]string, len(StepKinds))
			for i, k := range StepKinds {
				names[i] = string(k)
			}
			if s := suggest.Closest(e.key, names); s != "" {
				msg += "; did you mean " + s + "?"
			}
			p.errs.errorf(e.keyPos, "%s", msg)
		}
	}
	if kind == nil {
		if fieldsOnly && !unknown {
			p.errs.errorf(v.pos, "%s: missing the step kind; a step is KIND: {FIELDS} with KIND one of %s, such as {punch: {between: [alice, bob]}}", path, stepKindList())
		}
		return nil, false
	}

	k := StepKind(kind.key)
	s := &Step{Kind: k, Pos: kind.keyPos}
	spath := joinPath(path, kind.key)
	if k == StepWait {
		d, ok := p.duration(kind.val, spath, minWait, maxWait)
		s.Duration, s.Name = d, "wait "+fmtDuration(d)
		return s, ok
	}
	r := &stepReader{p: p, s: s, spec: stepSpecs[k], path: spath, ok: true}
	switch fv := kind.val; fv.kind {
	case kindInvalid:
		return nil, false
	case kindNull:
		// Nothing given: reported below as missing fields.
		r.fields = &value{kind: kindMap, pos: kind.keyPos}
	case kindMap:
		r.fields = fv
	default:
		p.errs.errorf(fv.pos, "%s: want the step's fields, as in %s, not %s", spath, r.spec.example, fv.describe())
		return nil, false
	}
	return r.read()
}

// stepReader reads the fields of one step.
type stepReader struct {
	p      *parser
	s      *Step
	spec   *stepSpec
	path   string
	fields *value
	// serverNode is the node of Server once it is resolved and usable.
	serverNode *nodeSpec
	// familyBad says the step's family: was invalid, so that addresses
	// are not checked against a family the file did not mean.
	familyBad bool
	// ok is false once a value of the step turned out unusable, whether
	// that was reported here or before (an unknown alias, a node whose
	// kind is wrong).
	ok bool
}

// field returns the value of key, or nil when the step does not give it.
func (r *stepReader) field(key string) *value {
	if e := r.fields.get(key); e != nil {
		return e.val
	}
	return nil
}

// errorf reports a problem with the step.
func (r *stepReader) errorf(pos Position, format string, args ...any) {
	r.ok = false
	r.p.errs.errorf(pos, format, args...)
}

// check notes the result of a parser call that reports its own problems.
func (r *stepReader) check(ok bool) {
	r.ok = r.ok && ok
}

func (r *stepReader) read() (*Step, bool) {
	p, s := r.p, r.s
	errsBefore := len(p.errs)
	for _, e := range r.fields.entries {
		if !slices.Contains(r.spec.fields, e.key) {
			p.unknownKey(e, joinPath(r.path, e.key), stepWhat(s.Kind), r.spec.fields)
		}
	}
	var missing []string
	for _, key := range r.spec.required {
		if r.field(key) == nil {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		r.errorf(s.Pos, "%s: missing %s; for example %s", r.path, strings.Join(missing, " and "), r.spec.example)
	}

	switch s.Kind {
	case StepSTUN:
		r.stun()
	case StepPunch:
		r.between()
		s.Family = r.family()
		s.Server, _ = r.server("server", ServiceSTUN, true)
		s.Rendezvous, _ = r.server("rendezvous", ServiceRendezvous, false)
		s.Predict = r.flag("predict")
		s.Explain = r.flag("explain")
		if v := r.field("keepalive"); v != nil {
			d, ok := p.duration(v, joinPath(r.path, "keepalive"), minStepTimeout, maxWait)
			s.Keepalive = d
			r.check(ok)
		}
		s.Name = fmt.Sprintf("punch %s%s %s", familyWord(s.Family), s.Between[0], s.Between[1])
	case StepRelay:
		r.between()
		s.Server, _ = r.server("server", ServiceTURN, true)
		s.Name = fmt.Sprintf("relay %s %s", s.Between[0], s.Between[1])
	case StepUpgrade:
		r.upgrade()
	case StepICE:
		r.between()
		s.Name = fmt.Sprintf("ice %s %s", s.Between[0], s.Between[1])
	case StepSend:
		r.send()
	case StepPortmap:
		r.portmap()
	case StepTunnel:
		r.tunnel()
	case StepTable:
		r.table()
	case StepExec:
		r.exec()
	}
	if r.spec.timeout != 0 {
		s.Timeout = r.spec.timeout
		if v := r.field("timeout"); v != nil {
			d, ok := p.duration(v, joinPath(r.path, "timeout"), minStepTimeout, r.spec.maxTimeout)
			s.Timeout = d
			r.check(ok)
		}
	}
	r.expect()
	if s.Kind == StepSend {
		r.seenAsDropped()
	}
	if v := r.field("name"); v != nil {
		s.Name = r.name(v)
	}
	return s, r.ok && len(p.errs) == errsBefore
}

func (r *stepReader) stun() {
	s := r.s
	var from *nodeSpec
	if v := r.field("from"); v != nil {
		s.From, from = r.node(v, joinPath(r.path, "from"), hostOrServer)
	}
	if v := r.field("servers"); v != nil {
		r.stunServers(v, joinPath(r.path, "servers"), from)
	} else {
		s.Server, r.serverNode = r.server("server", ServiceSTUN, true)
	}
	if v := r.field("port"); v != nil {
		port, ok := r.p.port(v, joinPath(r.path, "port"))
		s.Port = port
		r.check(ok)
	}
	if from != nil && from == r.serverNode {
		msg := "name another with server:"
		if r.field("server") != nil {
			msg = "choose another server:"
		}
		r.errorf(r.field("from").pos, "%s.from: %s is this step's STUN server too; a node cannot find its public address by asking itself, so %s or run the step from a host", r.path, s.From, msg)
	}
	s.Name = "stun from " + s.From
	if len(s.Servers) > 0 {
		s.Name = clip(fmt.Sprintf("stun from %s to %s", s.From, strings.Join(s.Servers, ", ")), MaxStepNameLen)
	}
}

// stunServersWant is what a stun step's expect takes with servers:.
const stunServersWant = "ok, fail, same or different"

// stunServers reads the servers: of a stun step: two or more distinct
// STUN servers whose view of one socket the step compares.
func (r *stepReader) stunServers(v *value, path string, from *nodeSpec) {
	if r.field("server") != nil {
		r.errorf(v.pos, "%s: server: names a STUN server already; give either server: to ask one, or servers: to compare what two or more see", path)
	}
	switch v.kind {
	case kindInvalid:
		r.ok = false
		return
	case kindSeq:
	default:
		r.errorf(v.pos, "%s: want a list of two or more servers with services: [stun], such as [stun1, stun2], not %s", path, v.describe())
		return
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
		r.s.Servers = append(r.s.Servers, name)
		if from != nil && n == from {
			r.errorf(r.field("from").pos, "%s.from: %s is one of this step's STUN servers too; a node cannot find its public address by asking itself, so leave it out of servers: or run the step from a host", r.path, name)
		}
	}
}

// between reads the two distinct hosts a step connects.
func (r *stepReader) between() {
	v := r.field("between")
	if v == nil {
		return
	}
	path := joinPath(r.path, "between")
	switch v.kind {
	case kindInvalid:
		r.ok = false
		return
	case kindSeq:
	default:
		r.errorf(v.pos, "%s: want a list of two hosts such as [alice, bob], not %s", path, v.describe())
		return
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
		if i < len(r.s.Between) {
			r.s.Between[i] = name
		}
	}
}

// send reads a send step.
func (r *stepReader) send() {
	s := r.s
	// The family comes first: it says what to: and seen-as: take.
	s.Family = r.family()
	if v := r.field("from"); v != nil {
		s.From, _ = r.node(v, joinPath(r.path, "from"), hostOrServer)
	}
	if v := r.field("to"); v != nil {
		r.sendTo(v, joinPath(r.path, "to"))
	}
	s.Proto = UDP
	if v := r.field("proto"); v != nil {
		proto, ok := r.p.protocol(v, joinPath(r.path, "proto"))
		s.Proto = proto
		r.check(ok)
	}
	s.Port = DefaultSendPort
	if v := r.field("port"); v != nil {
		path := joinPath(r.path, "port")
		if s.ToAddr.IsValid() {
			r.errorf(v.pos, "%s: to: %s gives the port already; leave port out", path, s.ToAddr)
		} else {
			port, ok := r.p.port(v, path)
			s.Port = port
			r.check(ok)
		}
	}
	if v := r.field("seen-as"); v != nil {
		r.seenAs(v, joinPath(r.path, "seen-as"))
	}
	to := s.To
	if s.ToAddr.IsValid() {
		s.Port = s.ToAddr.Port()
		to = s.ToAddr.String()
	}
	if s.From != "" && s.From == s.To {
		r.errorf(r.field("to").pos, "%s.to: %s is the sender too, and a node's message to itself never leaves it; send to another node, or to ADDRESS:PORT", r.path, s.To)
	}
	proto := ""
	if s.Proto == TCP {
		proto = "tcp "
	}
	s.Name = fmt.Sprintf("send %s%s%s -> %s", familyWord(s.Family), proto, s.From, to)
}

// sendToWant says what a send step's to: takes.
func (r *stepReader) sendToWant() string {
	if r.s.Family == FamilyIPv6 {
		return fmt.Sprintf("a host, a server, or [ADDRESS]:PORT such as [%s]:5000", r.p.example6())
	}
	return "a host, a server, or ADDRESS:PORT such as 203.0.113.1:5000"
}

// sendTo reads the destination of a send step: a node, or an address
// of the step's family with a port.
func (r *stepReader) sendTo(v *value, path string) {
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
			r.s.ToAddr = ap
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
			if r.s.Family == FamilyIPv6 {
				r.errorf(v.pos, "%s: %s is a nat, not a host or a server; over IPv6 the nodes behind it have addresses of their own, so send to one of them", path, host)
			} else {
				r.errorf(v.pos, "%s: %s is a nat, not a host or a server; to send to its public address, as to a forwarded port, write to: \"%s:PORT\"", path, host, n.node.Addresses[0])
			}
			return
		}
		r.s.To, _ = r.node(v, path, hostOrServer)
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
	r.s.ToAddr = netip.AddrPortFrom(a, uint16(port))
}

// reserved4 reports an IPv4 address in a range no node has an address
// in.
func (r *stepReader) reserved4(v *value, path string, a netip.Addr) bool {
	for _, rr := range reservedRanges {
		if rr.prefix.Contains(a) {
			r.errorf(v.pos, "%s: %s is in %s, the %s range, where no node of a lab has an address", path, a, rr.prefix, rr.what)
			return true
		}
	}
	return false
}

// exec reads an exec step.
func (r *stepReader) exec() {
	s := r.s
	if v := r.field("node"); v != nil {
		s.Node, _ = r.node(v, joinPath(r.path, "node"), anyNode)
	}
	if v := r.field("command"); v != nil {
		r.command(v, joinPath(r.path, "command"))
	}
	summary := strings.Join(s.Command, " ")
	if !s.Shell {
		quoted := make([]string, len(s.Command))
		for i, arg := range s.Command {
			quoted[i] = shellQuote(arg)
		}
		summary = strings.Join(quoted, " ")
	}
	s.Name = clip(fmt.Sprintf("exec %s: %s", s.Node, summary), MaxStepNameLen)
}

const commandWant = `a shell command such as "ping -c1 203.0.113.10", or a list such as [ping, -c1, 203.0.113.10]`

// command reads what an exec step runs: one string for sh -c, or an argv.
func (r *stepReader) command(v *value, path string) {
	s := r.s
	switch {
	case v.kind == kindInvalid:
		r.ok = false
	case v.isScalar():
		if strings.TrimSpace(v.text) == "" {
			r.errorf(v.pos, "%s: empty command; want %s", path, commandWant)
			return
		}
		if strings.ContainsRune(v.text, 0) {
			r.errorf(v.pos, "%s: contains a NUL character, which no command can hold", path)
			return
		}
		s.Command, s.Shell = []string{v.text}, true
	case v.kind == kindSeq:
		if len(v.items) == 0 {
			r.errorf(v.pos, "%s: empty list; want a program and its arguments, such as [ping, -c1, 203.0.113.10]", path)
			return
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
		s.Command = argv
	default:
		r.errorf(v.pos, "%s: want %s, not %s", path, commandWant, v.describe())
	}
}

// flag reads an optional boolean field.
func (r *stepReader) flag(key string) bool {
	v := r.field(key)
	if v == nil {
		return false
	}
	b, ok := r.p.boolean(v, joinPath(r.path, key))
	r.check(ok)
	return b
}

// name reads a step's name:, a one-line label.
func (r *stepReader) name(v *value) string {
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

// expect reads what the step must observe, or fills in the default.
func (r *stepReader) expect() {
	s, spec := r.s, r.spec
	s.Expect.Outcome = spec.outcome
	v := r.field("expect")
	if v == nil {
		return
	}
	path := joinPath(r.path, "expect")
	// A stun step compares servers or asks one; each takes its own words.
	want, outcomes := spec.expectWant, spec.outcomes
	servers := s.Kind == StepSTUN && r.field("servers") != nil
	switch {
	case servers:
		want = stunServersWant
	case s.Kind == StepSTUN:
		outcomes = okFail
	}
	switch {
	case v.kind == kindInvalid:
		r.ok = false
		return
	case s.Kind == StepTable:
		r.tableExpect(v, path)
		return
	case v.kind == kindMap && servers:
		r.errorf(v.pos, "%s: a classification comes from one STUN server with two addresses (RFC 5780), not from servers:; with servers:, want %s", path, stunServersWant)
		return
	case v.kind == kindMap && s.Kind == StepSTUN:
		s.Expect.Classification = r.classification(v, path)
		return
	case !v.isScalar():
		r.errorf(v.pos, "%s: want %s, not %s", path, want, v.describe())
		return
	}
	word := v.text
	if s.Kind == StepSTUN && !servers && (word == "same" || word == "different") {
		r.errorf(v.pos, "%s: %s compares the public endpoints two or more STUN servers see from one socket; name them with servers: [stun1, stun2], or want %s", path, word, want)
		return
	}
	if !slices.Contains(outcomes, word) {
		msg := fmt.Sprintf("%s: unknown outcome %q; want %s", path, word, want)
		if hint := outcomeHints[s.Kind][word]; hint != "" {
			msg += "; " + hint
		} else if sug := suggest.Closest(word, outcomes); sug != "" {
			msg += "; did you mean " + sug + "?"
		}
		r.errorf(v.pos, "%s", msg)
		return
	}
	s.Expect.Outcome = word
	if s.Kind == StepICE {
		r.iceServers(v, path, word)
	}
}

// iceServers checks that the lab can produce the candidate an ice step
// expects to be selected: a relayed one needs a TURN server, a server
// reflexive one a STUN server.
func (r *stepReader) iceServers(v *value, path, word string) {
	svc := map[string]Service{"relay": ServiceTURN, "srflx": ServiceSTUN}[word]
	if svc == "" || !r.p.servicesKnown() || r.p.firstServer(svc) != nil {
		return
	}
	r.errorf(v.pos, "%s: %s needs a server with services: [%s], and the lab has none; add one such as %s: {kind: server, services: [%s]}", path, word, svc, svc, svc)
}

// classification reads the NAT behaviour a stun step expects discovery
// to report.
func (r *stepReader) classification(v *value, path string) *Classification {
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
	r.twoAddresses(v, path)
	return c
}

// twoAddresses checks that the step's STUN server can classify a NAT:
// RFC 5780 discovery, which starts with the mapping test, needs answers
// from a second address.
func (r *stepReader) twoAddresses(v *value, path string) {
	n := r.serverNode
	if n == nil || !n.addrsGiven || len(n.addrs) != 1 {
		return
	}
	r.errorf(v.pos, "%s: classifying a NAT (RFC 5780) needs a STUN server with two addresses, and %s has one; give it a second, or leave its addresses out to get two",
		path, n.node.Name)
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
func (r *stepReader) node(v *value, path string, w nodeWant) (string, *nodeSpec) {
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
func (r *stepReader) server(key string, svc Service, needed bool) (string, *nodeSpec) {
	if v := r.field(key); v != nil {
		return r.node(v, joinPath(r.path, key), serverWith(svc))
	}
	return r.defaultServer(svc, needed)
}

// defaultServer picks the first server in the file that runs svc; it
// reports at the step when there is none and the step needs one.
func (r *stepReader) defaultServer(svc Service, needed bool) (string, *nodeSpec) {
	if !r.p.nodesOK {
		return "", nil
	}
	if n := r.p.firstServer(svc); n != nil {
		return n.node.Name, n
	}
	if needed && r.p.servicesKnown() {
		r.errorf(r.s.Pos, "%s: %s needs a server with services: [%s], and the lab has none; add one such as %s: {kind: server, services: [%s]}",
			r.path, r.s.Kind, svc, svc, svc)
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

// shellQuote quotes an argument for showing a command, where needed.
func shellQuote(arg string) string {
	if arg != "" && !strings.ContainsFunc(arg, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) {
		return arg
	}
	return strconv.Quote(arg)
}

// clip makes s one line of at most n characters, ending in ... when cut.
func clip(s string, n int) string {
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
