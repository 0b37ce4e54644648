package lab

import (
	"context"
	"fmt"

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
// A NAT becomes one-to-one only as a file could make it one: with exactly
// one host behind it, and no forwards or port mapping, for that host owns
// every port; otherwise SwitchNAT changes nothing and returns an
// ErrBadChange.
//
// If another process holds the lab's lock, SwitchNAT waits for it as
// Down does: up to LockPatience, or until ctx is done.
func SwitchNAT(ctx context.Context, name, node string, typ nat.Type) (*topology.Node, error) {
	return changeNAT(ctx, name, node, func(c *natChange) error {
		if typ == nat.OneToOne {
			if err := oneToOneProblem(c); err != nil {
				return err
			}
		}
		b := c.n.NAT.Behaviour
		b.Mapping, b.Filtering, b.Ports = typ.Mapping(), typ.Filtering(), typ.DefaultPorts()
		if c.n.NAT.Blocks.Enabled() && b.Ports == nat.PortPreserve {
			// A subscriber's ports are its blocks': a nat with port
			// blocks picks them, at random as a file's default has it.
			b.Ports = nat.PortRandom
		}
		c.n.NAT.Type, c.n.NAT.Behaviour = typ, b
		if err := c.replaceRules(); err != nil {
			return err
		}
		if err := c.flushConntrack(); err != nil {
			return err
		}
		if c.st.NATChanges == nil {
			c.st.NATChanges = map[string]labstate.NATChange{}
		}
		c.st.NATChanges[node] = labstate.NATChange{Type: typ, Behaviour: b}
		return nil
	})
}

// oneToOneProblem says why the NAT of c cannot become one-to-one.
func oneToOneProblem(c *natChange) error {
	n := c.n
	if len(n.Addresses) > 1 {
		return badChangef("lab %s: node %s: one-to-one: a one-to-one nat has one public address, its host's, and %s has a pool", c.topo.Name, n.Name, n.Name)
	}
	if _, msg := c.topo.OneToOneHost(n); msg != "" {
		return badChangef("lab %s: node %s: one-to-one: %s", c.topo.Name, n.Name, msg)
	}
	if n.NAT.Blocks.Enabled() {
		return badChangef("lab %s: node %s: one-to-one: its port blocks would have nothing to do, for its host would own every port; a file that gives them cannot make it one-to-one", c.topo.Name, n.Name)
	}
	if len(n.NAT.Forwards) > 0 || len(n.NAT.PortMapping) > 0 {
		return badChangef("lab %s: node %s: one-to-one: its forwards and port mapping would have nothing to do, for its host would own every port; a file that gives them cannot make it one-to-one", c.topo.Name, n.Name)
	}
	return nil
}
