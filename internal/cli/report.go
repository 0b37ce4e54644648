package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/report"
)

func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "report",
		Short:   "Work with the reports of natlab run and natlab matrix",
		Example: "  natlab report merge -o all.json --junit all.xml shard1.json shard2.json",
		Args:    args(cobra.NoArgs),
		// Runnable, so that cobra checks Args: a mistyped subcommand is
		// then a usage error, not the help and exit code 0.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newReportMergeCmd())
	return cmd
}

func newReportMergeCmd() *cobra.Command {
	var jsonPath, junitPath string
	cmd := &cobra.Command{
		Use:   "merge FILE...",
		Short: "Join the reports of several runs or shards into one",
		Long: `Join the --json reports of several natlab runs into one JSON report and one
JUnit file with a <testsuites> of them all: the shards of one run split with
--shard (each shard exactly once: a missing shard is an error, so a CI
runner that died cannot go unnoticed; the runs come back in the order of the
list the shards split, for natlab run sorted by name), or whole runs, in the
order given. natlab matrix --json
reports merge the same way. JUnit files merge too, into JUnit only.

The exit code is 0 if everything merged passed, 1 if something failed, and
2 if the files cannot be merged (then nothing is written).`,
		Example: `  natlab report merge -o all.json --junit all.xml shard1.json shard2.json shard3.json shard4.json
  natlab report merge --junit all.xml results/*.xml`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if jsonPath == "" && junitPath == "" {
				return usageError("natlab report merge: say where the merged report goes, with -o FILE (JSON, - for stdout) and/or --junit FILE")
			}
			var in []report.Input
			for _, path := range a {
				data, err := os.ReadFile(path)
				if err != nil {
					return &exitError{exitUsage, fmt.Errorf("merge: %w", err)}
				}
				in = append(in, report.Input{Name: path, Data: data})
			}
			m, err := report.Merge(in)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if jsonPath != "" {
				// Refused before any file is written.
				if err := m.WriteJSON(io.Discard); errors.Is(err, report.ErrNoJSON) {
					return usageError("%v", err)
				}
			}
			for _, out := range []struct {
				path  string
				write func(io.Writer) error
			}{{jsonPath, m.WriteJSON}, {junitPath, m.WriteJUnit}} {
				if err := writeOut(cmd, out.path, out.write); err != nil {
					return err
				}
			}
			summary := cmd.OutOrStdout()
			if jsonPath == "-" {
				summary = cmd.ErrOrStderr()
			}
			fmt.Fprintf(summary, "merged %d files: %s\n", len(a), m.Summary())
			if !m.Passed() {
				return &exitError{exitFailure, errors.New("not everything merged passed")}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&jsonPath, "output", "o", "", "write the merged JSON to this file (- for stdout)")
	cmd.Flags().StringVar(&junitPath, "junit", "", "write the merged JUnit XML to this file")
	return cmd
}

// writeOut writes to path, or to stdout for "-"; an empty path is no
// output.
func writeOut(cmd *cobra.Command, path string, write func(io.Writer) error) error {
	switch path {
	case "":
		return nil
	case "-":
		return write(cmd.OutOrStdout())
	}
	f, err := os.Create(path)
	if err != nil {
		return usageError("%v", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
