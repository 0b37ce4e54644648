package linkshape

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/linkcond"
)

// fifoRate is the rate netem is given when it has jitter to spread and
// no reordering to do: netem keeps packets in the order of their due
// times, which jitter alone would shuffle, but with a rate each packet is
// due no earlier than the one before it. At 100 Gbit/s a 1500-byte packet
// takes 120 ns: nothing a lab can see.
const fifoRate = 100_000_000_000 / 8

// The qdisc handles natlab gives: the root, and the tbf under netem.
var (
	rootHandle  = netlink.MakeHandle(1, 0)
	childHandle = netlink.MakeHandle(2, 0)
)

// qdiscsFor returns the qdiscs link's egress needs for d under mech: the
// root and, if any, the one under it (netem's tbf). None for a direction
// that needs no queueing discipline.
func qdiscsFor(index int, d linkcond.Direction, mtu int, mech Mechanism) (root, child netlink.Qdisc) {
	emulate := mech == Netem && emulates(d)
	var tbf netlink.Qdisc
	if d.Rate > 0 {
		tbf = tbfFor(index, d.Rate, mtu)
	}
	if !emulate {
		if tbf != nil {
			tbf.Attrs().Parent, tbf.Attrs().Handle = netlink.HANDLE_ROOT, rootHandle
		}
		return tbf, nil
	}
	attrs := netlink.NetemQdiscAttrs{
		Latency:     uint32(d.Delay / time.Microsecond),
		Jitter:      uint32(d.Jitter / time.Microsecond),
		Loss:        float32(d.Loss),
		Duplicate:   float32(d.Duplicate),
		ReorderProb: float32(d.Reorder),
		Limit:       Limit,
	}
	if d.Jitter > 0 && d.Reorder == 0 {
		attrs.Rate64 = fifoRate
	}
	root = netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: index, Parent: netlink.HANDLE_ROOT, Handle: rootHandle}, attrs)
	if tbf != nil {
		tbf.Attrs().Parent, tbf.Attrs().Handle = netlink.MakeHandle(1, 1), childHandle
	}
	return root, tbf
}

// emulates reports whether d asks netem for anything: all but the rate.
func emulates(d linkcond.Direction) bool {
	return d.Delay > 0 || d.Jitter > 0 || d.Loss > 0 || d.Duplicate > 0 || d.Reorder > 0
}

// egressOf is the part of d's egress direction that end d carries out as
// its packets leave. Under netem the node's own end keeps only the rate:
// its delay, loss and the rest are done where its packets arrive, at the
// bridge's end (ingressHold). A packet held in a qdisc of the sender's
// own device still counts against its socket (TCP Small Queues lets a
// socket have about two packets below it), so a delay there would slow
// TCP far below the link's rate; once the packet has crossed the pair it
// belongs to no socket, as on a real wire.
func egressOf(d *Device, mech Mechanism) linkcond.Direction {
	if mech != Netem || d.Bridge != "" {
		return d.Egress
	}
	return linkcond.Direction{Rate: d.Egress.Rate}
}

// tbfFor is a token bucket of rate r for frames of up to mtu bytes: a
// bucket of 4 ms at the rate, and at least two frames, so that the rate is
// kept closely and a frame always fits; a queue of 100 ms at the rate
// (at least 64 KiB), enough for TCP to fill the link without the queue
// growing without bound.
func tbfFor(index int, r linkcond.Rate, mtu int) *netlink.Tbf {
	if mtu == 0 {
		mtu = 1500
	}
	bytesPerSec := uint64(r) / 8
	frame := uint64(mtu + 18)
	burst := max(bytesPerSec/250, 2*frame)
	limit := min(max(bytesPerSec/10+burst, 64<<10), 1<<30)
	return &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: index},
		Rate:       bytesPerSec,
		Buffer:     netlink.Xmittime(bytesPerSec, uint32(burst)),
		Limit:      uint32(limit),
	}
}

// setQdiscs makes link's egress queueing disciplines root and child
// (either nil for none). When the kinds it has are the ones wanted, their
// parameters are changed in place, so the packets they hold stay;
// otherwise natlab's are removed and the wanted ones added.
func setQdiscs(h *netlink.Handle, link netlink.Link, root, child netlink.Qdisc) error {
	have, err := h.QdiscList(link)
	if err != nil {
		return fmt.Errorf("list qdiscs: %w", err)
	}
	var haveRoot, haveChild netlink.Qdisc
	for _, q := range have {
		switch {
		case q.Attrs().Parent == netlink.HANDLE_ROOT && q.Attrs().Handle == rootHandle:
			haveRoot = q
		case q.Attrs().Handle == childHandle:
			haveChild = q
		}
	}
	if same(haveRoot, root) && same(haveChild, child) {
		for _, q := range []netlink.Qdisc{root, child} {
			if q != nil {
				if err := h.QdiscChange(q); err != nil {
					return fmt.Errorf("change %s qdisc: %w", q.Type(), err)
				}
			}
		}
		return nil
	}
	if haveRoot != nil {
		if err := h.QdiscDel(haveRoot); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("remove %s qdisc: %w", haveRoot.Type(), err)
		}
	}
	for _, q := range []netlink.Qdisc{root, child} {
		if q != nil {
			if err := h.QdiscAdd(q); err != nil {
				return fmt.Errorf("add %s qdisc: %w", q.Type(), err)
			}
		}
	}
	return nil
}

// same reports whether have is of the kind want is (both nil counts).
func same(have, want netlink.Qdisc) bool {
	if have == nil || want == nil {
		return have == nil && want == nil
	}
	return have.Type() == want.Type()
}
