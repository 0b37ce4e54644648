package step

import (
	"context"
	"fmt"
	"time"

	"github.com/natlab/natlab/ice"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// ICE connects two hosts with ICE (RFC 8445), using every STUN and TURN
// server of the lab.
type ICE struct {
	// The two hosts.
	Between [2]string `yaml:"between" format:"HostPair" schema:"required"`
	// How long connecting may take, 100ms to 5m.
	Timeout time.Duration `yaml:"timeout" format:"Duration" default:"10s"`
	// The kind of candidate pair ICE must select, or fail.
	Expect string   `yaml:"expect" format:"ICEOutcome" default:"any successful connection"`
	_      struct{} `name:"ice A B"`
}

func (s *ICE) read(f *topology.StepFields) string {
	s.Between = f.Between()
	s.Timeout = f.Timeout(10*time.Second, topology.MaxStepTimeout)
	s.Expect = f.Outcome(topology.ICEOutcome("").Values(), "", "host, srflx, prflx, relay or fail",
		map[string]string{"ok": "leave expect out to accept any successful connection"})
	// A relayed candidate needs a TURN server, a server reflexive one a
	// STUN server.
	switch s.Expect {
	case "relay":
		f.NeedsServer("expect", s.Expect, topology.ServiceTURN)
	case "srflx":
		f.NeedsServer("expect", s.Expect, topology.ServiceSTUN)
	}
	return fmt.Sprintf("ice %s %s", s.Between[0], s.Between[1])
}

// Describe says who connects.
func (s *ICE) Describe() string {
	return fmt.Sprintf(" between %s and %s, timeout %s, expect %s", s.Between[0], s.Between[1], topology.FormatDuration(s.Timeout), s.Expected())
}

// Expected is the kind of pair, fail, or any connection.
func (s *ICE) Expected() string {
	if s.Expect == "" {
		return "any connection"
	}
	return s.Expect
}

// Needs is every STUN and TURN server of the lab: the agents gather from
// them all.
func (s *ICE) Needs(env Env) []Need {
	var ns []Need
	for _, n := range env.Topology().Nodes {
		plan := service.PlanFor(n)
		if plan.STUNServer().IsValid() {
			ns = append(ns, need(n.Name, topology.ServiceSTUN)...)
		}
		if plan.TURN.IsValid() {
			ns = append(ns, need(n.Name, topology.ServiceTURN)...)
		}
	}
	return ns
}

// Run connects two pion ICE agents, one in each host, and reports the
// pair they select.
func (s *ICE) Run(ctx context.Context, env Env) (Result, error) {
	var servers []ice.Server
	cred := env.TURN()
	for _, n := range env.Topology().Nodes {
		plan := service.PlanFor(n)
		if a := plan.STUNServer(); a.IsValid() {
			servers = append(servers, ice.Server{Addr: a})
		}
		if plan.TURN.IsValid() {
			servers = append(servers, ice.Server{TURN: true, Addr: plan.TURN, User: cred.User, Password: cred.Password})
		}
	}
	var agents [2]ice.Agent
	for i, name := range s.Between {
		n, err := env.Node(name)
		if err != nil {
			return Result{}, err
		}
		pn, err := n.PionNet()
		if err != nil {
			return Result{}, err
		}
		agents[i] = ice.Agent{Name: name, Net: pn}
	}
	out, err := ice.Connect(ctx, ice.Config{Servers: servers, Timeout: s.Timeout}, agents[0], agents[1])
	res := Result{Expect: s.Expected(), Data: out}
	if err != nil {
		res.Observed, res.Reason = "fail", err.Error()
		res.Pass = s.Expect == "fail"
		return res, nil
	}
	res.Observed = string(out.Rung)
	res.RTT = NewRTT([]time.Duration{out.RTT})
	res.Detail = fmt.Sprintf("selected %s %v <-> %s %v after %v, rtt %v", out.Local.Type, out.Local.Address, out.Remote.Type, out.Remote.Address, Round(out.Connected), Round(out.RTT))
	res.Pass = ICEPasses(s.Expect, string(out.Rung))
	return res, nil
}

// ICEPasses says whether ICE selecting a pair of kind got meets what a
// step expects ("" for any).
func ICEPasses(expect, got string) bool {
	switch expect {
	case "":
		return true
	case "srflx", "prflx":
		// Which of the two ICE reports depends on whose check arrives
		// first; both mean the NATs were punched.
		return got == string(ice.Srflx) || got == string(ice.Prflx)
	}
	return got == expect
}
