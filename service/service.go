// Package service runs the services of a lab's server nodes (STUN, TURN,
// rendezvous), each node's in its own process inside the node's network
// namespace, so they live as long as the lab and not as long as the
// natlab command that built it.
//
// The process is natlab's own executable run again (the re-exec pattern):
// Start runs it with two environment variables, and this package's init
// function sees them and serves instead of running the program's main.
// That way the same mechanism works for the natlab binary and for test
// binaries that build labs.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/natpmp"
	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/stunserver"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/tunnel"
	"github.com/natlab/natlab/turnserver"
	"github.com/natlab/natlab/upgrade"
)

// Plan is where a server node's services listen.
type Plan struct {
	// STUN is the RFC 5780 layout; STUN.Addrs[0] is invalid without stun.
	STUN stunserver.Layout
	// TURN is TURN's address (UDP and TCP), invalid without turn.
	TURN netip.AddrPort
	// Rendezvous is the HTTP rendezvous service's address, invalid
	// without rendezvous.
	Rendezvous netip.AddrPort
	// Tunnel is the reverse-tunnel relay's control address, invalid
	// without tunnel.
	Tunnel netip.AddrPort
	// NATPMP is a NAT node's NAT-PMP server, on its LAN address; invalid
	// unless the NAT offers port mapping.
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
// relay's control port on 4443, DERP on HTTP port 80; and NAT-PMP on 5351
// of a NAT's LAN address.
func PlanFor(n *topology.Node) Plan {
	var p Plan
	for _, s := range n.Services {
		switch s {
		case topology.ServiceSTUN:
			p.STUN.Addrs[0] = n.Addresses[0]
			if len(n.Addresses) > 1 {
				p.STUN.Addrs[1] = n.Addresses[1]
			}
			p.STUN.Ports = [2]uint16{stunserver.DefaultPort, stunserver.DefaultAltPort}
		case topology.ServiceTURN:
			p.TURN = netip.AddrPortFrom(n.Addresses[0], turnserver.DefaultPort)
		case topology.ServiceRendezvous:
			p.Rendezvous = netip.AddrPortFrom(n.Addresses[0], rendezvous.DefaultPort)
		case topology.ServiceTunnel:
			p.Tunnel = netip.AddrPortFrom(n.Addresses[0], tunnel.ControlPort)
		case topology.ServiceDERP:
			p.DERP = netip.AddrPortFrom(n.Addresses[0], upgrade.DERPPort)
		}
	}
	if n.NAT != nil && n.NAT.PortMapping == topology.PortMappingNATPMP {
		p.NATPMP = netip.AddrPortFrom(n.NAT.Gateway, natpmp.Port)
	}
	return p
}

// STUNServer is the primary STUN endpoint, invalid without stun.
func (p Plan) STUNServer() netip.AddrPort {
	if !p.STUN.Addrs[0].IsValid() {
		return netip.AddrPort{}
	}
	return p.STUN.At(stunserver.Endpoint{})
}

// RendezvousURL is the rendezvous service's base URL.
func (p Plan) RendezvousURL() string {
	return "http://" + p.Rendezvous.String()
}

// Run serves node n's services from the calling process, which must be
// inside the node's namespace, until ctx is done. ready is called once
// every socket is open. NAT-PMP edits the NAT's nftables table, in the
// process's namespace.
func Run(ctx context.Context, n *topology.Node, creds labstate.TURNCredentials, logf func(string, ...any), ready func()) error {
	plan := PlanFor(n)
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	var stun *stunserver.Server
	if plan.STUN.Addrs[0].IsValid() {
		var err error
		if stun, err = stunserver.Listen(plan.STUN); err != nil {
			return err
		}
		closers = append(closers, stun.Close)
		logf("stun: listening on %v (RFC 5780 alternate: %v)", plan.STUNServer(), alternate(plan.STUN))
	}
	if plan.TURN.IsValid() {
		cfg := turnserver.Config{RelayAddress: plan.TURN.Addr(), Realm: creds.Realm, User: creds.User, Password: creds.Password, Logf: logf}
		if stun != nil && plan.STUNServer() == plan.TURN {
			shared := turnserver.NewSharedConn(stun.Conn(stunserver.Endpoint{}))
			stun.HandleOther(func(at stunserver.Endpoint, from netip.AddrPort, packet []byte) {
				if at == (stunserver.Endpoint{}) {
					shared.Deliver(from, packet)
				}
			})
			cfg.UDP = shared
		} else {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(plan.TURN))
			if err != nil {
				return fmt.Errorf("turn: %w", err)
			}
			cfg.UDP = c
		}
		tcp, err := net.Listen("tcp4", plan.TURN.String())
		if err != nil {
			return fmt.Errorf("turn: %w", err)
		}
		cfg.TCP = tcp
		ts, err := turnserver.Start(cfg)
		if err != nil {
			tcp.Close()
			return err
		}
		closers = append(closers, ts.Close)
		logf("turn: listening on %v (udp and tcp), realm %s, user %s", plan.TURN, creds.Realm, creds.User)
	}
	if stun != nil {
		go stun.Serve(logf)
	}
	if plan.Rendezvous.IsValid() {
		l, err := net.Listen("tcp4", plan.Rendezvous.String())
		if err != nil {
			return fmt.Errorf("rendezvous: %w", err)
		}
		srv := &http.Server{Handler: rendezvous.NewServer().Handler(), ReadHeaderTimeout: 5e9}
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logf("rendezvous: %v", err)
			}
		}()
		closers = append(closers, srv.Close)
		logf("rendezvous: listening on %s", plan.RendezvousURL())
	}
	if plan.Tunnel.IsValid() {
		ts, err := tunnel.Listen(plan.Tunnel.Addr())
		if err != nil {
			return err
		}
		go ts.Serve(logf)
		closers = append(closers, ts.Close)
		logf("tunnel: relay control on %v", plan.Tunnel)
	}
	if plan.DERP.IsValid() {
		stop, err := upgrade.ServeDERP(plan.DERP.Addr(), logf)
		if err != nil {
			return err
		}
		closers = append(closers, stop)
		logf("derp: listening on %s", upgrade.DERPURL(plan.DERP.Addr()))
	}
	if plan.NATPMP.IsValid() {
		ps, err := natpmp.Listen(plan.NATPMP.Addr(), n.NAT.LAN, n.Addresses[0], n.NAT.Behaviour.PortRange)
		if err != nil {
			return err
		}
		go ps.Serve(logf)
		closers = append(closers, ps.Close)
		logf("nat-pmp: listening on %v", plan.NATPMP)
	}
	ready()
	<-ctx.Done()
	return nil
}

func alternate(l stunserver.Layout) string {
	if !l.Addrs[1].IsValid() {
		return "none: one address, so no RFC 5780 discovery"
	}
	return l.At(stunserver.Endpoint{Addr: 1, Port: 1}).String()
}
