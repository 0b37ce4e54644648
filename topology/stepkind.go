package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// StepKind is one kind of step: the key it is written under, what it
// takes and how to read it. Package step holds natlab's kinds, one unit
// each, and lists them in step.Kinds; the parser knows no kind of its own,
// only how to find a step's kind among those it is given and what every
// step shares (its name:, unknown keys, missing required ones).
type StepKind interface {
	// Key is the kind as the file writes it: punch.
	Key() string
	// Fields are the keys the step takes, in the order messages list
	// them, and Required those it cannot do without. A scalar kind has
	// none.
	Fields() []string
	Required() []string
	// Example is a minimal step of the kind, for messages: "punch:
	// {between: [alice, bob]}".
	Example() string
	// Scalar says the step takes one value rather than a mapping of
	// fields, as wait: 2s does.
	Scalar() bool
	// Read reads the step's fields, reporting problems through f, and
	// returns its value and the name it has unless the file gives one.
	Read(f *StepFields) (spec StepSpec, name string)
}

// StepSpec is the value of one step: what its kind read from the file,
// every default filled in.
type StepSpec interface {
	// Describe says on one line what the step does and expects, every
	// default spelt out, as it follows the kind in Step.String: " between
	// alice and bob, ..., expect ok".
	Describe() string
}

// StepKinds are the kinds of step a parser knows, in the order messages
// list them.
type StepKinds []StepKind

// Of returns the kind written key, or nil.
func (ks StepKinds) Of(key string) StepKind {
	for _, k := range ks {
		if k.Key() == key {
			return k
		}
	}
	return nil
}

// Keys lists the kinds' keys.
func (ks StepKinds) Keys() []string {
	keys := make([]string, len(ks))
	for i, k := range ks {
		keys[i] = k.Key()
	}
	return keys
}

// list is the kinds for messages: "stun, punch, ... or exec".
func (ks StepKinds) list() string {
	names := ks.Keys()
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Step is one action of a scenario's script with what it must observe.
type Step struct {
	// Kind is the step's kind as the file writes it: punch.
	Kind string
	// Name labels the step in reports: the file's name:, or one made up
	// from the step such as "punch alice bob".
	Name string
	// Pos is where the step's kind key is, for messages about it.
	Pos Position
	// Spec is what the kind read: a *step.Punch for a punch step.
	Spec StepSpec
}

// String describes the step on one line with every default spelt out:
// `step "punch alice bob": punch over ipv4 between alice and bob, ...`.
func (s Step) String() string {
	return fmt.Sprintf("step %s: %s%s", strconv.Quote(s.Name), s.Kind, s.Spec.Describe())
}

// StepWhat names a kind of step in messages: "an ice step".
func StepWhat(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind + " step"
	}
	return "a " + kind + " step"
}
