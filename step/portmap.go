package step

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/natpmp"
	"github.com/natlab/natlab/topology"
)

// DefaultPortmapLifetime is how long a portmap step asks its mapping to
// last unless the step says otherwise: NAT-PMP's recommended lifetime
// (RFC 6886 section 3.3).
const DefaultPortmapLifetime = time.Hour

// Limits of a portmap step's lifetime: under a second a mapping is gone
// before it can be used; a day is longer than any script.
const (
	minPortmapLifetime = time.Second
	maxPortmapLifetime = 24 * time.Hour
)

// Portmap has a host ask the nat it is behind for a port mapping with
// NAT-PMP (RFC 6886).
type Portmap struct {
	// The host that asks: right behind a nat with port-mapping: nat-pmp.
	From string `yaml:"from" format:"NodeRef" schema:"required"`
	// The protocol to map.
	Proto topology.Protocol `yaml:"proto" format:"ProtoName" default:"tcp"`
	// The host's port to map.
	Port uint16 `yaml:"port" format:"Port" schema:"required"`
	// The public port to ask for.
	PublicPort uint16 `yaml:"public-port" format:"Port" default:"port"`
	// How long to ask the mapping to last, 1s to 24h.
	Lifetime time.Duration `yaml:"lifetime" format:"Duration" default:"1h"`
	// Whether the nat must grant the mapping.
	Expect string   `yaml:"expect" format:"OKFail" default:"ok"`
	_      struct{} `name:"portmap FROM PROTO PORT"`
}

func (s *Portmap) read(f *topology.StepFields) string {
	s.From = f.NATPMPHost("from")
	s.Proto = f.Protocol("proto", topology.TCP)
	s.Port = f.Port("port", 0)
	s.PublicPort = f.Port("public-port", s.Port)
	s.Lifetime = f.Duration("lifetime", minPortmapLifetime, maxPortmapLifetime, DefaultPortmapLifetime)
	s.Expect = f.Outcome(okFail, "ok", "ok or fail", nil)
	name := fmt.Sprintf("portmap %s %s %d", s.From, s.Proto, s.Port)
	if s.PublicPort != s.Port {
		name += fmt.Sprintf(" -> %d", s.PublicPort)
	}
	return name
}

// Describe says what the host asks for.
func (s *Portmap) Describe() string {
	return fmt.Sprintf(" %s from %s port %d, public port %d, lifetime %s, expect %s", s.Proto, s.From, s.Port, s.PublicPort, topology.FormatDuration(s.Lifetime), s.Expect)
}

// Expected is ok or fail.
func (s *Portmap) Expected() string { return s.Expect }

// Needs is the NAT-PMP server of the host's NAT.
func (s *Portmap) Needs(env Env) []Need {
	if h := env.Topology().Node(s.From); h != nil {
		return need(h.Behind, NATPMP)
	}
	return nil
}

// Run asks the host's NAT for the mapping; sends to the host's port go
// to the public endpoint it grants from then on.
func (s *Portmap) Run(ctx context.Context, env Env) (Result, error) {
	topo := env.Topology()
	host := topo.Node(s.From)
	gw := topo.Node(host.Behind)
	c, err := env.Fresh(s.From, topology.FamilyIPv4)
	if err != nil {
		return Result{}, err
	}
	client := natpmp.Client{Conn: c, Gateway: gw.NAT.Gateway}
	want := s.PublicPort
	if want == 0 {
		want = s.Port
	}
	m, err := client.Map(ctx, string(s.Proto), s.Port, want, s.Lifetime)
	if err != nil {
		return verdict(s, s.Expect, "fail", Result{Reason: err.Error(), Detail: fmt.Sprintf("%s asked %s (%v) for %s port %d", s.From, gw.Name, gw.NAT.Gateway, s.Proto, want)}), nil
	}
	public := netip.AddrPortFrom(gw.Addresses[0], m.External)
	env.Memory().SetForward(Forward{s.From, s.Proto, s.Port}, public)
	return verdict(s, s.Expect, "ok", Result{Data: m,
		Detail: fmt.Sprintf("%s forwards %s %v to %s:%d for %s", gw.Name, s.Proto, public, s.From, s.Port, nat.FormatDuration(m.Lifetime))}), nil
}
