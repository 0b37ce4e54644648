package step

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/natlab/natlab/topology"
)

// Reboot power-cycles a nat: every mapping it made, every port mapping it
// granted and every conntrack entry it held are gone, and its services
// start again; what is configured stays. Paths punched through it stop
// until they are punched again.
type Reboot struct {
	// The nat to reboot.
	Node string `yaml:"node" format:"NodeRef" schema:"required"`
	// The public address it comes back with: a free address of its
	// uplink, as after renumber.
	Public netip.Addr `yaml:"public" format:"IPv4Addr" default:"the one it has"`
	_      struct{}   `name:"reboot NODE"`
}

func (s *Reboot) read(f *topology.StepFields) string {
	s.Node, s.Public = readRenumber(f)
	return "reboot " + s.Node
}

// Describe says which nat reboots, and with which address.
func (s *Reboot) Describe() string {
	if s.Public.IsValid() {
		return fmt.Sprintf(" of %s, public %v", s.Node, s.Public)
	}
	return fmt.Sprintf(" of %s, public address kept", s.Node)
}

// Expected is ok: a reboot is an event, not a check.
func (s *Reboot) Expected() string { return "ok" }

// Needs is nothing: the nat is the kernel's.
func (s *Reboot) Needs(Env) []Need { return nil }

// Run reboots the nat.
func (s *Reboot) Run(ctx context.Context, env Env) (Result, error) {
	if err := env.Reboot(ctx, s.Node, s.Public); err != nil {
		return Result{}, err
	}
	detail := s.Node + " rebooted: its mappings, leases and conntrack entries are gone"
	if s.Public.IsValid() {
		detail += fmt.Sprintf("; its public address is %v", s.Public)
	}
	return verdict(s, "ok", "ok", Result{Detail: detail}), nil
}
