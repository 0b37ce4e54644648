package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/lab"
)

func newUpCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "up FILE|NAME",
		Short: "Build a lab and leave it running",
		Long: `Build the lab a scenario describes: one network namespace per node, named
natlab-LAB-NODE, an internet between them, and real nftables NAT rules in
every NAT node. The lab keeps running until natlab down.

FILE is a scenario file; NAME is a built-in scenario (natlab list).
If anything fails, or you press Ctrl-C, everything built so far is removed.`,
		Example: `  sudo natlab up symmetric
  sudo natlab up scenarios/full-cone.yaml
  sudo natlab up my-lab.yaml --name second-copy
  sudo ip netns exec natlab-symmetric-alice ip addr`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			sc, err := loadScenario(a[0])
			if err != nil {
				return err
			}
			sc.tell(cmd.ErrOrStderr())
			topo := sc.topo
			if cmd.Flags().Changed("name") {
				if err := checkLabName(name); err != nil {
					return err
				}
				topo = renamed(topo, name)
			}
			if err := requireRoot(cmd); err != nil {
				return err
			}
			start := time.Now()
			st, err := lab.Up(cmd.Context(), topo, lab.Options{Source: sc.source, Scenario: sc.data})
			if err != nil {
				if cmd.Context().Err() != nil {
					return fmt.Errorf("interrupted; everything built was removed: %w", err)
				}
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "lab %s is up: %d nodes in %v\n\n", st.Name, len(topo.Nodes), time.Since(start).Round(time.Millisecond))
			printNodes(out, topo)
			printServices(out, st, topo)
			fmt.Fprintf(out, "\nLook inside:\n")
			if host := firstOfKind(topo, "host"); host != "" {
				fmt.Fprintf(out, "  sudo natlab exec %s %s -- ip addr\n", st.Name, host)
			}
			if nat := firstOfKind(topo, "nat"); nat != "" {
				fmt.Fprintf(out, "  sudo natlab rules %s %s\n", st.Name, nat)
				fmt.Fprintf(out, "  sudo ip netns exec %s nft list ruleset\n", lab.NamespaceName(st.Name, nat))
			}
			fmt.Fprintf(out, "Remove it:\n  sudo natlab down %s\n", st.Name)
			if errors.As(context.Cause(cmd.Context()), new(outputFailed)) {
				// The lab is what up was asked for, and it outlives up
				// anyway; but whoever reads the exit code must learn that
				// it is there.
				return fmt.Errorf("lab %s is up all the same: natlab status %s shows it, natlab down %s removes it", st.Name, st.Name, st.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "bring the lab up under this name instead of the file's")
	return cmd
}

func newDownCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "down LAB | --all",
		Short: "Remove a lab completely",
		Long: `Remove a lab: its namespaces, and with them every link, address, route and
rule in them, and natlab's record of it. It needs no scenario file, works
on labs whose bring-up crashed half way, and does nothing (successfully)
for a lab that is not up, unless a lab whose name is one typo away is up:
then it asks whether you meant that one and exits 2. natlab only removes
namespaces it marked as its own when it built them.

With --all, every lab is removed, and so is any namespace natlab marked
whose lab record is gone.

If another natlab process holds the lab (an up or a NAT switch in
progress, or one killed a moment ago), down waits for it up to 10 seconds.`,
		Example: `  sudo natlab down symmetric
  sudo natlab down --all`,
		Args: labArgs(1, func(cmd *cobra.Command, a []string) error {
			if all && len(a) > 0 {
				return fmt.Errorf("give a lab name or --all, not both")
			}
			if !all && len(a) != 1 {
				return fmt.Errorf("give one lab name, or --all")
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := requireRoot(cmd); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			waiting := func(name string, holder int) {
				who := "another natlab process"
				if holder != 0 {
					who = fmt.Sprintf("process %d", holder)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "natlab: lab %s is held by %s; waiting up to %v for it to let go\n", name, who, lab.LockPatience)
			}
			if all {
				removed, err := lab.DownAll(cmd.Context(), waiting)
				for _, name := range removed {
					fmt.Fprintf(out, "removed lab %s\n", name)
				}
				if len(removed) == 0 && err == nil {
					fmt.Fprintln(out, "no labs are up")
				}
				return err
			}
			removed, err := lab.Down(cmd.Context(), a[0], func(holder int) { waiting(a[0], holder) })
			if err != nil {
				return err
			}
			if removed {
				fmt.Fprintf(out, "removed lab %s\n", a[0])
				return nil
			}
			if near := suggestLab(a[0]); near != "" {
				// Most likely a typo: say so, and fail, so that a script
				// does not go on as if the lab it meant were gone.
				return usageError("lab %s is not up, so nothing was removed; did you mean %s?", a[0], near)
			}
			fmt.Fprintf(out, "lab %s is not up; nothing to remove\n", a[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every lab")
	return cmd
}
