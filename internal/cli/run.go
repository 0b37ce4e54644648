package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/report"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/topology"
)

func newRunCmd() *cobra.Command {
	var name, jsonPath, junitPath string
	var keep, forceRootless bool
	cmd := &cobra.Command{
		Use:   "run FILE|NAME",
		Short: "Bring a lab up, run its steps, check their expectations, take it down",
		Long: `Run a scenario: bring its lab up, run its steps in order with a line per step
as each finishes, print what each saw, and take the lab down again (also on
failure and Ctrl-C, unless --keep). The exit code is 0 only if every step's
expectation held.

Without root, natlab runs in a user namespace of its own, where the lab
lives only as long as natlab run (docs/rootless.md).

Steps: stun (public endpoint, or RFC 5780 classification), punch (the
simultaneous hole punch), relay (through TURN), ice (real ICE agents), send
(one packet: delivered or dropped), wait, exec (a command inside a node).`,
		Example: `  sudo natlab run symmetric
  sudo natlab run scenarios/full-cone.yaml --junit results.xml --json results.json
  sudo natlab run my-lab.yaml --keep     # leave the lab up afterwards
  natlab run full-cone                   # without root: in a user namespace`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			sc, err := loadScenario(a[0])
			if err != nil {
				return err
			}
			topo := sc.topo
			if name != "" {
				if err := checkLabName(name); err != nil {
					return err
				}
				topo = renamed(topo, name)
			}
			if len(topo.Steps) == 0 {
				return usageError("%s has no steps: to build its lab and leave it running, use natlab up", a[0])
			}
			if keep && isRootless(cmd, forceRootless) {
				return usageError("--keep needs root: without it the lab lives in natlab's own user namespace, which ends with natlab run (see docs/rootless.md)")
			}
			if err := rootOrRootless(cmd, forceRootless); err != nil {
				return err
			}
			// Open the report files first: a path that cannot be written
			// fails now, not after the whole run.
			reports, err := createReports(jsonPath, junitPath)
			if err != nil {
				return err
			}
			defer reports.close()
			out := cmd.OutOrStdout()
			ctx := cmd.Context()
			start := time.Now()
			st, err := lab.Up(ctx, topo, lab.Options{Source: sc.source, Scenario: sc.data})
			if err != nil {
				return err
			}
			if !keep {
				defer func() {
					if _, err := lab.Down(st.Name); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "natlab: taking lab %s down: %v\n", st.Name, err)
					}
				}()
			}
			fmt.Fprintf(out, "lab %s is up (%d nodes, %v); running %d steps\n", st.Name, len(topo.Nodes), time.Since(start).Round(time.Millisecond), len(topo.Steps))
			tty := isTerminal(out)
			width := 0
			for _, s := range topo.Steps {
				width = max(width, len(s.Name))
			}
			rep, runErr := runner.Run(ctx, st, topo, runner.Options{
				Started: func(i int, s topology.Step) {
					if tty {
						fmt.Fprintf(out, "  ...  %2d/%d %-*s", i+1, len(topo.Steps), width, s.Name)
					}
				},
				Finished: func(r runner.StepResult) {
					if tty {
						fmt.Fprint(out, "\r\033[K")
					}
					printStep(out, r, len(topo.Steps), width)
				},
			})
			if err := reports.write(rep); err != nil {
				return err
			}
			fmt.Fprintf(out, "\n%d passed, %d failed\n", len(rep.Steps)-rep.Failed(), rep.Failed())
			if keep {
				fmt.Fprintf(out, "lab %s is still up: sudo natlab down %s removes it\n", st.Name, st.Name)
			}
			if runErr != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("interrupted after %d of %d steps; the lab was taken down", len(rep.Steps), len(topo.Steps))
				}
				return runErr
			}
			if !rep.Passed {
				return &exitError{exitFailure, fmt.Errorf("%d of %d steps did not do what %s expects", rep.Failed(), len(rep.Steps), a[0])}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "bring the lab up under this name instead of the file's")
	cmd.Flags().StringVar(&jsonPath, "json", "", "write the full results as JSON to this file")
	cmd.Flags().StringVar(&junitPath, "junit", "", "write the results as JUnit XML to this file, one test case per step")
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the lab up after the steps")
	addRootlessFlag(cmd, &forceRootless)
	return cmd
}

func printStep(w io.Writer, r runner.StepResult, total, width int) {
	mark := "PASS"
	if !r.Pass {
		mark = "FAIL"
	}
	fmt.Fprintf(w, "  %s %2d/%d %-*s  %s", mark, r.Index+1, total, width, r.Name, r.Observed)
	if !r.Pass {
		fmt.Fprintf(w, " (expected %s)", r.Expect)
	}
	fmt.Fprintf(w, "  %v\n", runner.Round(r.Duration))
	if r.Detail != "" {
		fmt.Fprintf(w, "         %s\n", strings.ReplaceAll(r.Detail, "\n", "\n         "))
	}
	if r.Reason != "" && (!r.Pass || r.Observed == "fail") {
		fmt.Fprintf(w, "         %s\n", strings.ReplaceAll(r.Reason, "\n", "\n         "))
	}
}

// reportFiles are the --json and --junit files of a run.
type reportFiles struct {
	files  []*os.File
	writes []func(io.Writer, *runner.Report) error
}

func createReports(jsonPath, junitPath string) (*reportFiles, error) {
	r := &reportFiles{}
	for _, out := range []struct {
		path  string
		write func(io.Writer, *runner.Report) error
	}{{jsonPath, report.WriteJSON}, {junitPath, report.WriteJUnit}} {
		if out.path == "" {
			continue
		}
		f, err := os.Create(out.path)
		if err != nil {
			r.close()
			return nil, usageError("%v", err)
		}
		r.files = append(r.files, f)
		r.writes = append(r.writes, out.write)
	}
	return r, nil
}

func (r *reportFiles) write(rep *runner.Report) error {
	for i, f := range r.files {
		if err := r.writes[i](f, rep); err != nil {
			return err
		}
	}
	return nil
}

func (r *reportFiles) close() {
	for _, f := range r.files {
		f.Close()
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
