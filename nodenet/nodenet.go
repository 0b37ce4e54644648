// Package nodenet opens sockets inside a lab node. A socket belongs to the
// network namespace it was created in for its whole life, so natlab can
// run an agent for every node of a lab in one process: each agent's
// sockets are created inside its node, then used from any goroutine.
package nodenet

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/natlab/natlab/internal/namedns"
)

// Node is an open handle on one node's namespace.
type Node struct {
	name string
	ns   *namedns.NS
}

// Open opens the namespace called nsName (natlab-LAB-NODE); name is the
// node's name, for messages.
func Open(nsName, name string) (*Node, error) {
	ns, err := namedns.Open(nsName)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	return &Node{name: name, ns: ns}, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.name }

// Close releases the handle; sockets opened through it stay usable.
func (n *Node) Close() error { return n.ns.Close() }

// Do runs fn on a thread inside the node.
func (n *Node) Do(fn func() error) error {
	if err := namedns.Do(n.ns, fn); err != nil {
		return fmt.Errorf("node %s: %w", n.name, err)
	}
	return nil
}

// ListenUDP opens a UDP socket in the node bound to local, e.g. ":0" for
// any address and a free port, or ":5000".
func (n *Node) ListenUDP(local string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := n.Do(func() error {
		addr, err := net.ResolveUDPAddr("udp4", local)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp4", addr)
		return err
	})
	return c, err
}

// Listen opens a listening socket in the node.
func (n *Node) Listen(network, local string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, local)
		return err
	})
	return l, err
}

// DialContext connects from the node. The connection attempt runs on the
// node's thread, and so blocks it until it succeeds or fails.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// DialTimeout is DialContext with a timeout.
func (n *Node) DialTimeout(network, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return n.DialContext(ctx, network, addr)
}

// ListenUDP6 opens an IPv6 UDP socket in the node.
func (n *Node) ListenUDP6(local string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := n.Do(func() error {
		addr, err := net.ResolveUDPAddr("udp6", local)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp6", addr)
		return err
	})
	return c, err
}
