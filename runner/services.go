package runner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// need is a service of a lab's node that a step talks to.
type need struct {
	node    string
	service string
}

// natPMP names the NAT-PMP service of a NAT node, which is no
// topology.Service: a NAT offers it with port-mapping: nat-pmp.
const natPMP = "NAT-PMP"

// serviceWords are the services as messages name them, in the order they
// name them.
var serviceWords = []struct{ service, word string }{
	{string(topology.ServiceSTUN), "STUN"},
	{string(topology.ServiceTURN), "TURN"},
	{string(topology.ServiceRendezvous), "rendezvous"},
	{string(topology.ServiceTunnel), "tunnel"},
	{string(topology.ServiceDERP), "DERP"},
	{natPMP, "NAT-PMP"},
}

// needs lists the services step s talks to.
func (r *Session) needs(s topology.Step) []need {
	var ns []need
	add := func(node string, svc topology.Service) {
		if node != "" {
			ns = append(ns, need{node, string(svc)})
		}
	}
	switch s.Kind {
	case topology.StepSTUN:
		add(s.Server, topology.ServiceSTUN)
		for _, name := range s.Servers {
			add(name, topology.ServiceSTUN)
		}
	case topology.StepPunch:
		if s.Family == topology.FamilyIPv4 {
			add(s.Server, topology.ServiceSTUN)
		}
		add(s.Rendezvous, topology.ServiceRendezvous)
	case topology.StepRelay:
		add(s.Server, topology.ServiceTURN)
	case topology.StepUpgrade:
		if r.plan(s.Server).DERP.IsValid() {
			add(s.Server, topology.ServiceDERP)
		} else {
			add(s.Server, topology.ServiceTURN)
		}
		add(s.STUN, topology.ServiceSTUN)
	case topology.StepICE:
		// The agents gather from every STUN and TURN server of the lab.
		for _, n := range r.topo.Nodes {
			plan := service.PlanFor(n)
			if plan.STUNServer().IsValid() {
				add(n.Name, topology.ServiceSTUN)
			}
			if plan.TURN.IsValid() {
				add(n.Name, topology.ServiceTURN)
			}
		}
	case topology.StepTunnel:
		add(s.Server, topology.ServiceTunnel)
	case topology.StepPortmap:
		if h := r.topo.Node(s.From); h != nil {
			add(h.Behind, natPMP)
		}
	}
	return ns
}

// running says whether the process serving node's services runs, as far
// as the lab's record tells: a node whose process is not recorded (a lab
// whose services natlab did not start) counts as running.
func (r *Session) running(node string) bool {
	for _, p := range r.st.Processes {
		if p.Node == node {
			return lab.ProcessAlive(p.PID, p.StartTime)
		}
	}
	return true
}

// servicesDown says which of the services step s talks to are not
// running, as in "the STUN and TURN services on srv are not running"; ""
// when they all run.
func (r *Session) servicesDown(s topology.Step) string {
	down := map[string][]string{}
	var nodes []string
	for _, n := range r.needs(s) {
		if r.running(n.node) {
			continue
		}
		if _, ok := down[n.node]; !ok {
			nodes = append(nodes, n.node)
		}
		if !slices.Contains(down[n.node], n.service) {
			down[n.node] = append(down[n.node], n.service)
		}
	}
	var parts []string
	for _, node := range nodes {
		var words []string
		for _, w := range serviceWords {
			if slices.Contains(down[node], w.service) {
				words = append(words, w.word)
			}
		}
		if len(words) == 1 {
			parts = append(parts, fmt.Sprintf("the %s service on %s is not running", words[0], node))
			continue
		}
		list := strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
		parts = append(parts, fmt.Sprintf("the %s services on %s are not running", list, node))
	}
	return strings.Join(parts, "; ")
}
