// Package service is what a lab needs to know of the services of its
// nodes (STUN, TURN, rendezvous, tunnel relay, DERP, NAT-PMP): where each
// listens (Plan), and how to start the process that serves a node's and
// wait until its sockets are open (Launch). It serves nothing itself:
// the serving code is package service/serve, which links the agents
// (pion, Tailscale's DERP); the kernel layer, which imports this package,
// links none of them.
//
// A service process is the program's own executable run again (the
// re-exec pattern), with the lab and node in its environment. The
// program's main must hand such a process to serve.Main before anything
// else, as cmd/natlab does; a test binary that brings up labs with
// services does it in its TestMain (labtest.Main).
package service

import (
	"net/netip"

	"github.com/natlab/natlab/topology"
)

// Where the services listen. The agents that serve and reach them take
// their ports from here, so the plan and the servers cannot disagree.
const (
	// STUNPort is STUN's port (RFC 8489), and STUNAltPort the
	// conventional alternate an RFC 5780 server also answers on.
	STUNPort    = 3478
	STUNAltPort = 3479
	// TURNPort is TURN's port, shared with STUN (RFC 8656).
	TURNPort = 3478
	// RendezvousPort is where natlab's HTTP rendezvous service listens.
	RendezvousPort = 7000
	// TunnelPort is where reverse-tunnel relays accept tunnels.
	TunnelPort = 4443
	// DERPPort is where natlab's DERP service listens (plain HTTP).
	DERPPort = 80
	// NATPMPPort is where NAT-PMP and PCP servers listen, on the
	// gateway's LAN address (RFC 6886, RFC 6887: one port for both).
	NATPMPPort = 5351
	// SSDPPort is where a NAT with UPnP answers SSDP searches (UDP, the
	// multicast group 239.255.255.250 on its LAN), and UPnPPort where it
	// serves its device description and control (HTTP, on the gateway's
	// LAN address), as miniupnpd does by default.
	SSDPPort = 1900
	UPnPPort = 5000
)

// STUNEndpoint says which of an RFC 5780 STUN server's sockets: address
// 0 or 1, port 0 or 1.
type STUNEndpoint struct{ Addr, Port int }

// STUNLayout is where a STUN server listens: Addrs[1] is invalid for a
// server with one address, which then cannot honour change-IP requests.
type STUNLayout struct {
	Addrs [2]netip.Addr
	Ports [2]uint16
}

// At is the transport address of one endpoint.
func (l STUNLayout) At(e STUNEndpoint) netip.AddrPort {
	return netip.AddrPortFrom(l.Addrs[e.Addr], l.Ports[e.Port])
}

// Endpoints lists the endpoints the layout has: four, or two with one
// address.
func (l STUNLayout) Endpoints() []STUNEndpoint {
	var eps []STUNEndpoint
	for a := 0; a < 2; a++ {
		if !l.Addrs[a].IsValid() {
			continue
		}
		for p := 0; p < 2; p++ {
			eps = append(eps, STUNEndpoint{a, p})
		}
	}
	return eps
}

// Plan is where a server node's services listen.
type Plan struct {
	// STUN is the RFC 5780 layout; STUN.Addrs[0] is invalid without stun.
	STUN STUNLayout
	// TURN is TURN's address (UDP and TCP), invalid without turn.
	TURN netip.AddrPort
	// Rendezvous is the HTTP rendezvous service's address, invalid
	// without rendezvous.
	Rendezvous netip.AddrPort
	// Tunnel is the reverse-tunnel relay's control address, invalid
	// without tunnel.
	Tunnel netip.AddrPort
	// NATPMP is a NAT node's NAT-PMP and PCP server, on its LAN
	// address, which serves UPnP too where the NAT speaks it; invalid
	// unless the NAT speaks one of them.
	NATPMP netip.AddrPort
	// DERP is the DERP relay's HTTP address, invalid without derp.
	DERP netip.AddrPort
}

// Any reports whether the node runs any service.
func (p Plan) Any() bool {
	return p.STUN.Addrs[0].IsValid() || p.TURN.IsValid() || p.Rendezvous.IsValid() || p.Tunnel.IsValid() || p.NATPMP.IsValid() || p.DERP.IsValid()
}

// PlanFor says where node n's services listen: STUN on 3478 and 3479 of
// its first two addresses, TURN on 3478 of its first address (sharing the
// UDP socket with STUN when both run), rendezvous on 7000, the tunnel
// relay's control port on 4443, DERP on HTTP port 80; and NAT-PMP and PCP on
// 5351 of a NAT's LAN address.
func PlanFor(n *topology.Node) Plan {
	var p Plan
	for _, s := range n.Services {
		switch s {
		case topology.ServiceSTUN:
			p.STUN.Addrs[0] = n.Addresses[0]
			if len(n.Addresses) > 1 {
				p.STUN.Addrs[1] = n.Addresses[1]
			}
			p.STUN.Ports = [2]uint16{STUNPort, STUNAltPort}
		case topology.ServiceTURN:
			p.TURN = netip.AddrPortFrom(n.Addresses[0], TURNPort)
		case topology.ServiceRendezvous:
			p.Rendezvous = netip.AddrPortFrom(n.Addresses[0], RendezvousPort)
		case topology.ServiceTunnel:
			p.Tunnel = netip.AddrPortFrom(n.Addresses[0], TunnelPort)
		case topology.ServiceDERP:
			p.DERP = netip.AddrPortFrom(n.Addresses[0], DERPPort)
		}
	}
	if n.NAT != nil && len(n.NAT.PortMapping) > 0 {
		p.NATPMP = netip.AddrPortFrom(n.NAT.Gateway, NATPMPPort)
	}
	return p
}

// STUNServer is the primary STUN endpoint, invalid without stun.
func (p Plan) STUNServer() netip.AddrPort {
	if !p.STUN.Addrs[0].IsValid() {
		return netip.AddrPort{}
	}
	return p.STUN.At(STUNEndpoint{})
}

// STUNAlternate is the RFC 5780 alternate endpoint (the other address and
// port), invalid without stun or with one address.
func (p Plan) STUNAlternate() netip.AddrPort {
	if !p.STUN.Addrs[1].IsValid() {
		return netip.AddrPort{}
	}
	return p.STUN.At(STUNEndpoint{Addr: 1, Port: 1})
}

// RendezvousURL is the rendezvous service's base URL.
func (p Plan) RendezvousURL() string {
	return "http://" + p.Rendezvous.String()
}

// DERPURL is the DERP service's URL, "" without derp.
func (p Plan) DERPURL() string {
	if !p.DERP.IsValid() {
		return ""
	}
	return "http://" + p.DERP.String() + "/derp"
}
