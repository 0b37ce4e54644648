package step

import (
	"context"
	"fmt"

	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/topology"
)

// Link changes the conditions of a node's uplink on the running lab, or
// takes the link down or brings it up again.
type Link struct {
	// The node whose uplink changes: a host, a server or a nat.
	Node string `yaml:"node" format:"NodeRef" schema:"required"`
	// The conditions to change, in both directions, each over what the
	// link has: those a node's link: takes stand here (delay, jitter,
	// loss, duplicate, reorder, rate, mtu). 0 or 0% takes one away.
	Conditions topology.LinkConditionKeys
	// Conditions of the up direction only, over those given beside up:.
	Up topology.LinkDirection `yaml:"up" default:"the conditions beside it"`
	// true takes the link down: it drops every packet, either way, until
	// a step with down: false brings it up again with the conditions it
	// had. As a mapping, the conditions of the down direction only.
	Down topology.LinkDownValue `yaml:"down" default:"the link stays up, or down, as it is"`
	// Take every condition away first, so that the link has only those
	// the step gives.
	Clear bool `yaml:"clear" default:"false"`
	// Set is what the fields say, read.
	Set topology.LinkStep
	_   struct{} `name:"link NODE"`
}

func (s *Link) read(f *topology.StepFields) string {
	s.Node, _ = f.Node("node")
	s.Set = f.LinkStep(s.Node)
	s.Clear = s.Set.Clear
	return "link " + s.Node
}

// Describe says what the step changes: " of alice: delay 100ms",
// " of alice: down".
func (s *Link) Describe() string {
	var what string
	if s.Set.Clear {
		what = "clear, then "
	}
	if !s.Set.Change.IsZero() {
		what += s.Set.Change.String()
	}
	if st := s.Set.State; st != nil {
		if what != "" {
			what += "; "
		}
		what += map[bool]string{true: "up", false: "down"}[*st]
	}
	return fmt.Sprintf(" of %s: %s", s.Node, what)
}

// Expected is ok: the change is made.
func (s *Link) Expected() string { return "ok" }

// Needs is nothing: the links are the kernel's.
func (s *Link) Needs(Env) []Need { return nil }

// Run changes the link, then takes it down or up.
func (s *Link) Run(ctx context.Context, env Env) (Result, error) {
	var l linkcond.Link
	changed := false
	if !s.Set.Change.IsZero() {
		var err error
		if l, err = env.SetLink(ctx, s.Node, s.Set.Change); err != nil {
			return Result{}, err
		}
		changed = true
	}
	detail := s.Node + "'s link"
	if changed {
		detail += ": " + l.String()
	}
	if st := s.Set.State; st != nil {
		if err := env.SetLinkState(ctx, s.Node, *st); err != nil {
			return Result{}, err
		}
		detail += map[bool]string{true: ", up", false: ", down: it drops everything"}[*st]
	}
	return verdict(s, "ok", "ok", Result{Detail: detail}), nil
}
