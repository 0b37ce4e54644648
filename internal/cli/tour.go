package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/tour"
	"github.com/natlab/natlab/trace"
)

func newTourCmd() *cobra.Command {
	var noPause, forceRootless bool
	var only string
	cmd := &cobra.Command{
		Use:   "tour",
		Short: "Walk the story of NAT traversal, act by act, on the real kernel",
		Long: `Walk the seven acts of the story: for each, a short explanation, then its
scenario built and run for real, step by step, with what each step saw and,
where it helps, every packet that crossed the NAT. The tour waits for Enter
before each step, for a class to follow; --no-pause runs straight through.`,
		Example: `  sudo natlab tour
  sudo natlab tour --act V
  sudo natlab tour --act 3
  sudo natlab tour --act "the real world: ipv6"
  sudo natlab tour --no-pause`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acts := tour.Acts
			if only != "" {
				acts = tour.Select(only)
			}
			if len(acts) == 0 {
				msg := fmt.Sprintf("--act %q: want an act's number, I to VII or 1 to 7, or its name, such as \"the wall\" or ipv6", only)
				if sug := tour.Suggest(only); sug != "" {
					msg += "; did you mean " + sug + "?"
				}
				return usageError("%s", msg)
			}
			if err := rootOrRootless(cmd, forceRootless); err != nil {
				return err
			}
			// Lines fit the terminal (80 columns when it is none).
			out := newLineWrapper(cmd.OutOrStdout(), outputWidth(cmd.OutOrStdout()))
			defer out.Flush()
			in := newPromptReader(cmd.InOrStdin())
			// pause waits for Enter, and returns an error if the tour was
			// stopped (Ctrl-C) meanwhile.
			pause := func(prompt string) error {
				if noPause {
					return cmd.Context().Err()
				}
				fmt.Fprintf(out, "\033[2m%s\033[0m", prompt)
				out.Flush()
				in.readLine(cmd.Context())
				return cmd.Context().Err()
			}
			failed := 0
			for i, a := range acts {
				n, err := playAct(cmd, out, a, pause)
				if err != nil {
					return err
				}
				failed += n
				if i < len(acts)-1 && pause("\n[Enter: the next act] ") != nil {
					return fmt.Errorf("interrupted after act %s", a.Number)
				}
			}
			fmt.Fprintln(out)
			if failed > 0 {
				return &exitError{exitFailure, fmt.Errorf("%d steps of the tour did not do what the story says", failed)}
			}
			fmt.Fprintln(out, "That is the story. Every scenario is in natlab list; natlab run NAME runs one, natlab up NAME keeps one running.")
			return nil
		},
	}
	cmd.Flags().BoolVar(&noPause, "no-pause", false, "do not wait for Enter")
	addRootlessFlag(cmd, &forceRootless)
	cmd.Flags().StringVar(&only, "act", "", "play only this act: I to VII, 1 to 7, or its name (\"the wall\", ipv6)")
	return cmd
}

// playAct tells an act, brings its scenario up, runs its steps with the
// trace of its NAT, and takes it down. It returns how many steps failed;
// a lab it could not take down is an error.
func playAct(cmd *cobra.Command, out io.Writer, a tour.Act, pause func(string) error) (failed int, err error) {
	fmt.Fprintf(out, "\n\033[1mAct %s: %s\033[0m\n\n", a.Number, a.Title)
	for _, p := range a.Text {
		fmt.Fprintf(out, "%s\n\n", wrap(p, proseWidth(out)))
	}
	topo, data, err := tour.Load(a.Scenario)
	if err != nil {
		return 0, err
	}
	if pause(fmt.Sprintf("[Enter: build %s] ", a.Scenario)) != nil {
		return 0, fmt.Errorf("interrupted in act %s, before its lab was built", a.Number)
	}
	st, topo, err := tour.Up(cmd.Context(), tour.Prefix, a.Scenario, topo, data)
	if err != nil {
		if cmd.Context().Err() != nil {
			return 0, fmt.Errorf("interrupted in act %s; what was built of its lab was removed: %w", a.Number, err)
		}
		return 0, err
	}
	defer func() {
		_, derr := lab.Down(context.Background(), st.Name, nil)
		switch {
		case derr != nil:
			err = errors.Join(err, fmt.Errorf("tour: taking lab %s down: %w", st.Name, derr))
		case cmd.Context().Err() != nil:
			err = fmt.Errorf("interrupted in act %s; its lab %s was taken down", a.Number, st.Name)
		}
	}()
	printNodes(out, topo)
	fmt.Fprintln(out)

	var tr *trace.Tracer
	if a.Trace != "" {
		var terr error
		if tr, terr = trace.Open(cmd.Context(), lab.NamespaceName(st.Name, a.Trace)); terr != nil {
			// The act runs without its packets shown, and says why.
			fmt.Fprintf(cmd.ErrOrStderr(), "tour: the packets crossing %s cannot be shown: %v\n", a.Trace, terr)
		}
	}
	if tr != nil {
		defer tr.Stop()
	}
	width := 0
	for _, s := range topo.Steps {
		width = max(width, len(s.Name))
	}
	rep, err := runner.Run(cmd.Context(), st, topo, runner.Options{
		Started: func(i int, s topology.Step) {
			pause(fmt.Sprintf("[Enter: %s] ", s.Name)) // a stopped run does not start the step
		},
		Finished: func(r step.Result) {
			printStep(out, r, len(topo.Steps), width)
			if tr != nil {
				for _, e := range tr.Drain(cmd.Context(), 50*time.Millisecond) { // the step's packets
					fmt.Fprintf(out, "           %s: %s\n", a.Trace, e)
				}
			}
		},
	})
	if err != nil {
		return 0, err
	}
	return rep.Failed(), nil
}

// wrap breaks text into lines of at most width columns.
func wrap(text string, width int) string {
	var b strings.Builder
	col := 0
	for _, w := range strings.Fields(text) {
		if col > 0 && col+1+len(w) > width {
			b.WriteByte('\n')
			col = 0
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}
