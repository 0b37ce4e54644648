package step

import (
	"fmt"
	"slices"
	"strings"

	"github.com/natlab/natlab/topology"
)

// Need is a service of a lab's node that a step talks to.
type Need struct {
	Node    string
	Service string
}

// NATPMP names the NAT-PMP service of a NAT node, which is no
// topology.Service: a NAT offers it with port-mapping: nat-pmp.
const NATPMP = "NAT-PMP"

// PCP and UPnP name a NAT's other port-mapping services, offered with
// port-mapping: pcp and upnp.
const (
	PCP  = "PCP"
	UPnP = "UPnP"
)

// need is the need of node's svc; none when node is "".
func need(node string, svc topology.Service) []Need {
	if node == "" {
		return nil
	}
	return []Need{{node, string(svc)}}
}

// serviceWords are the services as messages name them, in the order they
// name them.
var serviceWords = []struct{ service, word string }{
	{string(topology.ServiceSTUN), "STUN"},
	{string(topology.ServiceTURN), "TURN"},
	{string(topology.ServiceRendezvous), "rendezvous"},
	{string(topology.ServiceTunnel), "tunnel"},
	{string(topology.ServiceDERP), "DERP"},
	{NATPMP, "NAT-PMP"},
	{PCP, "PCP"},
	{UPnP, "UPnP"},
}

// ServicesDown says which of the services u talks to are not running, as
// in "the STUN and TURN services on srv are not running"; "" when they
// all run.
func ServicesDown(env Env, u Unit) string {
	down := map[string][]string{}
	var nodes []string
	for _, n := range u.Needs(env) {
		if env.Running(n.Node) {
			continue
		}
		if _, ok := down[n.Node]; !ok {
			nodes = append(nodes, n.Node)
		}
		if !slices.Contains(down[n.Node], n.Service) {
			down[n.Node] = append(down[n.Node], n.Service)
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
