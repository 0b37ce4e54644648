package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkshape"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/topology"
)

// Move roams host node of the running lab name to the LAN of NAT nat, as
// a phone that leaves the wifi for the cellular network: its uplink is
// unplugged from the LAN it was on and plugged into nat's, where it gets
// the lowest free address (and, in a dual-stack lab, IPv6 address) and a
// default route through nat. The mappings the NAT it left held for it are
// gone: its conntrack entries and natlab's map entries of the host's old
// address, NAT-PMP leases included. Sockets of the host's that are bound
// to no address go on working, from the new address. The move is
// recorded, so status shows the host where it is; its link keeps its
// conditions. It takes the lab's lock
// as SwitchNAT does, and returns the host as it now is.
func Move(ctx context.Context, name, node, nat string) (*topology.Node, error) {
	var moved *topology.Node
	err := changeLab(ctx, name, func(st *labstate.State, topo *topology.Topology) error {
		n := topo.Node(node)
		if n == nil {
			return badChangef("lab %s: no node named %q", name, node)
		}
		if msg := topo.MoveProblem(n, nat); msg != "" {
			return badChangef("lab %s: move %s behind %s: %s", name, node, nat, msg)
		}
		a4, a6, _ := topo.MoveAddresses(n, nat)
		after := topo.Moved(n, nat, a4, a6)
		moved = after.Node(node)
		if err := plugInto(ctx, name, after, moved, slices.Index(topo.Nodes, n)); err != nil {
			return err
		}
		// Unplugged, the host sends nothing more from its old address
		// that could make a new mapping.
		if n.Behind != "" {
			if err := forgetHost(name, topo.Node(n.Behind), n.Addresses[0]); err != nil {
				return err
			}
		}
		if st.Moves == nil {
			st.Moves = map[string]labstate.Move{}
		}
		st.Moves[node] = labstate.Move{Behind: nat, Address: a4, Address6: a6}
		if len(st.Links) > 0 {
			// The new wire is shaped as the links say, the host's own
			// with them; where the old one was, the NAT's route to the
			// host's old address and its neighbours' holds of it go.
			if err := reshape(ctx, st, after, node, linkshape.Affected(Wires(name, topo), node)...); err != nil {
				return fmt.Errorf("lab %s: node %s: link: %w", name, node, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return moved, nil
}

// plugInto unplugs host n (as topo has it after the move) from the bridge
// it is on and plugs it into the bridge of the NAT it is behind now,
// configured as Up configures a node, and waits for the new link to be
// up. index is n's place among the lab's nodes, which numbers its port.
func plugInto(ctx context.Context, lab string, topo *topology.Topology, n *topology.Node, index int) error {
	hostNS, err := namedns.Open(NamespaceName(lab, n.Name))
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	defer hostNS.Close()
	natNS, err := namedns.Open(NamespaceName(lab, n.Behind))
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Behind, err)
	}
	defer natNS.Close()
	h, err := namedns.Netlink(hostNS.Fd())
	if err != nil {
		return fmt.Errorf("node %s: netlink: %w", n.Name, err)
	}
	defer h.Close()
	sock, err := nl.GetNetlinkSocketAt(netns.NsHandle(natNS.Fd()), netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("node %s: netlink: %w", n.Behind, err)
	}
	raw := &nl.SocketHandle{Socket: sock}
	defer raw.Close()
	// Deleting one end of a veth pair deletes the other, the old LAN's
	// bridge port.
	if err := h.LinkDel(&vnl.Device{LinkAttrs: vnl.LinkAttrs{Name: Uplink(n), Index: uplinkIndex}}); err != nil {
		return fmt.Errorf("node %s: unplug %s: %w", n.Name, Uplink(n), err)
	}
	// The port's name is the one Up would have given it on this LAN,
	// from the nodes on it in file order: what anything that finds a
	// node's port by the topology (as the record gives it) computes.
	port := portNames(topo.Behind(n.Behind))[n.Name]
	err = addVeth(raw, vethEnd{name: port, index: portIndexBase + index, master: bridgeIndex},
		vethEnd{name: Uplink(n), index: uplinkIndex}, hostNS.Fd())
	if err != nil {
		return fmt.Errorf("node %s: add veth %s/%s: %w", n.Name, port, Uplink(n), err)
	}
	b := &builder{topo: topo, ns: map[string]*namedns.NS{n.Name: hostNS, n.Behind: natNS}, nl: map[string]*vnl.Handle{n.Name: h}}
	if err := b.configureNode(n); err != nil {
		return err
	}
	if err := b.waitUp(ctx, n.Name, []string{Uplink(n)}); err != nil {
		return err
	}
	return b.waitUp(ctx, n.Behind, []string{port})
}

// forgetHost removes from NAT nat's tables what it held for the private
// address addr: conntrack's entries of flows from it, and the entries of
// natlab's maps that it owns (its mappings, whom they sent to, its
// NAT-PMP leases). The static forwards of the NAT stay, as configuration.
func forgetHost(lab string, nat *topology.Node, addr netip.Addr) error {
	ns, err := namedns.Open(NamespaceName(lab, nat.Name))
	if err != nil {
		return fmt.Errorf("node %s: %w", nat.Name, err)
	}
	defer ns.Close()
	ct, err := conntrack.Dial(&netlink.Config{NetNS: ns.Fd()})
	if err != nil {
		return fmt.Errorf("node %s: conntrack: %w", nat.Name, err)
	}
	defer ct.Close()
	flows, err := ct.Dump(nil)
	if err != nil {
		return fmt.Errorf("node %s: read conntrack: %w", nat.Name, err)
	}
	for _, f := range flows {
		if f.TupleOrig.IP.SourceAddress != addr && f.TupleReply.IP.SourceAddress != addr {
			continue
		}
		if err := ct.Delete(f); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("node %s: delete conntrack entry %v: %w", nat.Name, f.TupleOrig.IP, err)
		}
	}

	conn, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		return fmt.Errorf("node %s: nftables: %w", nat.Name, err)
	}
	static := map[natrules.Owner]bool{}
	for _, f := range nat.NAT.Forwards {
		static[natrules.Owner{Public: f.Port, Private: f.To}] = true
	}
	// ports are the public ports freed, by protocol: the permits of those
	// ports go too.
	ports := map[string]map[uint16]bool{"udp": {}, "tcp": {}}
	protoOf := map[string]string{}
	for _, proto := range []string{"udp", "tcp"} {
		portsSet, mappingsSet, permitsSet, _, _ := natrules.TransportSets(proto)
		for _, set := range []string{portsSet, mappingsSet, permitsSet} {
			protoOf[set] = proto
		}
	}
	owned := func(e nftables.SetElement, set string) bool {
		switch set {
		case natrules.PortsSet, natrules.TCPPortsSet, natrules.PortMapTCP, natrules.PortMapUDP:
			o, err := natrules.ParseOwner(e)
			if err != nil || o.Private.Addr() != addr || static[o] {
				return false
			}
			if proto, ok := protoOf[set]; ok {
				ports[proto][o.Public] = true
			}
			return true
		case natrules.MappingsSet, natrules.TCPMappingsSet:
			m, err := natrules.ParseMapping(e)
			return err == nil && m.Private.Addr() == addr && !static[natrules.Owner{Public: m.Public, Private: m.Private}]
		case natrules.PermitsSet, natrules.TCPPermitsSet:
			p, err := natrules.ParsePermit(e)
			return err == nil && ports[protoOf[set]][p.Public]
		}
		return false
	}
	// The ports maps first: the permits of the ports they free go next.
	for _, name := range []string{natrules.PortsSet, natrules.TCPPortsSet, natrules.MappingsSet, natrules.TCPMappingsSet,
		natrules.PortMapTCP, natrules.PortMapUDP, natrules.PermitsSet, natrules.TCPPermitsSet} {
		set, err := conn.GetSetByName(natrules.Table(), name)
		if errors.Is(err, unix.ENOENT) {
			continue // a map this NAT's behaviour has no use for
		}
		if err != nil {
			return fmt.Errorf("node %s: map %s: %w", nat.Name, name, err)
		}
		elems, err := conn.GetSetElements(set)
		if err != nil {
			return fmt.Errorf("node %s: map %s: %w", nat.Name, name, err)
		}
		var gone []nftables.SetElement
		for _, e := range elems {
			if owned(e, name) {
				gone = append(gone, nftables.SetElement{Key: e.Key})
			}
		}
		if len(gone) == 0 {
			continue
		}
		if err := conn.SetDeleteElements(set, gone); err != nil {
			return fmt.Errorf("node %s: map %s: %w", nat.Name, name, err)
		}
		if err := conn.Flush(); err != nil {
			return fmt.Errorf("node %s: map %s: %w", nat.Name, name, err)
		}
	}
	return nil
}
