package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/topology"
)

func newRulesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rules LAB|FILE|NAME NODE",
		Short: "Print a NAT node's nftables ruleset, or a host's firewall",
		Long: `Print the nftables table natlab loads into a NAT node, in nft syntax, with a
comment on every rule saying what it is for; for a host with a firewall,
the table of its firewall. It is built from the scenario
(for a lab that is up, the one recorded when it came up), exactly as up
builds it (from a file, as up builds it on a kernel without the nftables
flowtable, where no NAT offloads), so it needs no root; to see the live table with its counters and
map entries, use nft list ruleset inside the node.

This is the text nft lists for the table. Rules that draw a port with numgen
show the numgen once per use although it is drawn once (and converted to
network byte order, which nft does not show), so those rules cannot be
loaded back with nft -f as they are printed.`,
		Example: `  natlab rules symmetric nat-a
  natlab rules scenarios/full-cone.yaml nat-a
  sudo ip netns exec natlab-symmetric-nat-a nft list ruleset`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			topo, err := labOrFile(cmd, a[0])
			if err != nil {
				return err
			}
			n := topo.Node(a[1])
			if n == nil {
				return usageError("%s has no node %s", a[0], a[1])
			}
			if n.Kind == topology.KindHost && n.Firewall != topology.FirewallNone {
				fmt.Fprintf(cmd.OutOrStdout(), "# %s, firewall %s\n%s", lab.NamespaceName(topo.Name, n.Name), n.Firewall, lab.FirewallRules(n))
				return nil
			}
			if n.NAT == nil {
				return usageError("%s is a %s, not a nat: only NAT nodes and hosts with a firewall have natlab rules", a[1], n.Kind)
			}
			// A lab that is up offloads where its kernel let it.
			flowtable := false
			if topology.CheckLabName(a[0]) == nil {
				if st, err := labstate.Load(a[0]); err == nil {
					flowtable = st.Flowtable
				}
			}
			rs, err := lab.Rules(topo, n, flowtable)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# %s, %s\n%s", lab.NamespaceName(topo.Name, n.Name), n.NAT.Summary(), rs)
			return nil
		},
	}
}
