package step

import (
	"context"
	"fmt"
	"net"
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
// one of the protocols the nat speaks: NAT-PMP (RFC 6886), PCP (RFC 6887)
// or UPnP's Internet Gateway Device.
type Portmap struct {
	// The host that asks: right behind a nat with a port-mapping.
	From string `yaml:"from" format:"NodeRef" schema:"required"`
	// The protocol to ask by: one the host's nat speaks.
	Protocol string `yaml:"protocol" format:"PortMappingProtocol" default:"the first of nat-pmp, pcp, upnp the nat speaks"`
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
	s.From, s.Protocol = f.PortMappingHost("from", "protocol")
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
	return fmt.Sprintf(" %s from %s port %d, public port %d, lifetime %s, by %s, expect %s", s.Proto, s.From, s.Port, s.PublicPort, topology.FormatDuration(s.Lifetime), s.Protocol, s.Expect)
}

// Expected is ok or fail.
func (s *Portmap) Expected() string { return s.Expect }

// Needs is the host's NAT's server of the protocol.
func (s *Portmap) Needs(env Env) []Need {
	if h := env.Topology().Node(s.From); h != nil {
		return need(h.Behind, topology.Service(portMappingService[s.Protocol]))
	}
	return nil
}

// portMappingService names the service of each protocol, as Needs and
// messages do.
var portMappingService = map[string]string{
	topology.PortMappingNATPMP: NATPMP,
	topology.PortMappingPCP:    PCP,
	topology.PortMappingUPnP:   UPnP,
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
	want := s.PublicPort
	if want == 0 {
		want = s.Port
	}
	public, m, err := s.ask(ctx, env, host, gw, c, want)
	if err != nil {
		return verdict(s, s.Expect, "fail", Result{Reason: err.Error(), Detail: fmt.Sprintf("%s asked %s (%v) by %s for %s port %d", s.From, gw.Name, gw.NAT.Gateway, s.Protocol, s.Proto, want)}), nil
	}
	env.Memory().SetForward(Forward{s.From, s.Proto, s.Port}, public)
	return verdict(s, s.Expect, "ok", Result{Data: m,
		Detail: fmt.Sprintf("%s: %s forwards %s %v to %s:%d for %s", s.Protocol, gw.Name, s.Proto, public, s.From, s.Port, nat.FormatDuration(m.Lifetime))}), nil
}

// ask asks gw for the mapping by the step's protocol, from the host's
// socket c, and returns the public endpoint it grants.
func (s *Portmap) ask(ctx context.Context, env Env, host, gw *topology.Node, c *net.UDPConn, want uint16) (netip.AddrPort, natpmp.Mapping, error) {
	client := natpmp.Client{Conn: c, Gateway: gw.NAT.Gateway}
	switch s.Protocol {
	case topology.PortMappingPCP:
		return client.MapPCP(ctx, string(s.Proto), host.Addresses[0], s.Port, want, s.Lifetime)
	case topology.PortMappingUPnP:
		hc, err := env.HTTPClient(s.From)
		if err != nil {
			return netip.AddrPort{}, natpmp.Mapping{}, err
		}
		u := natpmp.UPnPClient{SSDP: c, HTTP: hc, Client: host.Addresses[0]}
		control, err := u.Discover(ctx)
		if err != nil {
			return netip.AddrPort{}, natpmp.Mapping{}, err
		}
		m, err := u.Map(ctx, control, string(s.Proto), s.Port, want, s.Lifetime)
		if err != nil {
			return netip.AddrPort{}, natpmp.Mapping{}, err
		}
		addr, err := u.ExternalAddress(ctx, control)
		return netip.AddrPortFrom(addr, m.External), m, err
	default:
		addr, err := client.ExternalAddress(ctx)
		if err != nil {
			return netip.AddrPort{}, natpmp.Mapping{}, err
		}
		m, err := client.Map(ctx, string(s.Proto), s.Port, want, s.Lifetime)
		return netip.AddrPortFrom(addr, m.External), m, err
	}
}
