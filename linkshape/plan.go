package linkshape

import (
	"net/netip"
	"slices"
	"time"

	"github.com/natlab/natlab/linkcond"
)

// Plan is what one namespace must hold for its lab's links to be as their
// conditions say. It is computed from the whole lab (PlanLab), because
// under the delay line a namespace holds the delays of the frames it
// receives from its neighbours.
type Plan struct {
	NS string
	// Devices are the ends of uplinks in the namespace, by name.
	Devices map[string]*Device
	// Routes are the namespace's routes, as a router's, to the nodes on
	// its LAN, and to its neighbours on the internet, with the MTU of
	// their links (0: no such route).
	Routes []Route
	// Queue is what the delay line does with the packets the namespace
	// receives, nil if it does nothing with them.
	Queue *Queue
}

// Device is one end of a node's uplink.
type Device struct {
	Name  string
	Index int
	// Egress is the direction of the link whose packets leave through
	// this end: the node's up direction at its own end, its down
	// direction at the bridge's.
	Egress linkcond.Direction
	// Ingress is the direction of the link whose packets arrive through
	// this end: the node's up direction at the bridge's end, zero at the
	// node's. Under netem it is carried out there, as they arrive (see
	// ingressHold), not as they leave the node.
	Ingress linkcond.Direction
	// MTU is the link's, 0 for the default.
	MTU int
	// Bridge is the bridge the end is a port of, "" for the node's end.
	Bridge      string
	BridgeIndex int
	// Down drops every frame that reaches the end from the wire.
	Down bool
}

// Route is a router's route to a node's address, with the MTU of the
// node's link. A namespace's routes of this kind are the ones its plan
// lists with an MTU: Apply removes the others.
type Route struct {
	Dev      string
	DevIndex int
	Addr     netip.Addr
	// MTU is the link's; 0 means the route is not wanted.
	MTU int
}

// Queue is the delay line's work in one namespace. A packet to an
// endpoint (a host or a server, whose programs read the kernel's stamp of
// a packet's arrival, as ping does) is held in the namespace that sends
// it, before it leaves: it arrives when it is due, and is stamped then. A
// packet to a router (a NAT, which forwards what it gets and stamps
// nothing that matters) is held there on arrival, where its sender's
// socket has let it go: a sender's socket buffer is not filled by the
// packets on the wire, and a NAT holds what it receives before its
// conntrack sees it. Each packet crosses the delay line once in each
// namespace that holds it, for the directions it crosses there.
type Queue struct {
	// UplinkIndex is the namespace's uplink, Up its node's up direction,
	// held here for what the node sends (or forwards) to the endpoints
	// among its neighbours, and Down its down direction, held here if the
	// node is a router, for what arrives through the uplink.
	UplinkIndex int
	Up, Down    Hold
	// Forwards says the namespace routes (a NAT): what it forwards is
	// held too, what goes up at prerouting, before its conntrack.
	Forwards bool
	// Peers are the endpoints the namespace sends to through its uplink
	// (its neighbours on that segment), LAN those on the LAN it routes
	// onto, with the holds of their down directions, by node.
	Peers, LAN map[string]Neighbour
	// FromPeers and FromLAN are the nodes whose up direction the
	// namespace, a router, holds for what arrives from them through its
	// uplink or its LAN, by node: known by the packet's source.
	FromPeers, FromLAN map[string]Neighbour
}

// Neighbour is a node a namespace exchanges packets with directly: its
// addresses and the IPv6 prefixes routed through it (IPv6 has no NAT), by
// which the packets to or from it are known, and the hold of the direction
// of its link they cross.
type Neighbour struct {
	Addrs    []netip.Addr
	Prefixes []netip.Prefix
	Hold     Hold
}

// Hold is the part of a direction the delay line carries out.
type Hold struct {
	Delay, Jitter time.Duration
	Reorder       float64
	// Cut says the link is down: what is held from it is dropped.
	Cut bool
}

// IsZero reports whether h holds nothing.
func (h Hold) IsZero() bool { return h.Delay == 0 && h.Jitter == 0 && h.Reorder == 0 }

// Holds reports whether the delay line holds the packets of direction d:
// whether it has a delay, a jitter or a reordering.
func Holds(d linkcond.Direction) bool { return !holdOf(d, false).IsZero() }

// holdOf is the delay line's part of d.
func holdOf(d linkcond.Direction, down bool) Hold {
	return Hold{Delay: d.Delay, Jitter: d.Jitter, Reorder: d.Reorder, Cut: down}
}

