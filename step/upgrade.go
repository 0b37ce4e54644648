package step

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/upgrade"
)

// Upgrade connects two hosts through a relay at once, DERP or TURN over
// TCP, and moves them to a direct path when a punch beside it succeeds,
// as Tailscale does.
type Upgrade struct {
	// The two hosts.
	Between [2]string `yaml:"between" format:"HostPair" schema:"required"`
	// The relay to start on: a server with derp or turn. The direct path
	// is found with the first server with stun.
	Server string `yaml:"server" format:"NodeRef" default:"the first server with derp, else with turn"`
	// How long the upgrade may take, 100ms to 5m.
	Timeout time.Duration `yaml:"timeout" format:"Duration" default:"10s"`
	// The path the hosts must end up on.
	Expect string   `yaml:"expect" format:"UpgradeOutcome" default:"direct"`
	_      struct{} `name:"upgrade A B"`

	// Relay is the service the hosts start on: derp or turn.
	Relay topology.Service
	// STUN is the server the direct path is found with.
	STUN string
}

func (s *Upgrade) read(f *topology.StepFields) string {
	s.Between = f.Between()
	server, derp, stun := f.UpgradeServers()
	s.Server, s.STUN, s.Relay = server, stun, topology.ServiceTURN
	if derp {
		s.Relay = topology.ServiceDERP
	}
	s.Timeout = f.Timeout(10*time.Second, topology.MaxStepTimeout)
	s.Expect = f.Outcome(topology.UpgradeOutcome("").Values(), "direct", "direct or relay", map[string]string{
		"ok":   "did you mean direct?",
		"fail": "a failed upgrade leaves the hosts on the relay; did you mean relay?",
	})
	return fmt.Sprintf("upgrade %s %s", s.Between[0], s.Between[1])
}

// Describe says who connects, through which relay, and which STUN server
// finds the direct path.
func (s *Upgrade) Describe() string {
	return fmt.Sprintf(" between %s and %s, %s server %s, stun server %s, timeout %s, expect %s",
		s.Between[0], s.Between[1], s.Relay, s.Server, s.STUN, topology.FormatDuration(s.Timeout), s.Expect)
}

// Expected is direct or relay.
func (s *Upgrade) Expected() string { return s.Expect }

// Needs is the relay and the STUN server.
func (s *Upgrade) Needs(Env) []Need {
	return append(need(s.Server, s.Relay), need(s.STUN, topology.ServiceSTUN)...)
}

// Run relays first and moves to a direct path if a punch beside it finds
// one.
func (s *Upgrade) Run(ctx context.Context, env Env) (Result, error) {
	board := punch.NewBoard()
	var peers [2]upgrade.Peer
	for i, name := range s.Between {
		data, err := env.Fresh(name, topology.FamilyIPv4)
		if err != nil {
			return Result{}, err
		}
		pc, err := env.Fresh(name, topology.FamilyIPv4)
		if err != nil {
			return Result{}, err
		}
		n, err := env.Node(name)
		if err != nil {
			return Result{}, err
		}
		local := netip.AddrPortFrom(address(env.Topology(), name, topology.FamilyIPv4), LocalPort(pc))
		peers[i] = upgrade.Peer{Name: name, Data: data,
			Punch: punch.Peer{Name: name, Conn: pc, Local: local, Exchange: board},
			Dial: func(network, addr string) (net.Conn, error) {
				return n.DialContext(ctx, network, addr)
			}}
	}
	cfg := upgrade.Config{
		TURN:  relayConfig(env, s.Server, s.Timeout),
		Punch: punch.Config{STUN: env.Plan(s.STUN).STUNServer(), Timeout: s.Timeout},
	}
	if s.Relay == topology.ServiceDERP {
		cfg.DERP = env.Plan(s.Server).DERPURL()
	}
	out, err := upgrade.Run(ctx, cfg, peers[0], peers[1])
	res := Result{Data: out}
	if err != nil {
		res.Reason = err.Error()
		return verdict(s, s.Expect, "fail", res), nil
	}
	a, b := s.Between[0], s.Between[1]
	relayRTT := NewRTT(out.RelayRTTs)
	if out.Upgraded {
		// The RTT of the path the hosts end on is the direct one's, and
		// the relay's before it is beside it: what the upgrade saved.
		res.RTT, res.RelayRTT = NewRTT(out.DirectRTTs), relayRTT
		res.Detail = fmt.Sprintf("%s -> %s: through %s from %v, direct after %v; %d packets over the relay, %d direct, %d lost",
			a, b, out.Relay, Round(out.FirstData), Round(out.UpgradedAt), out.OverRelay, out.Direct, out.Lost())
		if relayRTT != nil && res.RTT != nil {
			// The moment of the move: the last echo over the relay and
			// the first over the direct path.
			res.Detail += fmt.Sprintf("\nrtt %v over the relay, then %v direct: the last packet over the relay took %v, the first direct one %v",
				Round(relayRTT.Median), Round(res.RTT.Median), Round(out.RelayRTTs[len(out.RelayRTTs)-1]), Round(out.DirectRTTs[0]))
		}
		return verdict(s, s.Expect, "direct", res), nil
	}
	res.RTT = relayRTT
	res.Detail = fmt.Sprintf("%s -> %s: through %s from %v; no direct path, so the data stays on the relay (%d packets, %d lost)",
		a, b, out.Relay, Round(out.FirstData), out.OverRelay, out.Lost())
	res.Reason = out.PunchError
	return verdict(s, s.Expect, "relay", res), nil
}
