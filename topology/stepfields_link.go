package topology

import (
	"github.com/natlab/natlab/linkcond"
)

// Node reads a field naming any node of the file: not the internet, which
// is no node and has no uplink.
func (r *StepFields) Node(key string) (string, bool) { return r.nodeField(key, nodesOnly) }

// LinkStep is what a link step gives besides its node.
type LinkStep struct {
	// Change is what changes, over the link as it is; with Clear, over a
	// perfect wire (Change.Cleared).
	Change linkcond.Change
	Clear  bool
	// State takes the link down (false) or brings it up (true); nil
	// leaves it as it is.
	State *bool
}

// linkStepExample is a link step for messages.
const linkStepExample = "{node: alice, delay: 100ms}, {node: alice, down: true} or {node: alice, clear: true}"

// LinkStep reads a link step's fields besides node: the conditions of
// LinkConditions for both directions, up: and down: mappings for one
// direction (as link: takes them), down: true or false, which takes the
// link down or brings it up again, and clear: true, which takes every
// condition away first. The conditions are checked over node's link as
// the file gives it and as the link steps before this one leave it, each
// problem at the value that causes it; node "" (a node that could not be
// read) is not checked.
func (r *StepFields) LinkStep(node string) LinkStep {
	var ls LinkStep
	s := &linkSpec{vals: make(map[[2]string]*value)}
	given := false
	for _, e := range r.fields.entries {
		path := joinPath(r.path, e.key)
		switch c := LinkConditionNamed(e.key); {
		case c != nil:
			r.p.linkValue(s, c, e.val, path, "")
		case e.key == LinkUp:
			r.p.linkMap(s, e.val, path, LinkUp)
		case e.key == LinkDown && e.val.kind == kindBool:
			up := !e.val.boolean
			ls.State = &up
		case e.key == LinkDown && e.val.kind == kindMap:
			r.p.linkMap(s, e.val, path, LinkDown)
		case e.key == LinkDown:
			if e.val.kind != kindInvalid {
				r.p.errs.errorf(e.val.pos, "%s: want true (the link goes down), false (it comes up) or the down direction's conditions, such as {rate: 1mbit}, not %s", path, e.val.describe())
			}
			s.bad = true
		case e.key == "clear":
			b, ok := r.p.boolean(e.val, path)
			ls.Clear = b
			s.bad = s.bad || !ok
		default:
			continue
		}
		given = true
	}
	if s.bad {
		r.check(false)
		return ls
	}
	if !given {
		r.Errorf(r.pos, "%s: nothing to change; want conditions, down: or clear:, as in %s", r.path, linkStepExample)
		return ls
	}
	ls.Change = s.change
	if ls.Clear {
		ls.Change = ls.Change.Cleared()
	}
	n := r.p.byName[node]
	if n == nil || n.node == nil {
		return ls
	}
	if r.p.stepLinks == nil {
		r.p.stepLinks = map[string]linkcond.Link{}
	}
	before, ok := r.p.stepLinks[node]
	if !ok {
		before = n.node.Link
	}
	after := ls.Change.Apply(before)
	err := after.Validate()
	if err == nil && r.p.topo.Internet6.IsValid() {
		err = after.ValidateDualStack()
	}
	if err != nil {
		r.p.linkProblem(s, r.fields, r.path, err)
		r.check(false)
		return ls
	}
	r.p.stepLinks[node] = after
	return ls
}
