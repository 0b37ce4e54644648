package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/topology"
)

// linkFlag is one flag of natlab link that sets a condition: for both
// directions (dir ""), or for one.
type linkFlag struct {
	name string
	dir  string
	cond *topology.LinkCondition
}

// linkFlags are natlab link's condition flags, from topology's registry
// of conditions: --delay for both directions, --up-delay and --down-delay
// for one; the MTU is the whole link's.
func linkFlags() []linkFlag {
	var flags []linkFlag
	for i := range topology.LinkConditions {
		c := &topology.LinkConditions[i]
		flags = append(flags, linkFlag{c.Key, "", c})
	}
	for _, dir := range []string{topology.LinkUp, topology.LinkDown} {
		for i := range topology.LinkConditions {
			if c := &topology.LinkConditions[i]; !c.Whole {
				flags = append(flags, linkFlag{dir + "-" + c.Key, dir, c})
			}
		}
	}
	return flags
}

// linkFlagNames are the names of the condition flags.
func linkFlagNames() []string {
	var names []string
	for _, f := range linkFlags() {
		names = append(names, f.name)
	}
	return names
}

func newLinkCmd() *cobra.Command {
	var clear, down, up bool
	cmd := &cobra.Command{
		Use:   "link LAB NODE",
		Short: "Change a node's link on a running lab: delay, loss, rate, MTU; down or up",
		Long: `Change the conditions of a node's uplink (its link toward the NAT it is
behind, or the internet) on a running lab. The flags are the keys of a
scenario's link: and take the same values: --delay 50ms, --loss 2%,
--rate 10mbit, --mtu 1400. Each applies in both directions; --up-KEY and
--down-KEY set one direction (up is from the node toward its NAT or the
internet). What a flag does not name stays as it was; 0 or 0% takes a
condition away, --clear takes them all away first.

--down takes the link down: it drops every packet, either way. --up brings
it up again with the conditions it had.

A bad value is refused, and nothing is changed. natlab status shows each
link's conditions, and how the lab shapes them: with netem where the kernel
has it, else with natlab's delay line.`,
		Example: `  sudo natlab link home alice --delay 50ms --loss 2%
  sudo natlab link home alice --up-rate 1mbit --down-rate 20mbit
  sudo natlab link home alice --down
  sudo natlab link home alice --up
  sudo natlab link home alice --clear`,
		Args: labArgs(1, cobra.ExactArgs(2)),
	}
	values := map[string]*string{}
	for _, f := range linkFlags() {
		what := "both directions"
		if f.dir != "" {
			what = "the " + f.dir + " direction only"
		} else if f.cond.Whole {
			what = "the whole link"
		}
		values[f.name] = cmd.Flags().String(f.name, "", fmt.Sprintf("%s, %s: %s", f.cond.Key, what, f.cond.Want))
	}
	cmd.Flags().BoolVar(&clear, "clear", false, "take every condition away first: a perfect wire, but for what the other flags give")
	cmd.Flags().BoolVar(&down, "down", false, "take the link down: it drops every packet, either way")
	cmd.Flags().BoolVar(&up, "up", false, "bring the link up again, with the conditions it had")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if down && up {
			return usageError("%s: --down and --up contradict each other; give one", cmd.CommandPath())
		}
		if err := requireRoot(cmd); err != nil {
			return err
		}
		_, topo, err := runningLab(a[0])
		if err != nil {
			return err
		}
		n := topo.Node(a[1])
		if n == nil {
			var names []string
			for _, n := range topo.Nodes {
				names = append(names, n.Name)
			}
			return usageError("lab %s has no node %s; it has %s", a[0], a[1], strings.Join(names, ", "))
		}
		var c linkcond.Change
		for _, f := range linkFlags() {
			if !cmd.Flags().Changed(f.name) {
				continue
			}
			if err := f.cond.Set(&c, f.dir, *values[f.name]); err != nil {
				return usageError("--%s: %v", f.name, err)
			}
		}
		if clear {
			c = c.Cleared()
		}
		if c.IsZero() && !down && !up {
			return usageError("%s: nothing to change; give conditions such as --delay 50ms, or --clear, --down or --up (see %s --help)", cmd.CommandPath(), cmd.CommandPath())
		}
		if err := c.Apply(n.Link).Validate(); err != nil {
			return usageError("%s's link: %v", n.Name, err)
		}
		out := cmd.OutOrStdout()
		if !c.IsZero() {
			l, err := lab.SetLink(cmd.Context(), a[0], n.Name, c)
			var bad *linkcond.Error
			if errors.As(err, &bad) {
				// The link changed since it was read: refused all the same.
				return usageError("%s's link: %v", n.Name, bad)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s's link: %s\n", n.Name, l)
		}
		if down || up {
			if err := lab.SetLinkState(cmd.Context(), a[0], n.Name, up); err != nil {
				return err
			}
			if down {
				fmt.Fprintf(out, "%s's link is down: it drops everything (natlab link %s %s --up brings it up)\n", n.Name, a[0], n.Name)
			} else {
				fmt.Fprintf(out, "%s's link is up\n", n.Name)
			}
		}
		return nil
	}
	return cmd
}
