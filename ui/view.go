package ui

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/natlab/natlab/graph"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

// pageSizes are the page's boxes: taller than the SVG export's, to be read
// across a classroom, and as narrow as the tour's, wrapping past five
// boxes side by side, so that a lab of ten nodes keeps its names 14px or
// more in the picture beside the forms at 1400x900 (some 780px wide): a
// large lab grows down rather than shrinking.
var pageSizes = graph.Sizes{BoxW: 172, BoxH: 92, GapX: 16, GapY: 100, Margin: 12, MaxWidth: 1000}

// stateView is what the page draws, sent whole on every (re)connection
// and after a NAT changes type.
type stateView struct {
	Lab         string                `json:"lab"`
	Source      string                `json:"source"`
	Description string                `json:"description,omitempty"`
	Internet    string                `json:"internet"`
	Layout      *graph.Layout         `json:"layout"`
	Nodes       []nodeView            `json:"nodes"`
	Tables      map[string]*tableView `json:"tables"`
	Warnings    []string              `json:"warnings"`
	Choices     choices               `json:"choices"`
	// Walk names the punch being walked step by step ("alice bob"), ""
	// when none is under way.
	Walk     string `json:"walk"`
	Watchers int    `json:"watchers"`
}

type nodeView struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	Behind    string   `json:"behind,omitempty"`
	Addresses []string `json:"addresses"`
	Services  []string `json:"services,omitempty"`
	NAT       *natView `json:"nat,omitempty"`
	// Firewall is a host's own firewall (stateful), as natlab status
	// --json has it; left out for none.
	Firewall string `json:"firewall,omitempty"`
	// Link is the conditions of the node's uplink, as natlab status
	// --json has them too; left out for a perfect wire.
	Link *linkcond.View `json:"link,omitempty"`
	// LinkDown says the uplink was taken down: it drops everything, as
	// natlab status --json's link_down says.
	LinkDown bool `json:"link_down,omitempty"`
}

// natView is a NAT's type, its knobs (each of topology.NATKnobs, as a
// file writes it: "timeout": "2m", as natlab status --json has them), LAN
// and forwards.
type natView struct {
	// Type is the classic name, or "" when the knobs match none.
	Type      string
	Behaviour nat.Behaviour
	LAN       string
	Gateway   string
	Forwards  []string
	// Pooling is how a NAT with several public addresses gives them to
	// mappings, and PortBlocks a carrier-grade NAT's port blocks in
	// words; both empty when the NAT has none.
	Pooling    string
	PortBlocks string
}

func (v natView) MarshalJSON() ([]byte, error) {
	type before struct {
		Type string `json:"type"`
	}
	type after struct {
		LAN        string   `json:"lan"`
		Gateway    string   `json:"gateway"`
		Forwards   []string `json:"forwards,omitempty"`
		Pooling    string   `json:"pooling,omitempty"`
		PortBlocks string   `json:"port_blocks,omitempty"`
	}
	return topology.NATJSON(before{v.Type}, nat.Type(v.Type), v.Behaviour, after{v.LAN, v.Gateway, v.Forwards, v.Pooling, v.PortBlocks})
}

// choices are what the page's forms offer.
type choices struct {
	// Hosts can send, punch and ask STUN; Outside are the nodes on the
	// internet that can knock on a NAT.
	Hosts   []string `json:"hosts"`
	Servers []string `json:"servers"`
	Outside []string `json:"outside"`
	NATs    []string `json:"nats"`
	// STUN, TURN and DERP are the servers running those services.
	STUN  []string `json:"stun"`
	TURN  []string `json:"turn"`
	DERP  []string `json:"derp"`
	Types []string `json:"types"`
	// Links are the nodes whose uplink a link step changes: every node,
	// for the internet is none.
	Links []string `json:"links"`
	// Publics is, for each NAT, a free address of its uplink it could be
	// renumbered to (left out when there is none), so that the page can
	// offer one that works.
	Publics map[string]string `json:"publics"`
}

func newStateView(st *labstate.State, topo *topology.Topology, layout *graph.Layout) *stateView {
	v := &stateView{Lab: st.Name, Source: st.Source, Description: topo.Description, Internet: topo.Internet.String(),
		Layout: layout, Nodes: []nodeView{}, Warnings: []string{}}
	v.Choices.Publics = map[string]string{}
	// one-to-one too: a switch to it is refused, with the reason, where
	// the NAT has not exactly one host behind it.
	for _, t := range nat.AllTypes {
		v.Choices.Types = append(v.Choices.Types, string(t))
	}
	for _, n := range topo.Nodes {
		nv := nodeView{Name: n.Name, Kind: string(n.Kind), Behind: n.Behind, Link: linkcond.NewView(n.Link), LinkDown: st.Links[n.Name].Down,
			Firewall: string(n.Firewall)}
		v.Choices.Links = append(v.Choices.Links, n.Name)
		for _, a := range n.Addresses {
			nv.Addresses = append(nv.Addresses, a.String())
		}
		for _, svc := range n.Services {
			nv.Services = append(nv.Services, string(svc))
		}
		switch n.Kind {
		case topology.KindHost:
			v.Choices.Hosts = append(v.Choices.Hosts, n.Name)
		case topology.KindServer:
			v.Choices.Servers = append(v.Choices.Servers, n.Name)
			if slices.Contains(n.Services, topology.ServiceSTUN) {
				v.Choices.STUN = append(v.Choices.STUN, n.Name)
			}
			if slices.Contains(n.Services, topology.ServiceTURN) {
				v.Choices.TURN = append(v.Choices.TURN, n.Name)
			}
			if slices.Contains(n.Services, topology.ServiceDERP) {
				v.Choices.DERP = append(v.Choices.DERP, n.Name)
			}
		case topology.KindNAT:
			v.Choices.NATs = append(v.Choices.NATs, n.Name)
			if a := freeAddress(topo, n); a.IsValid() {
				v.Choices.Publics[n.Name] = a.String()
			}
			nv.NAT = &natView{Type: string(n.NAT.Type), Behaviour: n.NAT.Behaviour,
				LAN: n.NAT.LAN.String(), Gateway: n.NAT.Gateway.String(), Pooling: string(n.NAT.Pooling)}
			if n.NAT.Blocks.Enabled() {
				nv.NAT.PortBlocks = n.NAT.Blocks.String()
			}
			for _, f := range n.NAT.Forwards {
				nv.NAT.Forwards = append(nv.NAT.Forwards, fmt.Sprintf("%s %d → %s %v", f.Proto, f.Port, f.ToNode, f.To))
			}
		}
		if n.Behind == "" && n.Kind != topology.KindNAT {
			v.Choices.Outside = append(v.Choices.Outside, n.Name)
		}
		v.Nodes = append(v.Nodes, nv)
	}
	return v
}

// freeAddress is the lowest address of n's uplink that n could be
// renumbered to, among the first 256 after the network's own; the zero
// Addr when none is.
func freeAddress(topo *topology.Topology, n *topology.Node) netip.Addr {
	pfx := topo.Uplink(n)
	a := pfx.Masked().Addr()
	for range 256 {
		if a = a.Next(); !pfx.Contains(a) {
			break
		}
		if topo.AddressProblem(n, a) == "" {
			return a
		}
	}
	return netip.Addr{}
}
