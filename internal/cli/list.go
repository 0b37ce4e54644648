package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/scenarios"
	"github.com/natlab/natlab/step"
)

func newListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the built-in scenarios",
		Long: `List the scenarios built into natlab, with what each shows. Use a name
wherever a scenario file is wanted: natlab up NAME, natlab validate NAME.`,
		Example: `  natlab list
  sudo natlab up full-cone`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDESCRIPTION")
			for _, name := range scenarios.Names() {
				data, path, _ := scenarios.Read(name)
				desc := "(does not parse: natlab validate " + name + ")"
				if topo, err := step.Parse(path, data); err == nil {
					desc = topo.Description
				}
				fmt.Fprintf(tw, "%s\t%s\n", name, desc)
			}
			return tw.Flush()
		},
	}
}
