package step

import (
	"context"
	"fmt"

	"github.com/natlab/natlab/topology"
)

// Move roams a host to the LAN of another nat, as a phone that leaves the
// wifi for the cellular network: it gets an address there and goes out
// through that nat, and the nat it left forgets its mappings.
type Move struct {
	// The host that moves.
	Node string `yaml:"node" format:"NodeRef" schema:"required"`
	// The nat it moves behind: another than the one it is behind.
	Behind string   `yaml:"behind" format:"NodeRef" schema:"required"`
	_      struct{} `name:"move NODE"`
}

func (s *Move) read(f *topology.StepFields) string {
	host, ok := f.Host("node")
	s.Node = host
	if !ok {
		host = ""
	}
	s.Behind = f.MoveTo("behind", host)
	f.Moved(host, s.Behind)
	return "move " + s.Node
}

// Describe says which host moves where.
func (s *Move) Describe() string { return fmt.Sprintf(" %s behind %s", s.Node, s.Behind) }

// Expected is ok: a move is an event, not a check.
func (s *Move) Expected() string { return "ok" }

// Needs is nothing: the move is the kernel's.
func (s *Move) Needs(Env) []Need { return nil }

// Run moves the host.
func (s *Move) Run(ctx context.Context, env Env) (Result, error) {
	before := env.Topology().Node(s.Node)
	from, old := before.Behind, before.Addresses[0]
	if err := env.Move(ctx, s.Node, s.Behind); err != nil {
		return Result{}, err
	}
	now := env.Topology().Node(s.Node).Addresses[0]
	left := "the internet"
	if from != "" {
		left = from
	}
	return verdict(s, "ok", "ok", Result{Detail: fmt.Sprintf("%s left %s (%v) and is behind %s at %v; %s's mappings of it are gone", s.Node, left, old, s.Behind, now, left)}), nil
}
