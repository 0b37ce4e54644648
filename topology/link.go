package topology

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/natlab/natlab/linkcond"
)

// LinkCondition is one key of a node's link: mapping, a condition of its
// uplink such as delay: 30ms. LinkConditions lists them, and everything
// else about them comes from that list: the parser reads them (at the top
// of link: for both directions, in up: and down: for one), the schema and
// docs/reference.md describe them (LinkEntry's and LinkDirection's
// Conditions fields stand for them), and Set reads a value as the file
// writes it for whatever else takes the same keys. A condition is added to
// natlab by adding its field to linkcond.Direction (or Link), its entry
// here, and what makes the kernel do it in the lab. Tests fail when the
// parser, the schema or the reference misses one (format_test.go,
// link_test.go, internal/schemagen).
type LinkCondition struct {
	// Key is the condition's key in a scenario file.
	Key string
	// Format is the format type of its value (format.go), which the
	// schema and the reference describe.
	Format reflect.Type
	// Default says, for people, what leaving the condition out means.
	Default string
	// Meaning is what the condition does to the packets, as the
	// reference and the schema describe it.
	Meaning string
	// Want says what the key takes, for messages: "a rate such as
	// 500kbit, 10mbit or 1gbit".
	Want string
	// Whole says the condition is of the whole link, both directions at
	// once (mtu), so up: and down: do not take it.
	Whole bool

	set func(c *linkcond.Change, s *linkcond.Setting, text string) error
}

// linkDef is a LinkCondition with its functions typed by the field it
// sets: field for a condition of a direction, whole for one of the whole
// link.
type linkDef[T any] struct {
	key, def, meaning, want string
	format                  reflect.Type
	parse                   func(text string) (T, error)
	field                   func(s *linkcond.Setting) **T
	whole                   func(c *linkcond.Change) **T
}

func (d linkDef[T]) condition() LinkCondition {
	return LinkCondition{
		Key: d.key, Format: d.format, Default: d.def, Meaning: d.meaning, Want: d.want, Whole: d.whole != nil,
		set: func(c *linkcond.Change, s *linkcond.Setting, text string) error {
			x, err := d.parse(text)
			if err != nil {
				return err
			}
			if d.whole != nil {
				*d.whole(c) = &x
			} else {
				*d.field(s) = &x
			}
			return nil
		},
	}
}

// The directions of a link, as up: and down: name them, and linkcond's
// Error.Direction.
const (
	LinkUp   = "up"
	LinkDown = "down"
)

// LinkConditions are the conditions, in the order files, messages, the
// reference and linkcond.Link.String list them.
var LinkConditions = []LinkCondition{
	linkDef[time.Duration]{
		key: "delay", format: reflect.TypeFor[LinkDuration](), def: "0", want: linkcond.DurationWant,
		meaning: fmt.Sprintf("Added to every packet. Each direction has its own, so delay: 30ms for both adds 60 ms to a round trip. At most %s.", linkcond.FormatDuration(linkcond.MaxDelay)),
		parse:   linkcond.ParseDuration,
		field:   func(s *linkcond.Setting) **time.Duration { return &s.Delay },
	}.condition(),
	linkDef[time.Duration]{
		key: "jitter", format: reflect.TypeFor[LinkDuration](), def: "0", want: linkcond.DurationWant,
		meaning: "Spreads the delay evenly over delay±jitter; at most the delay. Jitter alone does not reorder packets.",
		parse:   linkcond.ParseDuration,
		field:   func(s *linkcond.Setting) **time.Duration { return &s.Jitter },
	}.condition(),
	linkDef[float64]{
		key: "loss", format: reflect.TypeFor[Percent](), def: "0%", want: linkcond.PercentWant,
		meaning: "The share of packets dropped, 0% to 100%; 1% in both directions loses about 2% of round trips.",
		parse:   linkcond.ParsePercent,
		field:   func(s *linkcond.Setting) **float64 { return &s.Loss },
	}.condition(),
	linkDef[float64]{
		key: "duplicate", format: reflect.TypeFor[Percent](), def: "0%", want: linkcond.PercentWant,
		meaning: "The share of packets sent twice, 0% to 100%.",
		parse:   linkcond.ParsePercent,
		field:   func(s *linkcond.Setting) **float64 { return &s.Duplicate },
	}.condition(),
	linkDef[float64]{
		key: "reorder", format: reflect.TypeFor[Percent](), def: "0%", want: linkcond.PercentWant,
		meaning: "The share of packets sent at once, without the delay, so that they overtake those before them, 0% to 100%; needs a delay.",
		parse:   linkcond.ParsePercent,
		field:   func(s *linkcond.Setting) **float64 { return &s.Reorder },
	}.condition(),
	linkDef[linkcond.Rate]{
		key: "rate", format: reflect.TypeFor[Rate](), def: "no limit", want: linkcond.RateWant,
		meaning: fmt.Sprintf("The most the direction carries, %s to %s.", linkcond.MinRate, linkcond.MaxRate),
		parse:   parseRate,
		field:   func(s *linkcond.Setting) **linkcond.Rate { return &s.Rate },
	}.condition(),
	linkDef[int]{
		key: "mtu", format: reflect.TypeFor[MTU](), def: "1500", want: mtuWant,
		meaning: fmt.Sprintf("The largest packet, in bytes, that both ends of the link send, %d to %d (in a dual-stack lab at least %d, the least IPv6 takes); a larger one with DF set is answered with ICMP fragmentation needed.", linkcond.MinMTU, linkcond.MaxMTU, linkcond.MinMTU6),
		parse:   parseMTU,
		whole:   func(c *linkcond.Change) **int { return &c.MTU },
	}.condition(),
}

