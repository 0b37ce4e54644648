package labtest

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/topology"
)

// Reboot power-cycles the node, a NAT, as lab.Reboot does: every mapping
// it made, every port mapping it granted and every conntrack entry in it
// are gone, and its services start again; what is configured stays. A
// path punched through it lets nothing in until a host sends out again.
// An error that is lab.ErrBadChange (the node is no NAT) changed nothing.
func (n *Node) Reboot() error {
	return n.change(func(ctx context.Context) (*topology.Node, error) {
		return lab.Reboot(ctx, n.lab.Name, n.Name, netip.Addr{})
	})
}

// Renumber gives the node, a NAT, a new public address, as an ISP does
// and lab.Renumber: addr must be a free address of its uplink. The
// mappings of the old address are gone. After it, the lab's Topology and
// State and each node's Topology are the lab as it is now, so Addr and
// PublicAddr give the new address; call it from the test's goroutine,
// while no other uses them.
func (n *Node) Renumber(addr netip.Addr) error {
	return n.change(func(ctx context.Context) (*topology.Node, error) {
		return lab.Renumber(ctx, n.lab.Name, n.Name, addr)
	})
}

// Move roams the node, a host, to the LAN of the NAT called nat, as
// lab.Move does: it gets the lowest free address there and goes out
// through nat, and the NAT it left forgets its mappings. Sockets bound to
// no address go on, from the new address. After it, the lab's Topology
// and State and each node's Topology are the lab as it is now, so Addr
// and PublicAddr follow the host; call it from the test's goroutine,
// while no other uses them.
func (n *Node) Move(nat string) error {
	return n.change(func(ctx context.Context) (*topology.Node, error) {
		return lab.Move(ctx, n.lab.Name, n.Name, nat)
	})
}

// change makes a change to the running lab and reads its record again.
func (n *Node) change(fn func(ctx context.Context) (*topology.Node, error)) error {
	if _, err := fn(context.Background()); err != nil {
		return err
	}
	st, err := labstate.Load(n.lab.Name)
	if err != nil {
		return fmt.Errorf("labtest: %w", err)
	}
	topo, err := st.Topology()
	if err != nil {
		return fmt.Errorf("labtest: %w", err)
	}
	topo.Source, topo.Steps = n.lab.Topology.Source, n.lab.Topology.Steps
	l := n.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	l.State, l.Topology = st, topo
	for name, node := range l.nodes {
		if name != topology.Internet {
			node.Topology = topo.Node(name)
		}
	}
	return nil
}
