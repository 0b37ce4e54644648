package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/nftconn"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// ErrBadChange means a change asked of a running lab cannot be made as
// asked (a node that is not a NAT, an address outside its uplink or held
// by another node); nothing was changed.
// errors.Is tells them; their message is the problem alone.
var ErrBadChange = errors.New("bad change")

type badChange struct{ msg string }

func (e badChange) Error() string        { return e.msg }
func (e badChange) Is(target error) bool { return target == ErrBadChange }

func badChangef(format string, args ...any) error {
	return badChange{fmt.Sprintf(format, args...)}
}

// Reboot power-cycles NAT node of the running lab name: every mapping it
// made, every port mapping (NAT-PMP lease) it granted and every conntrack
// entry in its namespace are gone, as after a router's reboot (its maps
// emptied, as natrules' Ruleset.Forget does), while what is configured
// (its behaviour, its rules, its static forwards) stays. Its services
// start again: NAT-PMP begins a new epoch, which tells clients their
// leases are gone (RFC 6886 section 3.6). With public
// valid the NAT comes back with that public address, as Renumber gives
// it; the zero Addr keeps the one it has. It takes the lab's lock as
// SwitchNAT does, and returns the node as it now is.
func Reboot(ctx context.Context, name, node string, public netip.Addr) (*topology.Node, error) {
	return changeNAT(ctx, name, node, func(c *natChange) error {
		c.restart = true
		renumbered := public.IsValid() && public != c.n.Addresses[0]
		if renumbered {
			if err := c.renumber(public); err != nil {
				return err
			}
			// Its rules translate to the address: a new table, whose
			// maps hold only the static forwards.
			if err := c.replaceRules(); err != nil {
				return err
			}
		}
		if err := c.forgetMaps(!renumbered); err != nil {
			return err
		}
		return c.flushConntrack()
	})
}

// Renumber gives NAT node of the running lab name a new public address,
// as an ISP does: the address of its uplink changes, its rules translate
// to the new one, and the lab's record says so (natlab status shows it).
// Existing mappings break as on a real router: natlab's maps of them are
// emptied, and conntrack's entries of the old address are deleted, so a
// flow that goes on is mapped afresh, from the new address, and NAT-PMP,
// started again, gives out the new address. public must
// be a free host address of the NAT's uplink subnet.
func Renumber(ctx context.Context, name, node string, public netip.Addr) (*topology.Node, error) {
	if !public.IsValid() {
		return nil, badChangef("lab %s: node %s: renumber: no address given", name, node)
	}
	return changeNAT(ctx, name, node, func(c *natChange) error {
		c.restart = true
		old := c.n.Addresses[0]
		if err := c.renumber(public); err != nil {
			return err
		}
		if err := c.replaceRules(); err != nil {
			return err
		}
		return c.forgetAddress(old)
	})
}

// natChange is one change of a NAT node of a running lab, with the lab's
// lock held: its record, its topology as recorded (the changes made so
// far applied), the node, and its namespace.
type natChange struct {
	st   *labstate.State
	topo *topology.Topology
	n    *topology.Node
	ns   *namedns.NS
	// restart says the node's services start again after the change;
	// renumbered that its address changed.
	restart, renumbered bool
}

