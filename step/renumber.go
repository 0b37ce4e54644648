package step

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/natlab/natlab/topology"
)

// Renumber gives a nat a new public address, as an ISP does: it
// translates to the new address from then on, and the mappings of the old
// one break, as on a real router.
type Renumber struct {
	// The nat to renumber.
	Node string `yaml:"node" format:"NodeRef" schema:"required"`
	// Its new public address: a free address of its uplink (for a nat on
	// the internet, of the internet). A nat with a pool of public
	// addresses is not renumbered.
	Public netip.Addr `yaml:"public" format:"IPv4Addr" schema:"required"`
	_      struct{}   `name:"renumber NODE"`
}

func (s *Renumber) read(f *topology.StepFields) string {
	s.Node, s.Public = readRenumber(f)
	return "renumber " + s.Node
}

// readRenumber reads the fields of a step that gives a nat, node, a new
// address, public, and notes the change for the steps after it.
func readRenumber(f *topology.StepFields) (node string, public netip.Addr) {
	node, ok := f.NAT("node")
	checkAgainst := node
	if !ok {
		checkAgainst = ""
	}
	public = f.NewAddress("public", checkAgainst)
	f.Renumbered(checkAgainst, public)
	return node, public
}

// Describe says which nat gets which address.
func (s *Renumber) Describe() string { return fmt.Sprintf(" of %s to %v", s.Node, s.Public) }

// Expected is ok: a renumber is an event, not a check.
func (s *Renumber) Expected() string { return "ok" }

// Needs is nothing: the nat is the kernel's.
func (s *Renumber) Needs(Env) []Need { return nil }

// Run renumbers the nat.
func (s *Renumber) Run(ctx context.Context, env Env) (Result, error) {
	old := env.Topology().Node(s.Node).Addresses[0]
	if err := env.Renumber(ctx, s.Node, s.Public); err != nil {
		return Result{}, err
	}
	return verdict(s, "ok", "ok", Result{Detail: fmt.Sprintf("%s's public address is %v, was %v; its mappings of %v are gone", s.Node, s.Public, old, old)}), nil
}
