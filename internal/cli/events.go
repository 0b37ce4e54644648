package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/topology"
)

// The events of a running lab: a NAT's reboot and its renumbering, and a
// host's move to another NAT's LAN.

func newRebootCmd() *cobra.Command {
	var public string
	cmd := &cobra.Command{
		Use:   "reboot LAB NAT",
		Short: "Power-cycle a NAT of a running lab: every mapping gone",
		Long: `Power-cycle a NAT node of a running lab, as when a home router is unplugged
and plugged in again: every mapping it made, every port mapping it granted
by NAT-PMP and every conntrack entry in it are gone, and its services start
again (NAT-PMP with a new epoch). What is configured stays: its type, its
knobs and its static forwards. A path punched through it stops until the
hosts punch again.

With --public it comes back with a new public address, as after natlab
renumber. If another natlab process holds the lab, reboot waits for it up
to 10 seconds.`,
		Example: `  sudo natlab reboot symmetric nat-b
  sudo natlab reboot symmetric nat-b --public 203.0.113.77`,
		Args: labArgs(1, cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var addr netip.Addr
			if public != "" {
				var err error
				if addr, err = parsePublic(public); err != nil {
					return usageError("--public: %v", err)
				}
			}
			_, n, err := changeNAT(cmd, a[0], a[1], func() (*topology.Node, error) {
				return lab.Reboot(cmd.Context(), a[0], a[1], addr)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s rebooted: its mappings, NAT-PMP leases and conntrack entries are gone; its public address is %v\n", n.Name, n.Addresses[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&public, "public", "", "the public address it comes back with: a free address of its uplink")
	return cmd
}

func newRenumberCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "renumber LAB NAT ADDR",
		Short: "Give a NAT of a running lab a new public address",
		Long: `Give a NAT node of a running lab a new public address, as an ISP does: its
uplink gets ADDR, its rules translate to ADDR, and natlab status shows it.
The mappings of the old address break, as on a real router: natlab's maps
of them and their conntrack entries are gone, so traffic that goes on is
mapped afresh from the new address. NAT-PMP gives out the new address.

ADDR must be a free address of the NAT's uplink: of the internet, or of the
LAN of the NAT it is behind. If another natlab process holds the lab,
renumber waits for it up to 10 seconds.`,
		Example: `  sudo natlab renumber symmetric nat-b 203.0.113.77`,
		Args:    labArgs(1, cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, a []string) error {
			addr, err := parsePublic(a[2])
			if err != nil {
				return usageError("%v", err)
			}
			before, n, err := changeNAT(cmd, a[0], a[1], func() (*topology.Node, error) {
				return lab.Renumber(cmd.Context(), a[0], a[1], addr)
			})
			if err != nil {
				return err
			}
			old := before.Addresses[0]
			fmt.Fprintf(cmd.OutOrStdout(), "%s's public address is %v, was %v; its mappings of %v are gone\n", n.Name, n.Addresses[0], old, old)
			return nil
		},
	}
}

func newMoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "move LAB HOST NAT",
		Short: "Move a host of a running lab behind another NAT (roaming)",
		Long: `Move a host of a running lab to the LAN of another NAT, as a phone that
leaves the wifi for the cellular network: its uplink is unplugged from the
LAN it was on and plugged into NAT's, where it gets the lowest free address
and a default route through NAT. The NAT it left forgets its mappings and
NAT-PMP leases. Programs in the host go on; sockets bound to no address in
particular send from the new address, through the new NAT.

natlab status shows the host where it is now. If another natlab process
holds the lab, move waits for it up to 10 seconds.`,
		Example: `  sudo natlab move symmetric alice nat-b`,
		Args:    labArgs(1, cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, a []string) error {
			topo, before, err := labNode(cmd, a[0], a[1])
			if err != nil {
				return err
			}
			if msg := topo.MoveProblem(before, a[2]); msg != "" {
				return usageError("%s", msg)
			}
			n, err := lab.Move(cmd.Context(), a[0], a[1], a[2])
			if errors.Is(err, lab.ErrBadChange) {
				return usageError("%v", err)
			}
			if err != nil {
				return err
			}
			left := "the internet"
			if before.Behind != "" {
				left = before.Behind
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s left %s (%v) and is behind %s at %v; %s's mappings of it are gone\n", n.Name, left, before.Addresses[0], n.Behind, n.Addresses[0], left)
			return nil
		},
	}
}

// parsePublic reads a NAT's new public address.
func parsePublic(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address; want one such as 203.0.113.77", s)
	}
	return a, nil
}

// changeNAT checks that lab name is up and node is one of its NATs, then
// makes the change, and returns the node before and after it. A change
// the lab refuses (an address taken) is a usage error: nothing changed.
func changeNAT(cmd *cobra.Command, name, node string, change func() (*topology.Node, error)) (before, after *topology.Node, err error) {
	_, before, err = labNode(cmd, name, node)
	switch {
	case err != nil:
		return nil, nil, err
	case before.NAT == nil:
		return nil, nil, usageError("%s is a %s: only a NAT node can be %sed", node, before.Kind, cmd.Name())
	}
	after, err = change()
	if errors.Is(err, lab.ErrBadChange) {
		return nil, nil, usageError("%v", err)
	}
	return before, after, err
}

// labNode checks that the command runs as root, that lab name is up and
// that it has the node, and returns the lab's topology and the node.
func labNode(cmd *cobra.Command, name, node string) (*topology.Topology, *topology.Node, error) {
	if err := requireRoot(cmd); err != nil {
		return nil, nil, err
	}
	_, topo, err := runningLab(name)
	if err != nil {
		return nil, nil, err
	}
	n := topo.Node(node)
	if n == nil {
		return nil, nil, usageError("lab %s has no node %s", name, node)
	}
	return topo, n, nil
}
