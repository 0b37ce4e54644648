package topology

import (
	"fmt"
	"slices"
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

// current is the lab as the steps read so far leave it.
func (p *parser) current() *Topology {
	if p.now != nil {
		return p.now
	}
	return p.topo
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
	return r.oneOf("expect", "outcome", words, def, want, hints)
}

// OneOf reads an optional key that takes one of words, def when it is
// left out; want says what it takes, for messages.
func (r *StepFields) OneOf(key string, words []string, def, want string) string {
	return r.oneOf(key, "value", words, def, want, nil)
}

// oneOf reads key as one of words; what names such a word in messages.
func (r *StepFields) oneOf(key, what string, words []string, def, want string, hints map[string]string) string {
	word, ok := r.Word(key, want)
	if !ok {
		if r.field(key) == nil {
			return def
		}
		return ""
	}
	if !slices.Contains(words, word) {
		msg := fmt.Sprintf("%s: unknown %s %q; want %s", joinPath(r.path, key), what, word, want)
		if hint := hints[word]; hint != "" {
			msg += "; " + hint
		} else if sug := suggest.Closest(word, words); sug != "" {
			msg += "; did you mean " + sug + "?"
		}
		r.errorf(r.field(key).pos, "%s", msg)
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
