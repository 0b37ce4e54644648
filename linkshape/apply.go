package linkshape

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/nftconn"
)

// defaultMTU is the MTU of every link natlab makes.
const defaultMTU = 1500

// minMTU6 is the least MTU IPv6 allows (RFC 8200): a route with less is
// refused, and a link with less has no IPv6.
const minMTU6 = 1280

// Apply makes the namespace of p hold what p says, under mech, whatever
// it held: each end's MTU and queueing disciplines, the routes with an
// MTU, and natlab's link tables, which it replaces in one transaction.
func Apply(p *Plan, mech Mechanism) error {
	ns, err := namedns.Open(p.NS)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := namedns.Netlink(ns.Fd())
	if err != nil {
		return fmt.Errorf("namespace %s: %w", p.NS, err)
	}
	defer h.Close()
	return apply(ns.Fd(), h, p, mech, false)
}

// ApplyNew is Apply in a namespace of a lab being built, through a netlink
// handle open in it (nsFd): it holds nothing of natlab's links yet, so
// nothing is looked up or removed first, and only what p asks for is
// done. A lab of a hundred shaped links comes up the faster for it.
func ApplyNew(nsFd int, h *netlink.Handle, p *Plan, mech Mechanism) error {
	return apply(nsFd, h, p, mech, true)
}

func apply(nsFd int, h *netlink.Handle, p *Plan, mech Mechanism, fresh bool) error {
	names := make([]string, 0, len(p.Devices))
	for n := range p.Devices {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		d := p.Devices[name]
		var link netlink.Link = &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: d.Index, Name: d.Name, MTU: defaultMTU}}
		if !fresh {
			var err error
			if link, err = h.LinkByIndex(d.Index); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		if err := setMTU(h, link, d, fresh); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		root, child := qdiscsFor(d.Index, egressOf(d, mech), d.MTU, mech)
		if fresh {
			for _, q := range []netlink.Qdisc{root, child} {
				if q != nil {
					if err := h.QdiscAdd(q); err != nil {
						return fmt.Errorf("%s: add %s qdisc: %w", name, q.Type(), err)
					}
				}
			}
		} else if err := setQdiscs(h, link, root, child); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if d.Bridge != "" {
			if err := ingressHold(h, d, mech, fresh); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if !fresh && mech == Netem {
		if err := removeStaleHolds(h, p); err != nil {
			return err
		}
	}
	if err := setRoutes(h, p.Routes, fresh); err != nil {
		return err
	}
	if fresh && !needsTables(p, mech) {
		return nil
	}
	conn, err := nftconn.Dial(nsFd)
	if err != nil {
		return err
	}
	defer conn.Close()
	tables(conn.Conn, p, mech, !fresh)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("load the %s tables: %w", TableName, err)
	}
	return nil
}

// setMTU gives an end the link's MTU. A bridge takes the least MTU of its
// ports unless told its own, and so would lower every node's on the
// segment: once a port's MTU is set, the bridge is told 1500. In a fresh
// namespace every link has the default.
func setMTU(h *netlink.Handle, link netlink.Link, d *Device, fresh bool) error {
	want := d.MTU
	if want == 0 {
		want = defaultMTU
	}
	if link.Attrs().MTU != want {
		if err := h.LinkSetMTU(link, want); err != nil {
			return fmt.Errorf("mtu %d: %w", want, err)
		}
	}
	if d.Bridge == "" || (fresh && d.MTU == 0) {
		return nil
	}
	var br netlink.Link = &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: d.BridgeIndex, Name: d.Bridge}}
	if !fresh {
		var err error
		if br, err = h.LinkByIndex(d.BridgeIndex); err != nil {
			return fmt.Errorf("bridge %s: %w", d.Bridge, err)
		}
		if br.Attrs().MTU == defaultMTU {
			return nil
		}
	}
	if err := h.LinkSetMTU(br, defaultMTU); err != nil {
		return fmt.Errorf("bridge %s mtu: %w", d.Bridge, err)
	}
	return nil
}

// RouteProtocol tags the routes natlab gives a link's MTU (the route's
// protocol, as "proto" in ip route), so that Apply finds and removes
// those no longer wanted, as after a host moved or a NAT was renumbered,
// and never another route.
const RouteProtocol = netlink.RouteProtocol(0x6e)

// setRoutes makes the namespace hold the routes of rs that carry an MTU,
// over the bridge or uplink to one address each: a router then answers a
// packet too big for the link with ICMP "fragmentation needed" (or
// "packet too big"), as a router in front of a narrower link does. The
// routes it held that rs does not want are removed first, unless the
// namespace is fresh and holds none.
func setRoutes(h *netlink.Handle, rs []Route, fresh bool) error {
	want := map[string]*netlink.Route{}
	var order []string
	for _, r := range rs {
		if r.MTU == 0 || (r.Addr.Is6() && r.MTU < minMTU6) {
			continue
		}
		bits := r.Addr.BitLen()
		route := &netlink.Route{
			LinkIndex: r.DevIndex,
			Dst:       &net.IPNet{IP: r.Addr.AsSlice(), Mask: net.CIDRMask(bits, bits)},
			Scope:     netlink.SCOPE_LINK,
			Protocol:  RouteProtocol,
			MTU:       r.MTU,
		}
		k := routeKey(route)
		if _, ok := want[k]; !ok {
			order = append(order, k)
		}
		want[k] = route
	}
	if !fresh {
		for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			have, err := h.RouteListFiltered(family, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
			if err != nil {
				return fmt.Errorf("list routes: %w", err)
			}
			for _, r := range have {
				if _, ok := want[routeKey(&r)]; ok {
					continue
				}
				if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
					return fmt.Errorf("remove route to %v: %w", r.Dst, err)
				}
			}
		}
	}
	for _, k := range order {
		r := want[k]
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("route to %v: %w", r.Dst, err)
		}
	}
	return nil
}

// routeKey is what tells natlab's MTU routes apart: the device and the
// address.
func routeKey(r *netlink.Route) string {
	return fmt.Sprintf("%d %v", r.LinkIndex, r.Dst)
}
