package labtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/topology"
)

// Node is one machine of a lab: a network namespace with the node's
// interfaces, addresses, routes and, for a NAT, its nftables rules. Its
// methods may be called from any goroutine.
type Node struct {
	// Name is the node's name in the scenario.
	Name string
	// Topology is the node as the scenario describes it, defaults filled
	// in; nil for the internet.
	Topology *topology.Node

	lab  *Lab
	once sync.Once
	ns   *namedns.NS
	err  error
}

// Namespace is the name of the node's network namespace, as `ip netns`
// lists it: natlab-LAB-NODE.
func (n *Node) Namespace() string { return lab.NamespaceName(n.lab.Name, n.Name) }

// handle opens the namespace once, and closes it when the test ends.
func (n *Node) handle() (*namedns.NS, error) {
	n.once.Do(func() {
		n.ns, n.err = namedns.Open(n.Namespace())
		if n.err == nil {
			n.lab.t.Cleanup(func() { n.ns.Close() })
		}
	})
	return n.ns, n.err
}

// Do runs fn inside the node and returns its error. fn runs on an OS
// thread locked to it and moved into the node's namespace, which is thrown
// away when fn returns, so no other goroutine ever runs in the node by
// accident. Sockets fn opens stay in the node for their whole life.
// Goroutines fn starts do not run in the node.
func (n *Node) Do(fn func() error) error {
	ns, err := n.handle()
	if err != nil {
		// It names the namespace, which names the node.
		return err
	}
	return namedns.Do(ns, fn)
}

// closeAtEnd closes c when the test ends, if the test has not.
func (n *Node) closeAtEnd(c io.Closer) { n.lab.t.Cleanup(func() { c.Close() }) }

// ListenPacket is net.ListenPacket inside the node: address ":0" is any
// address and a free port. The socket is closed when the test ends.
func (n *Node) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	n.closeAtEnd(c)
	return c, nil
}

// ListenUDP is ListenPacket for "udp", "udp4" or "udp6" returning the
// *net.UDPConn, e.g. ListenUDP("udp4", ":9000").
func (n *Node) ListenUDP(network, address string) (*net.UDPConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("node %s: listen: network %q is not udp, udp4 or udp6", n.Name, network)
	}
	c, err := n.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// Listen is net.Listen inside the node. The listener is closed when the
// test ends.
func (n *Node) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	n.closeAtEnd(l)
	return l, nil
}

// ListenTCP is Listen for "tcp", "tcp4" or "tcp6" returning the
// *net.TCPListener.
func (n *Node) ListenTCP(network, address string) (*net.TCPListener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("node %s: listen: network %q is not tcp, tcp4 or tcp6", n.Name, network)
	}
	l, err := n.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return l.(*net.TCPListener), nil
}

// Dial is net.Dial from the node.
func (n *Node) Dial(network, address string) (net.Conn, error) {
	return n.DialContext(context.Background(), network, address)
}

// DialContext is net.Dialer.DialContext from the node; as a method value
// it fits http.Transport.DialContext, for an HTTP client inside the node.
// A TCP connection attempt holds an OS thread until it succeeds, fails or
// ctx ends. The connection is closed when the test ends.
func (n *Node) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	n.closeAtEnd(c)
	return c, nil
}

// Addr is the node's first IPv4 address on its uplink: a host's address
// on its NAT's LAN (or on the internet), a server's first address, a
// NAT's public address. It is the zero Addr for the internet.
func (n *Node) Addr() netip.Addr {
	if a := n.Addrs(); len(a) > 0 {
		return a[0]
	}
	return netip.Addr{}
}

// Addrs are all the node's IPv4 addresses on its uplink; only servers
// have more than one.
func (n *Node) Addrs() []netip.Addr {
	if n.Topology == nil {
		return nil
	}
	return n.Topology.Addresses
}

// Addr6 is the node's first IPv6 address in a dual-stack lab (one with
// internet6:), and the zero Addr otherwise.
func (n *Node) Addr6() netip.Addr {
	if n.Topology == nil || len(n.Topology.Addresses6) == 0 {
		return netip.Addr{}
	}
	return n.Topology.Addresses6[0]
}

// PublicAddr is the IPv4 address the internet sees the node's packets
// come from: the public address of the outermost NAT in front of it (its
// own for a NAT on the internet), or its own address for a node on the
// internet. Where a NAT maps a socket to is up to the NAT; a server that
// echoes the source it sees tells.
func (n *Node) PublicAddr() netip.Addr {
	tn := n.Topology
	for tn != nil && tn.Behind != "" {
		tn = n.lab.Topology.Node(tn.Behind)
	}
	if tn == nil || len(tn.Addresses) == 0 {
		return netip.Addr{}
	}
	return tn.Addresses[0]
}

// LAN is the subnet behind a NAT node, and the zero Prefix for any other.
func (n *Node) LAN() netip.Prefix {
	if n.Topology == nil || n.Topology.NAT == nil {
		return netip.Prefix{}
	}
	return n.Topology.NAT.LAN
}

// SetLink gives the node's uplink the conditions l, whatever it had: l's
// delay, loss, rate and the rest, each direction's, and its MTU (the zero
// Link is a perfect wire). It returns once the kernel has them. A link
// that is down stays down.
func (n *Node) SetLink(l linkcond.Link) error {
	_, err := n.ChangeLink(linkcond.To(l))
	return err
}

// ChangeLink changes the conditions of the node's uplink that c names,
// and keeps the others, as natlab link does; it returns the link as it
// now is. A change that makes no valid link is refused whole.
func (n *Node) ChangeLink(c linkcond.Change) (linkcond.Link, error) {
	if n.Topology == nil {
		return linkcond.Link{}, fmt.Errorf("labtest: the internet has no uplink")
	}
	return lab.SetLink(context.Background(), n.lab.Name, n.Name, c)
}

// LinkDown takes the node's uplink down: it drops every packet, either
// way, until LinkUp.
func (n *Node) LinkDown() error { return n.setLinkState(false) }

// LinkUp brings the node's uplink up again, with the conditions it had.
func (n *Node) LinkUp() error { return n.setLinkState(true) }

func (n *Node) setLinkState(up bool) error {
	if n.Topology == nil {
		return fmt.Errorf("labtest: the internet has no uplink")
	}
	return lab.SetLinkState(context.Background(), n.lab.Name, n.Name, up)
}
