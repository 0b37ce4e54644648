package linkshape

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// holdPrefix starts the name of the ifb device that holds a node's up
// direction under netem, in its parent's namespace: "up." and the index of
// the bridge's end of the node's uplink. No node's name has a dot, so no
// end of an uplink is ever called so.
const holdPrefix = "up."

// holdName is the name of the ifb device that holds the up direction of
// the node whose uplink ends in port index.
func holdName(index int) string { return holdPrefix + strconv.Itoa(index) }

// ingressHold makes the bridge's end d of a node's uplink carry out, under
// netem, what the node's up direction asks besides its rate: the frames
// that arrive through d are redirected (tc's ingress qdisc, a u32 filter
// that matches every frame, the mirred action) to an ifb device whose
// netem qdisc delays, drops, duplicates or reorders them and hands them
// back to d's receive path, to the bridge. The node's socket let them go
// when they crossed the pair, as onto a real wire (see egressOf). Nothing
// to do there, a link that is down (its ingress chain drops every frame,
// which the ifb would pass by) or the delay line: no ifb and no ingress
// qdisc.
func ingressHold(h *netlink.Handle, d *Device, mech Mechanism, fresh bool) error {
	want := mech == Netem && !d.Down && emulates(d.Ingress)
	name := holdName(d.Index)
	var ifb netlink.Link
	if !fresh {
		l, err := h.LinkByName(name)
		var notFound netlink.LinkNotFoundError
		switch {
		case err == nil:
			ifb = l
		case !errors.As(err, &notFound):
			return fmt.Errorf("look up %s: %w", name, err)
		}
	}
	port := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: d.Index, Name: d.Name}}
	if !want {
		if ifb == nil {
			return nil
		}
		if err := delIngress(h, port); err != nil {
			return err
		}
		if err := h.LinkDel(ifb); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		return nil
	}
	mtu := d.MTU
	if mtu == 0 {
		mtu = defaultMTU
	}
	if ifb == nil {
		l := &netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu, TxQLen: Limit}}
		if err := h.LinkAdd(l); err != nil {
			return fmt.Errorf("add %s: %w", name, err)
		}
		added, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("look up %s: %w", name, err)
		}
		if err := h.LinkSetUp(added); err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
		ifb = added
	} else if ifb.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(ifb, mtu); err != nil {
			return fmt.Errorf("%s mtu %d: %w", name, mtu, err)
		}
	}
	// The rate stays at the node's own end: only the rest is held here.
	held := d.Ingress
	held.Rate = 0
	root, _ := qdiscsFor(ifb.Attrs().Index, held, mtu, mech)
	if err := setQdiscs(h, ifb, root, nil); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := delIngress(h, port); err != nil {
		return err
	}
	ingress := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: d.Index, Parent: netlink.HANDLE_INGRESS, Handle: netlink.MakeHandle(0xffff, 0)}}
	if err := h.QdiscAdd(ingress); err != nil {
		return fmt.Errorf("add the ingress qdisc: %w", err)
	}
	// A u32 filter with no selector matches every frame.
	redirect := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: d.Index, Parent: netlink.MakeHandle(0xffff, 0), Priority: 1, Protocol: unix.ETH_P_ALL},
		Actions:     []netlink.Action{netlink.NewMirredAction(ifb.Attrs().Index)},
	}
	if err := h.FilterAdd(redirect); err != nil {
		return fmt.Errorf("redirect to %s: %w", name, err)
	}
	return nil
}

// delIngress removes port's ingress qdisc, with its filters, if it has one.
func delIngress(h *netlink.Handle, port netlink.Link) error {
	q := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: port.Attrs().Index, Parent: netlink.HANDLE_INGRESS, Handle: netlink.MakeHandle(0xffff, 0)}}
	if err := h.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("remove the ingress qdisc: %w", err)
	}
	return nil
}

// removeStaleHolds removes the ifb devices of the namespace that hold the
// up direction of a node whose uplink no longer ends here (it moved, or
// its pair was made anew): p names every end there is.
func removeStaleHolds(h *netlink.Handle, p *Plan) error {
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	ports := map[int]bool{}
	for _, d := range p.Devices {
		if d.Bridge != "" {
			ports[d.Index] = true
		}
	}
	for _, l := range links {
		name := l.Attrs().Name
		index, err := strconv.Atoi(strings.TrimPrefix(name, holdPrefix))
		if l.Type() != "ifb" || !strings.HasPrefix(name, holdPrefix) || err != nil || ports[index] {
			continue
		}
		if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	return nil
}
