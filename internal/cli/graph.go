package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/graph"
)

func newGraphCmd() *cobra.Command {
	var format, output string
	cmd := &cobra.Command{
		Use:   "graph FILE|NAME|LAB",
		Short: "Draw a lab's topology",
		Long: `Draw a topology: the internet at the top, servers, NATs and hosts on it below,
and every NAT's LAN below the NAT. As Mermaid (paste into Markdown on GitHub),
Graphviz DOT (dot -Tpng), or a standalone SVG picture. It reads a scenario
file, a built-in scenario or a running lab, and needs no root.`,
		Example: `  natlab graph symmetric
  natlab graph scenarios/full-cone.yaml --format svg -o full-cone.svg
  natlab graph my-lab.yaml --format dot | dot -Tpng > lab.png`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			topo, err := labOrFile(cmd, a[0])
			if err != nil {
				return err
			}
			known := false
			for _, f := range graph.Formats {
				known = known || f == format
			}
			if !known {
				return usageError("--format %q: want %s", format, strings.Join(graph.Formats, ", "))
			}
			w := cmd.OutOrStdout()
			if output != "" {
				f, err := os.Create(output)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			return graph.Write(w, topo, format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "mermaid", "mermaid, dot or svg")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	return cmd
}
