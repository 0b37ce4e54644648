package lab

import (
	"context"
	"fmt"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/nftconn"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

// lockRunning takes the lock of the running lab name, waiting for another
// process that holds it as Down does (up to LockPatience, or until ctx is
// done), and reads the lab's record and topology. The caller releases the
// lock.
func lockRunning(ctx context.Context, name string) (*labstate.Lock, *labstate.State, *topology.Topology, error) {
	waitCtx, cancel := context.WithTimeoutCause(ctx, LockPatience, fmt.Errorf("%v passed", LockPatience))
	lock, err := labstate.AcquireWait(waitCtx, name, nil)
	cancel()
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := labstate.Load(name)
	if err != nil {
		lock.Release()
		return nil, nil, nil, err
	}
	topo, err := st.Topology()
	if err != nil {
		lock.Release()
		return nil, nil, nil, err
	}
	return lock, st, topo, nil
}

// SwitchNAT turns NAT node of the running lab name into a NAT of type
// typ, in place: the mapping and filtering become the type's, and so does
// the port allocation (a switch to symmetric is the random-port symmetric
// NAT that defeats prediction); hairpin, timeout, port range and forwards
// stay. The NAT's table is replaced in one nftables transaction, so no
// packet meets half of each, and its conntrack table is flushed: mappings
// made under the old rules would otherwise go on being honoured by them.
// Port mappings granted by NAT-PMP go with the old table. The change is
// recorded, so status and rules show it. It returns the node as it now is.
//
// If another process holds the lab's lock, SwitchNAT waits for it as
// Down does: up to LockPatience, or until ctx is done.
func SwitchNAT(ctx context.Context, name, node string, typ nat.Type) (*topology.Node, error) {
	lock, st, topo, err := lockRunning(ctx, name)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	n := topo.Node(node)
	if n == nil || n.NAT == nil {
		return nil, fmt.Errorf("lab %s: %q is not a NAT node of the lab", name, node)
	}
	b := n.NAT.Behaviour
	b.Mapping, b.Filtering, b.Ports = typ.Mapping(), typ.Filtering(), typ.DefaultPorts()
	n.NAT.Type, n.NAT.Behaviour = typ, b
	rs, err := Rules(n)
	if err != nil {
		return nil, err
	}
	ns, err := namedns.Open(NamespaceName(name, node))
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node, err)
	}
	defer ns.Close()
	conn, err := nftconn.Dial(ns.Fd())
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node, err)
	}
	defer conn.Close()
	// Adding the table first makes the delete valid whatever is there.
	conn.AddTable(rs.Table())
	conn.DelTable(rs.Table())
	if err := rs.AddTo(conn.Conn); err != nil {
		return nil, fmt.Errorf("node %s: rules: %w", node, err)
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("node %s: replace the nftables table: %w", node, err)
	}
	ct, err := conntrack.Dial(&netlink.Config{NetNS: ns.Fd()})
	if err != nil {
		return nil, fmt.Errorf("node %s: conntrack: %w", node, err)
	}
	defer ct.Close()
	if err := ct.Flush(); err != nil {
		return nil, fmt.Errorf("node %s: flush conntrack: %w", node, err)
	}
	if st.NATChanges == nil {
		st.NATChanges = map[string]labstate.NATChange{}
	}
	st.NATChanges[node] = labstate.NATChange{Type: typ, Behaviour: b}
	if err := labstate.Save(st); err != nil {
		return nil, fmt.Errorf("lab %s: record the switch: %w", name, err)
	}
	return n, nil
}
