package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/scenarios"
	"github.com/natlab/natlab/topology"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE|NAME...",
		Short: "Check scenario files without touching the kernel",
		Long: `Check scenario files: YAML syntax, keys, names, addresses and subnets, the
NAT knobs. Every problem of a file is reported at once, each as
FILE:LINE:COLUMN: what is wrong and what would be accepted. Needs no root
and changes nothing. The exit code is 2 if any file has a problem.`,
		Example: `  natlab validate my-lab.yaml
  natlab validate scenarios/*.yaml`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var all topology.ErrorList
			var other []error
			for _, arg := range a {
				sc, err := loadScenario(arg)
				var list topology.ErrorList
				switch {
				case errors.As(err, &list):
					all = append(all, list...)
					continue
				case err != nil:
					other = append(other, err)
					continue
				}
				sc.tell(cmd.ErrOrStderr())
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: lab %s, %s\n", displayPath(arg, sc), sc.topo.Name, countNodes(sc.topo))
			}
			if len(all) > 0 {
				for _, e := range other {
					fmt.Fprintln(cmd.ErrOrStderr(), e)
				}
				return all
			}
			if len(other) > 0 {
				return &exitError{exitUsage, errors.Join(other...)}
			}
			return nil
		},
	}
}

func displayPath(arg string, sc *scenario) string {
	if name, ok := cutBuiltin(sc.source); ok {
		_, path, _ := scenarios.Read(name)
		return path + " (built in)"
	}
	return arg
}

func countNodes(t *topology.Topology) string {
	counts := map[topology.Kind]int{}
	for _, n := range t.Nodes {
		counts[n.Kind]++
	}
	plural := func(n int, word string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s", word)
		}
		return fmt.Sprintf("%d %ss", n, word)
	}
	return fmt.Sprintf("%s, %s, %s", plural(counts[topology.KindNAT], "NAT"), plural(counts[topology.KindHost], "host"), plural(counts[topology.KindServer], "server"))
}