// changeNAT takes lab name's lock as SwitchNAT does, checks that node is
// one of its NATs, and runs fn on it; the record is saved after fn
// succeeds, for fn may have changed it.
func changeNAT(ctx context.Context, name, node string, fn func(c *natChange) error) (*topology.Node, error) {
	var n *topology.Node
	err := changeLab(ctx, name, func(st *labstate.State, topo *topology.Topology) error {
		n = topo.Node(node)
		if n == nil || n.NAT == nil {
			return badChangef("lab %s: %q is not a NAT node of the lab", name, node)
		}
		ns, err := namedns.Open(NamespaceName(name, node))
		if err != nil {
			return fmt.Errorf("node %s: %w", node, err)
		}
		defer ns.Close()
		c := &natChange{st: st, topo: topo, n: n, ns: ns}
		if err := fn(c); err != nil {
			return err
		}
		if err := labstate.Save(st); err != nil {
			return fmt.Errorf("lab %s: record the change of %s: %w", name, node, err)
		}
		if c.renumbered && len(st.Links) > 0 {
			// What shapes the links knows the node by its address: the
			// NAT it is behind routes to it with the link's MTU.
			if err := reshape(ctx, st, topo, node); err != nil {
				return fmt.Errorf("lab %s: node %s: link: %w", name, node, err)
			}
		}
		if c.restart && service.PlanFor(n).Any() {
			// After the record is saved: the new process reads it.
			if err := c.restartServices(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// changeLab takes lab name's lock (lockRunning), with its record and
// topology (the changes made so far applied), runs fn, and saves the
// record after fn succeeds, for fn may have changed it.
func changeLab(ctx context.Context, name string, fn func(st *labstate.State, topo *topology.Topology) error) error {
	lock, st, topo, err := lockRunning(ctx, name)
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := fn(st, topo); err != nil {
		return err
	}
	if err := labstate.Save(st); err != nil {
		return fmt.Errorf("lab %s: record the change: %w", name, err)
	}
	return nil
}

// restartServices stops the node's service process and starts it again,
// as a router's daemons start afresh when it does: NAT-PMP forgets what
// it granted, begins a new epoch (how RFC 6886 section 3.6 tells clients
// their mappings are gone) and gives out the address the node has now.
func (c *natChange) restartServices() error {
	node := c.n.Name
	var pids []int
	own := map[int]bool{}
	kept := c.st.Processes[:0:0]
	for _, p := range c.st.Processes {
		switch {
		case p.Node != node || p.What != "services":
			kept = append(kept, p)
		case ProcessAlive(p.PID, p.StartTime):
			pids = append(pids, p.PID)
			own[p.PID] = true
		}
	}
	if err := signalProcesses(pids, own).wait(); err != nil {
		return fmt.Errorf("node %s: stop services: %w", node, err)
	}
	c.st.Processes = kept
	l, err := service.Launch(c.ns, c.st.Name, node, filepath.Join(labstate.LogDir(c.st.Name), node+".log"))
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	proc, err := l.Wait()
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	start, _ := startTime(proc.Pid)
	c.st.Processes = append(c.st.Processes, labstate.Process{PID: proc.Pid, Node: node, What: "services", StartTime: start})
	return nil
}

// renumber moves the NAT's uplink from its public address to public and
// notes it in the record; the rules still translate to the old one until
// replaceRules.
func (c *natChange) renumber(public netip.Addr) error {
	if msg := c.topo.AddressProblem(c.n, public); msg != "" {
		return badChangef("lab %s: node %s: public address %v: %s", c.topo.Name, c.n.Name, public, msg)
	}
	h, err := namedns.Netlink(c.ns.Fd())
	if err != nil {
		return fmt.Errorf("node %s: netlink: %w", c.n.Name, err)
	}
	defer h.Close()
	link := &vnl.Device{LinkAttrs: vnl.LinkAttrs{Name: Uplink(c.n), Index: uplinkIndex}}
	bits := c.topo.Uplink(c.n).Bits()
	old := c.n.Addresses[0]
	// The old address goes first: were the new one added first, it would
	// be a secondary address of the same subnet, and the kernel deletes
	// those with their primary.
	if err := h.AddrDel(link, addrOf(netip.PrefixFrom(old, bits))); err != nil {
		return fmt.Errorf("node %s: delete address %v: %w", c.n.Name, old, err)
	}
	if err := h.AddrAdd(link, addrOf(netip.PrefixFrom(public, bits))); err != nil {
		return fmt.Errorf("node %s: address %v: %w", c.n.Name, public, err)
	}
	// Deleting the uplink's only address took the routes through it
	// with it: a NAT behind another has its default route to put back.
	if gw, ok := c.topo.Gateway(c.n); ok {
		if err := h.RouteReplace(&vnl.Route{LinkIndex: uplinkIndex, Gw: gw.AsSlice()}); err != nil {
			return fmt.Errorf("node %s: route via %v: %w", c.n.Name, gw, err)
		}
	}
	c.n.Addresses[0] = public
	c.renumbered = true
	if c.st.Publics == nil {
		c.st.Publics = map[string]netip.Addr{}
	}
	c.st.Publics[c.n.Name] = public
	return nil
}

// replaceRules replaces the NAT's table with a fresh one built from the
// node as it now is, in one nftables transaction, so that no packet meets
// half of each; the new table's maps hold only the static forwards.
func (c *natChange) replaceRules() error {
	rs, err := Rules(c.topo, c.n, c.st.Flowtable)
	if err != nil {
		return err
	}
	conn, err := nftconn.Dial(c.ns.Fd())
	if err != nil {
		return fmt.Errorf("node %s: %w", c.n.Name, err)
	}
	defer conn.Close()
	// Adding a table first makes its delete valid whatever is there.
	conn.AddTable(rs.Table())
	conn.DelTable(rs.Table())
	if err := rs.AddTo(conn.Conn); err != nil {
		return fmt.Errorf("node %s: rules: %w", c.n.Name, err)
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("node %s: replace the nftables table: %w", c.n.Name, err)
	}
	return nil
}

// forgetMaps empties what the NAT learnt into its tables' maps, in one
// transaction, keeping its static forwards (natrules' Ruleset.Forget): the
// NAT's own table's unless table is false, and its IPv6 firewall's, which
// forgets whom it let in. The rules stay as they are.
func (c *natChange) forgetMaps(table bool) error {
	var sets []*natrules.Ruleset
	if table {
		rs, err := Rules(c.topo, c.n, c.st.Flowtable)
		if err != nil {
			return err
		}
		sets = append(sets, rs)
	}
	if fw := c.n.NAT.Firewall6; fw != "" {
		rs6, err := natrules.BuildFirewall6(natrules.Firewall6Config{WAN: NATUplink, LAN: NATLAN, Filtering: fw, Timeout: c.n.NAT.Behaviour.Timeout.UDP, TCPTimeout: c.n.NAT.Behaviour.Timeout.TCPEstablished})
		if err != nil {
			return fmt.Errorf("node %s: IPv6 firewall: %w", c.n.Name, err)
		}
		sets = append(sets, rs6)
	}
	if len(sets) == 0 {
		return nil
	}
	conn, err := nftconn.Dial(c.ns.Fd())
	if err != nil {
		return fmt.Errorf("node %s: %w", c.n.Name, err)
	}
	defer conn.Close()
	for _, rs := range sets {
		if err := rs.Forget(conn.Conn); err != nil {
			return fmt.Errorf("node %s: %w", c.n.Name, err)
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("node %s: empty the maps: %w", c.n.Name, err)
	}
	return nil
}

// flushConntrack empties conntrack's table in the NAT's namespace: flows
// mapped before would otherwise go on as they were.
func (c *natChange) flushConntrack() error {
	ct, err := conntrack.Dial(&netlink.Config{NetNS: c.ns.Fd()})
	if err != nil {
		return fmt.Errorf("node %s: conntrack: %w", c.n.Name, err)
	}
	defer ct.Close()
	if err := ct.Flush(); err != nil {
		return fmt.Errorf("node %s: flush conntrack: %w", c.n.Name, err)
	}
	return nil
}

// forgetAddress deletes the conntrack entries in the NAT's namespace that
// involve addr: the flows translated to it (their replies are addressed
// to it) and those of the NAT itself.
func (c *natChange) forgetAddress(addr netip.Addr) error {
	ct, err := conntrack.Dial(&netlink.Config{NetNS: c.ns.Fd()})
	if err != nil {
		return fmt.Errorf("node %s: conntrack: %w", c.n.Name, err)
	}
	defer ct.Close()
	flows, err := ct.Dump(nil)
	if err != nil {
		return fmt.Errorf("node %s: read conntrack: %w", c.n.Name, err)
	}
	for _, f := range flows {
		o, r := f.TupleOrig.IP, f.TupleReply.IP
		if o.SourceAddress != addr && o.DestinationAddress != addr && r.SourceAddress != addr && r.DestinationAddress != addr {
			continue
		}
		// A flow that ended meanwhile is no error.
		if err := ct.Delete(f); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("node %s: delete conntrack entry %v: %w", c.n.Name, o, err)
		}
	}
	return nil
}
