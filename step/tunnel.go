package step

import (
	"context"
	"fmt"
	"strconv"

	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/tunnel"
)

// Tunnel has a host expose a local TCP port on a public port of a tunnel
// server, for the rest of the run.
type Tunnel struct {
	// The host that exposes its port.
	From string `yaml:"from" format:"NodeRef" schema:"required"`
	// The tunnel server.
	Server string `yaml:"server" format:"NodeRef" default:"the first server with tunnel"`
	// The host's local TCP port to expose.
	Port uint16 `yaml:"port" format:"Port" schema:"required"`
	// The public port to ask the server for, 1024 to 65535.
	PublicPort uint16 `yaml:"public-port" format:"Port" default:"one the server picks"`
	// Whether the tunnel must work.
	Expect string   `yaml:"expect" format:"OKFail" default:"ok"`
	_      struct{} `name:"tunnel FROM PORT"`
}

func (s *Tunnel) read(f *topology.StepFields) string {
	s.From, _ = f.Host("from")
	s.Server, _ = f.Server("server", topology.ServiceTunnel, true)
	s.Port = f.Port("port", 0)
	s.PublicPort = f.TunnelPublicPort("public-port")
	s.Expect = f.Outcome(okFail, "ok", "ok or fail", nil)
	return fmt.Sprintf("tunnel %s %d", s.From, s.Port)
}

// Describe says what the host exposes where.
func (s *Tunnel) Describe() string {
	public := "any"
	if s.PublicPort != 0 {
		public = strconv.Itoa(int(s.PublicPort))
	}
	return fmt.Sprintf(" from %s port %d, server %s, public port %s, expect %s", s.From, s.Port, s.Server, public, s.Expect)
}

// Expected is ok or fail.
func (s *Tunnel) Expected() string { return s.Expect }

// Needs is the tunnel server.
func (s *Tunnel) Needs(Env) []Need { return need(s.Server, topology.ServiceTunnel) }

// Run opens the tunnel; it stays open until the session closes, and
// sends to the host's port go to its public end.
func (s *Tunnel) Run(ctx context.Context, env Env) (Result, error) {
	n, err := env.Node(s.From)
	if err != nil {
		return Result{}, err
	}
	relay := env.Plan(s.Server).Tunnel
	c, err := tunnel.Open(ctx, n.DialContext, relay.Addr(), s.PublicPort, fmt.Sprintf("127.0.0.1:%d", s.Port))
	if err != nil {
		return verdict(s, s.Expect, "fail", Result{Reason: err.Error()}), nil
	}
	env.OnClose(c.Close)
	env.Memory().SetForward(Forward{s.From, topology.TCP, s.Port}, c.Public)
	return verdict(s, s.Expect, "ok", Result{Data: c.Public,
		Detail: fmt.Sprintf("%s is reachable at %v through %s, for as long as the run lasts", s.From, c.Public, theRelay(s.Server))}), nil
}

// theRelay names a relay server in a sentence: "the relay r1", or "the
// relay" for one named relay, not "the relay relay".
func theRelay(server string) string {
	if server == "relay" {
		return "the relay"
	}
	return "the relay " + server
}