// PlanLab says what every namespace that holds an end of an uplink must
// hold, given each node's link (a node missing from links has a perfect
// wire).
func PlanLab(wires []Wire, links map[string]State, mech Mechanism) map[string]*Plan {
	plans := map[string]*Plan{}
	plan := func(ns string) *Plan {
		p := plans[ns]
		if p == nil {
			p = &Plan{NS: ns, Devices: map[string]*Device{}}
			plans[ns] = p
		}
		return p
	}
	for _, w := range wires {
		st := links[w.Node]
		l := st.Link
		plan(w.NS).Devices[w.Uplink] = &Device{Name: w.Uplink, Index: w.UplinkIndex, Egress: l.Up, MTU: l.MTU, Down: st.Down}
		parent := plan(w.ParentNS)
		parent.Devices[w.Port] = &Device{Name: w.Port, Index: w.PortIndex, Egress: l.Down, Ingress: l.Up, MTU: l.MTU, Bridge: w.Bridge, BridgeIndex: w.BridgeIndex, Down: st.Down}
		if w.Routed {
			for _, a := range w.Addrs {
				parent.Routes = append(parent.Routes, Route{Dev: w.Bridge, DevIndex: w.BridgeIndex, Addr: a, MTU: l.MTU})
			}
		}
	}
	// The internet is a switch standing for routers: a frame too big for
	// a node's link would die at the switch's port unanswered. So every
	// node on it gets a route to each neighbour with the MTU of the
	// narrower of their two links: a NAT, forwarding onto the internet,
	// answers a packet too big with ICMP "fragmentation needed" as the
	// router in front of the link would, and a server learns the MTU as
	// from that router's answer.
	for _, w := range wires {
		if w.Segment != "" {
			continue
		}
		for _, peer := range wires {
			if peer.Node == w.Node || peer.Segment != "" {
				continue
			}
			mtu := pathMTU(links[w.Node].Link.MTU, links[peer.Node].Link.MTU)
			if mtu == 0 {
				continue
			}
			for _, a := range peer.Addrs {
				plan(w.NS).Routes = append(plan(w.NS).Routes, Route{Dev: w.Uplink, DevIndex: w.UplinkIndex, Addr: a, MTU: mtu})
			}
		}
	}
	if mech != DelayLine {
		return plans
	}
	// A NAT owns the segment of the nodes behind it: it routes. The rest
	// are endpoints.
	routers := map[string]bool{}
	for _, w := range wires {
		if w.Segment != "" {
			routers[w.Segment] = true
		}
	}
	queue := func(w Wire) *Queue {
		p := plan(w.NS)
		if p.Queue == nil {
			p.Queue = &Queue{UplinkIndex: w.UplinkIndex, Forwards: routers[w.Node],
				Peers: map[string]Neighbour{}, LAN: map[string]Neighbour{}, FromPeers: map[string]Neighbour{}, FromLAN: map[string]Neighbour{}}
		}
		return p.Queue
	}
	up := func(w Wire) Hold { return holdOf(links[w.Node].Link.Up, links[w.Node].Down) }
	down := func(w Wire) Hold { return holdOf(links[w.Node].Link.Down, links[w.Node].Down) }
	for _, s := range wires {
		if h := up(s); !h.IsZero() {
			queue(s).Up = h
		}
		if h := down(s); !h.IsZero() && routers[s.Node] {
			queue(s).Down = h
		}
	}
	// Each pair of nodes that send to each other directly: the nodes on
	// one segment, and a node and the NAT that owns its segment.
	for _, s := range wires {
		for _, r := range wires {
			switch {
			case s.Node == r.Node:
			case s.Segment == r.Segment:
				// s sends to r through its uplink, r gets it through its.
				if routers[r.Node] {
					if h := up(s); !h.IsZero() {
						queue(r).FromPeers[s.Node] = Neighbour{Addrs: s.Addrs, Prefixes: s.Prefixes6, Hold: h}
					}
				} else if h := down(r); !h.IsZero() || !up(s).IsZero() {
					queue(s).Peers[r.Node] = Neighbour{Addrs: r.Addrs, Hold: h}
				}
			case s.Node == r.Segment:
				// s, a NAT, sends to r on its LAN: r's down direction.
				if h := down(r); !h.IsZero() && !routers[r.Node] {
					queue(s).LAN[r.Node] = Neighbour{Addrs: r.Addrs, Hold: h}
				}
			case r.Node == s.Segment:
				// s sends up to r, the NAT it is behind.
				if h := up(s); !h.IsZero() {
					queue(r).FromLAN[s.Node] = Neighbour{Addrs: s.Addrs, Prefixes: s.Prefixes6, Hold: h}
				}
			}
		}
	}
	return plans
}

// pathMTU is the MTU a route from a link of MTU own to a neighbour's of
// MTU peer needs: the peer's when it is the narrower, else 0 (none: the
// sender's own link already says it).
func pathMTU(own, peer int) int {
	if own == 0 {
		own = defaultMTU
	}
	if peer == 0 || peer >= own {
		return 0
	}
	return peer
}

// Affected lists the namespaces whose plan depends on node's link: its
// own, its parent's, and those of the nodes it exchanges packets with
// directly (the nodes on its segment and the NAT that owns it), which
// hold its directions under the delay line.
func Affected(wires []Wire, node string) []string {
	var w *Wire
	for i := range wires {
		if wires[i].Node == node {
			w = &wires[i]
		}
	}
	if w == nil {
		return nil
	}
	ns := []string{w.NS, w.ParentNS}
	for _, r := range wires {
		if r.Node != w.Node && (r.Segment == w.Segment || r.Node == w.Segment) && !slices.Contains(ns, r.NS) {
			ns = append(ns, r.NS)
		}
	}
	return ns
}

// IsZero reports whether p asks nothing of its namespace: what a
// namespace of a lab just built already has.
func (p *Plan) IsZero() bool {
	for _, d := range p.Devices {
		if !d.Egress.IsZero() || !d.Ingress.IsZero() || d.MTU != 0 || d.Down {
			return false
		}
	}
	for _, r := range p.Routes {
		if r.MTU != 0 {
			return false
		}
	}
	return p.Queue == nil
}

// Queues are the delay line's queues among plans, by namespace.
func Queues(plans map[string]*Plan) map[string]*Queue {
	q := map[string]*Queue{}
	for ns, p := range plans {
		if p.Queue != nil {
			q[ns] = p.Queue
		}
	}
	return q
}
