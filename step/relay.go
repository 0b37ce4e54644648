package step

import (
	"context"
	"fmt"
	"time"

	"github.com/natlab/natlab/relay"
	"github.com/natlab/natlab/topology"
)

// Relay connects two hosts through a TURN server.
type Relay struct {
	// The two hosts.
	Between [2]string `yaml:"between" format:"HostPair" schema:"required"`
	// The TURN server.
	Server string `yaml:"server" format:"NodeRef" default:"the first server with turn"`
	// How long connecting may take, 100ms to 5m.
	Timeout time.Duration `yaml:"timeout" format:"Duration" default:"5s"`
	// Whether the relayed data must get through.
	Expect string   `yaml:"expect" format:"OKFail" default:"ok"`
	_      struct{} `name:"relay A B"`
}

func (s *Relay) read(f *topology.StepFields) string {
	s.Between = f.Between()
	s.Server, _ = f.Server("server", topology.ServiceTURN, true)
	s.Timeout = f.Timeout(5*time.Second, topology.MaxStepTimeout)
	s.Expect = f.Outcome(okFail, "ok", "ok or fail", nil)
	return fmt.Sprintf("relay %s %s", s.Between[0], s.Between[1])
}

// Describe says who connects through which server.
func (s *Relay) Describe() string {
	return fmt.Sprintf(" between %s and %s, turn server %s, timeout %s, expect %s", s.Between[0], s.Between[1], s.Server, topology.FormatDuration(s.Timeout), s.Expect)
}

// Expected is ok or fail.
func (s *Relay) Expected() string { return s.Expect }

// Needs is the TURN server.
func (s *Relay) Needs(Env) []Need { return need(s.Server, topology.ServiceTURN) }

// relayConfig is how to reach the lab's TURN server on server.
func relayConfig(env Env, server string, timeout time.Duration) relay.Config {
	cred := env.TURN()
	return relay.Config{Server: env.Plan(server).TURN, Realm: cred.Realm, User: cred.User, Password: cred.Password, Timeout: timeout}
}

// Run allocates a relayed address for each host and sends data both
// ways through it.
func (s *Relay) Run(ctx context.Context, env Env) (Result, error) {
	a, b := s.Between[0], s.Between[1]
	ca, err := env.Fresh(a, topology.FamilyIPv4)
	if err != nil {
		return Result{}, err
	}
	cb, err := env.Fresh(b, topology.FamilyIPv4)
	if err != nil {
		return Result{}, err
	}
	out, err := relay.Connect(ctx, relayConfig(env, s.Server, s.Timeout), relay.Peer{Name: a, Conn: ca}, relay.Peer{Name: b, Conn: cb})
	res := Result{Data: out}
	if err != nil {
		res.Reason = err.Error()
		res.Detail = fmt.Sprintf("no relayed path between %s and %s", a, b)
		return verdict(s, s.Expect, "fail", res), nil
	}
	rtt := out.MedianRTT()
	res.RTT = NewRTT(out.RTTs)
	res.Detail = fmt.Sprintf("%s <-> relay %v <-> %s (from %v), rtt %v", a, out.Relayed, b, out.BSeen, Round(rtt))
	if direct, ok := env.Memory().RTT(a, b); ok && direct > 0 {
		res.Detail += fmt.Sprintf(", %.1fx the direct path's %v", float64(rtt)/float64(direct), Round(direct))
	}
	return verdict(s, s.Expect, "ok", res), nil
}
