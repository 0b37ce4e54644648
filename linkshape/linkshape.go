// Package linkshape makes a lab's links behave as their conditions
// (package linkcond) say: delay, jitter, loss, duplication, reordering,
// rate and MTU on each node's uplink, in each direction, changed on a
// running lab as often as asked. It works in the lab's own namespaces
// only, never in the root namespace.
//
// A node's uplink is a veth pair: one end in the node's namespace, the
// other a port of the bridge the node plugs into (its NAT's LAN, or the
// internet). Up is what the node sends, down what it receives. Two
// mechanisms carry the conditions out, and a lab uses one (Detect):
//
//   - netem, where the kernel has it (stock Debian and Ubuntu kernels):
//     a netem qdisc for delay, jitter, loss, duplication and reordering,
//     and a tbf under it for the rate, on the bridge's end's egress for
//     the down direction; for the up direction the node's own end has
//     only the tbf, and the netem is on an ifb device the bridge's end
//     redirects what it receives to (ingressHold): a packet held below
//     its sender's device would still count against the sender's socket.
//   - natlab's delay line, where it has not: delay, jitter and
//     reordering are done by one process per lab that holds the packets
//     nftables hands to a queue (the xt NFQUEUE target) and lets each go
//     at its due time: in the namespace that sends them if an endpoint
//     (a host, a server) receives them, so that they arrive, and are
//     stamped, when due (plain ping, which reads that stamp, sees the
//     whole delay); in the NAT that receives them, as they arrive, if a
//     NAT does, where their sender's socket has let them go (see Queue).
//     Loss and duplication are done by nftables rules on the sending
//     end's egress hook (numgen random; dup to the device); the rate by
//     a tbf qdisc there. ARP frames are not held: no hook that sees them
//     can queue them on such a kernel.
//
// Both give what Mininet's TCLink gives: each direction on its own, so a
// delay of 30ms adds 60 ms to a round trip; jitter spreads each packet's
// delay evenly over delay±jitter without reordering packets (netem would
// reorder them: it is given a rate too fast to matter, which makes it
// keep their order); reorder sends that share of packets at once. The
// MTU is set on both ends, and a router that forwards onto the link
// (the node's NAT) gets a route to the node with that MTU, so that it
// answers a packet too big for the link with ICMP "fragmentation
// needed". The internet is a switch, which cannot answer so: there every
// node gets such a route to each neighbour whose link is narrower than
// its own, so a NAT answers for the link as the router in front of it
// would. These routes carry RouteProtocol, and a namespace holds none
// but the ones its plan wants (after a move or a renumber, none to an
// old address). A link that is down drops every frame that reaches
// either end.
package linkshape

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/linkcond"
)

// Mechanism is how a lab's links are shaped.
type Mechanism string

const (
	// Netem is the kernel's netem qdisc.
	Netem Mechanism = "netem"
	// DelayLine is natlab's own: an NFQUEUE consumer per lab, with
	// nftables rules for loss and duplication.
	DelayLine Mechanism = "delay-line"
)

// Limit is the most packets held at once in one direction of a link
// under netem (its limit), and in one namespace's queue under the delay
// line (the kernel queue's maxlen). Past it new packets are dropped, as
// netem drops them: a flood costs bounded memory, not a growing queue.
const Limit = 10000

// EnvMechanism, when set to "netem" or "delay-line", makes Detect choose
// that mechanism, for testing the delay line on a kernel that has netem.
const EnvMechanism = "NATLAB_LINK_MECHANISM"

// Detect finds which mechanism the kernel offers, trying a netem qdisc
// on the loopback of the lab namespace open as nsFd and removing it
// again: the kernel says ENOENT (or EOPNOTSUPP) when it has no netem.
func Detect(nsFd int) (Mechanism, error) {
	switch m := Mechanism(os.Getenv(EnvMechanism)); m {
	case Netem, DelayLine:
		return m, nil
	case "":
	default:
		return "", fmt.Errorf("%s=%s: want %s or %s", EnvMechanism, m, Netem, DelayLine)
	}
	h, err := namedns.Netlink(nsFd)
	if err != nil {
		return "", fmt.Errorf("detect the link mechanism: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return "", fmt.Errorf("detect the link mechanism: %w", err)
	}
	q := netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: lo.Attrs().Index, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)},
		netlink.NetemQdiscAttrs{Latency: 1000})
	err = h.QdiscAdd(q)
	switch {
	case err == nil:
		if err := h.QdiscDel(q); err != nil {
			return "", fmt.Errorf("detect the link mechanism: remove the trial netem qdisc: %w", err)
		}
		return Netem, nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EOPNOTSUPP):
		return DelayLine, nil
	}
	return "", fmt.Errorf("detect the link mechanism: add a netem qdisc: %w", err)
}

// Wire is one node's uplink as the lab built it.
type Wire struct {
	// Node is the node; NS its namespace, Uplink its end of the pair
	// there, whose index is UplinkIndex.
	Node        string
	NS, Uplink  string
	UplinkIndex int
	// ParentNS is the namespace of the bridge the node plugs into, Port
	// the pair's end there and Bridge the bridge, with their indexes.
	ParentNS, Port, Bridge string
	PortIndex, BridgeIndex int
	// Segment is the bridge: the NAT that owns it, "" for the internet.
	// Nodes on one segment receive each other's frames.
	Segment string
	// Routed says the parent routes onto the segment (a NAT's LAN): it
	// gets a route to each of Addrs with the link's MTU.
	Routed bool
	Addrs  []netip.Addr
	// Prefixes6 are the IPv6 prefixes routed through the node, a NAT: its
	// LAN's and those of the NATs behind it (IPv6 has no NAT). What is
	// sent to them goes to the node first.
	Prefixes6 []netip.Prefix
}

// State is a link's conditions and whether it is down.
type State struct {
	Link linkcond.Link
	Down bool
}

// Shaped reports whether s asks anything of the kernel.
func (s State) Shaped() bool { return s.Down || !s.Link.IsZero() }