// LinkConditionNamed returns the condition with key, or nil.
func LinkConditionNamed(key string) *LinkCondition {
	for i := range LinkConditions {
		if LinkConditions[i].Key == key {
			return &LinkConditions[i]
		}
	}
	return nil
}

// Set reads text, the condition's value as a file writes it (30ms, 1%,
// 10mbit, 1400), into c: for both directions when dir is "", else for
// LinkUp or LinkDown. A condition of the whole link takes no direction.
// What the error says is what the file's messages say after the key.
func (k *LinkCondition) Set(c *linkcond.Change, dir, text string) error {
	var s *linkcond.Setting
	switch dir {
	case "":
		s = &c.Both
	case LinkUp:
		s = &c.Up
	case LinkDown:
		s = &c.Down
	default:
		return fmt.Errorf("topology: no direction %q of a link; want %s or %s", dir, LinkUp, LinkDown)
	}
	if k.Whole && dir != "" {
		return fmt.Errorf("%s is the whole link's, not one direction's", k.Key)
	}
	return k.set(c, s, text)
}

// number says whether the condition's value is a plain number, so that a
// number written for one with a unit is missing its unit.
func (k *LinkCondition) number() bool { return k.Format.Kind() == reflect.Int }

const mtuWant = "a number of bytes such as 1400"

func parseMTU(text string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil {
		return 0, fmt.Errorf("invalid mtu %q; want %s", text, mtuWant)
	}
	return n, nil
}

// parseRate is linkcond.ParseRate, with a word for those who write rates
// as bits per second are often written: 10mbps, which tc would read as
// bytes.
func parseRate(text string) (linkcond.Rate, error) {
	r, err := linkcond.ParseRate(text)
	if err == nil {
		return r, nil
	}
	t := strings.ToLower(strings.TrimSpace(text))
	if num, ok := strings.CutSuffix(t, "bps"); ok {
		for _, u := range []struct{ prefix, word string }{{"g", "gigabits"}, {"m", "megabits"}, {"k", "kilobits"}, {"", "bits"}} {
			if n, ok := strings.CutSuffix(num, u.prefix); ok && n != "" && strings.Trim(n, "0123456789.") == "" {
				return 0, fmt.Errorf("%w; for %s %s per second, write %s%sbit", err, n, u.word, n, u.prefix)
			}
		}
	}
	return 0, err
}

// LinkConditionKeys stands, in LinkEntry, for the keys of LinkConditions:
// each a field of its Format type with its Default and, as tag doc, its
// Meaning (see LinkFields).
type LinkConditionKeys struct{}

// KeyFields are the fields LinkConditionKeys stands for.
func (LinkConditionKeys) KeyFields() []reflect.StructField { return LinkFields(false) }

// LinkDirectionKeys stands, in LinkDirection, for the keys of
// LinkConditions that one direction takes: all but the whole link's.
type LinkDirectionKeys struct{}

// KeyFields are the fields LinkDirectionKeys stands for.
func (LinkDirectionKeys) KeyFields() []reflect.StructField { return LinkFields(true) }

// LinkFields are the keys of LinkConditions (only those of a direction,
// with direction) as fields of a format struct, for what reads the format
// types (formatFields, internal/schemagen), as KnobFields are the knobs'.
func LinkFields(direction bool) []reflect.StructField {
	var fields []reflect.StructField
	for _, k := range LinkConditions {
		if direction && k.Whole {
			continue
		}
		fields = append(fields, registryField(k.Key, k.Format, k.Default, k.Meaning))
	}
	return fields
}

// linkKeys are the keys link: takes, and directionKeys those up: and
// down: take, in the order messages list them.
var (
	linkKeys      = formatKeys[LinkEntry]()
	directionKeys = formatKeys[LinkDirection]()
)

// linkExample is a link: mapping for messages.
const linkExample = "{delay: 30ms, loss: 1%, rate: 10mbit}"

// linkSpec is what a link: mapping gives: the change it makes to a
// perfect wire, and the value each condition was read from, by direction
// ("" for both) and key, so that a problem Validate finds is reported at
// the value that made it.
type linkSpec struct {
	change linkcond.Change
	vals   map[[2]string]*value
	// bad says something was reported already, so that the conditions
	// read are not checked together: with one of them missing, the rest
	// may contradict each other only for want of it (a jitter without
	// the delay it was written beside).
	bad bool
}

