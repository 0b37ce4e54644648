package runner

import (
	"context"
	"fmt"

	"github.com/natlab/natlab/ice"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

func (r *Session) ice(ctx context.Context, s topology.Step) (StepResult, error) {
	var servers []ice.Server
	cred := r.st.TURN
	for _, n := range r.topo.Nodes {
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
		n, err := r.node(name)
		if err != nil {
			return StepResult{}, err
		}
		pn, err := n.PionNet()
		if err != nil {
			return StepResult{}, err
		}
		agents[i] = ice.Agent{Name: name, Net: pn}
	}
	out, err := ice.Connect(ctx, ice.Config{Servers: servers, Timeout: s.Timeout}, agents[0], agents[1])
	res := StepResult{Expect: expectWord(s), Data: out}
	if err != nil {
		res.Observed, res.Reason = "fail", err.Error()
		res.Pass = s.Expect.Outcome == "fail"
		return res, nil
	}
	res.Observed = string(out.Rung)
	res.Detail = fmt.Sprintf("selected %s %v <-> %s %v after %v, rtt %v", out.Local.Type, out.Local.Address, out.Remote.Type, out.Remote.Address, Round(out.Connected), Round(out.RTT))
	switch s.Expect.Outcome {
	case "":
		res.Pass = true
	case "srflx", "prflx":
		// Which of the two ICE reports depends on whose check arrives
		// first; both mean the NATs were punched.
		res.Pass = out.Rung == ice.Srflx || out.Rung == ice.Prflx
	default:
		res.Pass = string(out.Rung) == s.Expect.Outcome
	}
	return res, nil
}
