package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/internal/shard"
	"github.com/natlab/natlab/matrix"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/report"
)

func newMatrixCmd() *cobra.Command {
	var asJSON, variants, forceRootless bool
	var shardArg, junitPath string
	var types []string
	var parallel int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "matrix",
		Short: "Punch every NAT type against every other, expected vs observed",
		Long: `Build a lab for every pair of NAT types (in parallel), punch between a host
behind each, and, where punching fails, connect them through a TURN relay.
Rows are alice's NAT, columns bob's. Every cell is compared with what RFC
4787 theory predicts; a cell that differs is marked UNEXPECTED and the exit
code is 1.

--shard i/n runs only every n-th cell, row by row, from the i-th: n
machines share the matrix, and natlab report merge joins their --json
files (docs/ci.md).

With --variants, extra rows show the story's knob variants: a symmetric NAT
with sequential ports beaten by port prediction, two hosts behind one NAT
with and without hairpinning, and a cone NAT behind carrier-grade NAT.`,
		Example: `  sudo natlab matrix
  sudo natlab matrix --variants --json > matrix.json
  sudo natlab matrix --types full-cone,symmetric
  sudo natlab matrix --variants --shard 1/2 --json --junit m1.xml > m1.json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cols []nat.Type
			for _, t := range types {
				typ, err := nat.ParseType(strings.TrimSpace(t))
				if err != nil {
					return usageError("--types: %v", err)
				}
				if typ == nat.OneToOne {
					// Its rows would put two hosts behind one of them.
					return usageError("--types: the matrix crosses the classic types (%s), and one-to-one punches as the full cone it maps and filters as", strings.Join(classicNames(), ", "))
				}
				cols = append(cols, typ)
			}
			if len(cols) == 0 {
				cols = nat.Types
			}
			var sh shard.Shard
			if cmd.Flags().Changed("shard") {
				var err error
				if sh, err = shard.Parse(shardArg); err != nil {
					return usageError("--shard: %v", err)
				}
			}
			if err := rootOrRootless(cmd, forceRootless); err != nil {
				return err
			}
			rows := matrix.Rows(cols)
			if variants {
				rows = append(rows, matrix.Variants...)
			}
			var junit *os.File
			if junitPath != "" {
				// Now, not after the whole matrix: a path that cannot be
				// written fails at once.
				f, err := os.Create(junitPath)
				if err != nil {
					return usageError("%v", err)
				}
				defer f.Close()
				junit = f
			}
			out := cmd.OutOrStdout()
			start := time.Now()
			cells, err := matrix.Run(cmd.Context(), matrix.Options{Rows: rows, Columns: cols, Parallel: parallel, Timeout: timeout, Shard: sh})
			if err != nil {
				if cmd.Context().Err() != nil && !asJSON {
					fmt.Fprint(out, matrix.Markdown(cells, rows, cols))
				}
				return fmt.Errorf("interrupted; every lab it built was taken down: %w", err)
			}
			doc := report.NewMatrix(sh, cells, time.Since(start))
			bad := doc.Unexpected
			if junit != nil {
				if err := report.WriteMatrixJUnit(junit, doc); err != nil {
					return fmt.Errorf("writing %s: %w", junitPath, err)
				}
			}
			if asJSON {
				if err := report.WriteMatrixJSON(out, doc); err != nil {
					return err
				}
			} else {
				if !sh.Whole() {
					fmt.Fprintf(out, "shard %v: %d cells; the blank ones are other shards'\n\n", sh, len(cells))
				}
				fmt.Fprint(out, matrix.Markdown(cells, rows, cols))
				fmt.Fprintf(out, "\n%d labs in %v. ok: a direct path; no: punching failed (relay ok: TURN connected them instead).\n",
					len(cells), time.Since(start).Round(10*time.Millisecond))
				for _, c := range cells {
					if !c.OK() {
						fmt.Fprintf(out, "  %s vs %s: %s %s\n", c.Row, c.Column, c.Reason, c.Err)
					}
				}
			}
			if bad > 0 {
				return &exitError{exitFailure, fmt.Errorf("%d cells differ from theory or could not be relayed", bad)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&junitPath, "junit", "", "write the cells as JUnit XML to this file, one test case per cell")
	cmd.Flags().StringVar(&shardArg, "shard", "", "run only shard `i/n` of the cells: every n-th, row by row, from the i-th")
	addRootlessFlag(cmd, &forceRootless)
	cmd.Flags().BoolVar(&variants, "variants", false, "add rows for knob variants: port prediction, hairpinning, CGNAT")
	cmd.Flags().StringSliceVar(&types, "types", nil, "NAT types to include (default: all four)")
	cmd.Flags().IntVar(&parallel, "parallel", 8, "labs up at once")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "how long each punch may take")
	return cmd
}

// classicNames are the types the matrix crosses.
func classicNames() []string {
	var names []string
	for _, t := range nat.Types {
		names = append(names, string(t))
	}
	return names
}