// readLink reads node n's link: value v, its uplink's conditions.
func (p *parser) readLink(n *nodeSpec, v *value, path string) {
	if l, ok := p.link(v, path); ok {
		n.node.Link = l
		if v.kind == kindMap {
			for _, e := range v.entries {
				if e.key == "mtu" {
					n.mtuVal, n.mtuPath = e.val, joinPath(path, e.key)
				}
			}
		}
	}
}

// checkMTU6 refuses, in a dual-stack lab, a link whose MTU IPv6 cannot
// take (linkcond.Link.ValidateDualStack), at the mtu: value. It is an
// error, not a warning: the lab would come up with the node's IPv6 gone,
// and what fails later (a ping6, a firewall step) would not say why.
func (p *parser) checkMTU6() {
	if !p.topo.Internet6.IsValid() {
		return
	}
	for _, n := range p.nodes {
		if !n.ok || n.mtuVal == nil {
			continue
		}
		var e *linkcond.Error
		if err := n.node.Link.ValidateDualStack(); errors.As(err, &e) {
			p.errs.errorf(n.mtuVal.pos, "%s: %s; want %d or more, or an IPv4-only lab", n.mtuPath, e.Problem, linkcond.MinMTU6)
		}
	}
}

// link reads a link: mapping and checks the conditions it gives together.
func (p *parser) link(v *value, path string) (linkcond.Link, bool) {
	s := &linkSpec{vals: make(map[[2]string]*value)}
	p.linkMap(s, v, path, "")
	if s.bad {
		return linkcond.Link{}, false
	}
	l := s.change.Apply(linkcond.Link{})
	if err := l.Validate(); err != nil {
		p.linkProblem(s, v, path, err)
		return linkcond.Link{}, false
	}
	return l, true
}

// linkMap reads the conditions of mapping v into s: those of both
// directions when dir is "", else of dir, up: or down:.
func (p *parser) linkMap(s *linkSpec, v *value, path, dir string) {
	switch v.kind {
	case kindInvalid:
		s.bad = true
		return
	case kindMap:
	default:
		example := linkExample
		if dir != "" {
			example = "{rate: 1mbit}"
		}
		p.errs.errorf(v.pos, "%s: want a mapping of conditions such as %s, not %s", path, example, v.describe())
		s.bad = true
		return
	}
	for _, e := range v.entries {
		kpath := joinPath(path, e.key)
		switch c := LinkConditionNamed(e.key); {
		case c != nil && c.Whole && dir != "":
			example := "..."
			if e.val.isScalar() {
				example = e.val.text
			}
			p.errs.errorf(e.keyPos, "%s: %s is the whole link's, both directions'; write it beside %s:, as in {%s: %s, %s: {...}}",
				kpath, c.Key, dir, c.Key, example, dir)
			s.bad = true
		case c != nil:
			p.linkValue(s, c, e.val, kpath, dir)
		case dir == "" && (e.key == LinkUp || e.key == LinkDown):
			p.linkMap(s, e.val, kpath, e.key)
		case dir == "":
			p.unknownKey(e, kpath, "a link", linkKeys)
			s.bad = true
		default:
			p.unknownKey(e, kpath, "a link's "+dir+":", directionKeys)
			s.bad = true
		}
	}
}

// linkValue reads the value v of condition c.
func (p *parser) linkValue(s *linkSpec, c *LinkCondition, v *value, path, dir string) {
	text, ok := p.str(v, path, c.Want)
	if !ok {
		s.bad = true
		return
	}
	if err := c.Set(&s.change, dir, text); err != nil {
		if (v.kind == kindInt || v.kind == kindFloat) && !c.number() {
			p.errs.errorf(v.pos, "%s: %s has no unit; want %s", path, v.text, c.Want)
		} else {
			p.errs.errorf(v.pos, "%s: %v", path, err)
		}
		s.bad = true
		return
	}
	s.vals[[2]string{dir, c.Key}] = v
}

// linkProblem reports err, what Validate found wrong with link v's
// conditions, at the value that set the condition it names.
func (p *parser) linkProblem(s *linkSpec, v *value, path string, err error) {
	var e *linkcond.Error
	if !errors.As(err, &e) {
		p.errs.errorf(v.pos, "%s: %v", path, err)
		return
	}
	at := v
	if w := s.where(e.Direction, e.Key); w != nil {
		at = w
	}
	if e.Direction != "" {
		path = joinPath(path, e.Direction)
	}
	p.errs.errorf(at.pos, "%s: %s", path, e.Problem)
}

// where is the value that gave key its value in direction dir: dir's own,
// else the one for both directions. For a problem of both directions
// (dir ""), any that was written.
func (s *linkSpec) where(dir, key string) *value {
	dirs := []string{dir, ""}
	if dir == "" {
		dirs = []string{"", LinkUp, LinkDown}
	}
	for _, d := range dirs {
		if v := s.vals[[2]string{d, key}]; v != nil {
			return v
		}
	}
	return nil
}
