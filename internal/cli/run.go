package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/natlab/natlab/internal/shard"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/report"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/scenarios"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

func newRunCmd() *cobra.Command {
	var name, jsonPath, junitPath, shardArg string
	var keep, forceRootless, all bool
	parallel := 1
	cmd := &cobra.Command{
		Use:   "run FILE|NAME...",
		Short: "Bring a lab up, run its steps, check their expectations, take it down",
		Long: `Run a scenario: bring its lab up, run its steps in order with a line per step
as each finishes, print what each saw, and take the lab down again (also on
failure and Ctrl-C, unless --keep). The exit code is 0 only if every step's
expectation held.

Several scenarios (or --all, the built-in library) run one after another,
in the order given, and their reports hold every run; --parallel N runs N
labs at once, each scenario's lines printed together as it ends, in the
order given (most of a scenario's time is waiting: for silence that proves
a drop, for timeouts, for the scenario's own waits). --shard i/n runs only
every n-th of them, starting with the i-th, of the list sorted by name: n
CI machines, each given its own i, run the whole list between them, and
natlab report merge puts their --json (or --junit) files back together
(docs/ci.md).

Without root, natlab runs in a user namespace of its own, where the lab
lives only as long as natlab run (docs/rootless.md).` + "\n\n" + stepKindsHelp(),
		Example: `  sudo natlab run symmetric
  sudo natlab run scenarios/full-cone.yaml --junit results.xml --json results.json
  sudo natlab run my-lab.yaml --keep     # leave the lab up afterwards
  natlab run full-cone                   # without root: in a user namespace
  sudo natlab run --all --junit all.xml  # the whole built-in library
  sudo natlab run --all --parallel 4     # four labs at once
  sudo natlab run --all --shard 2/4 --json shard2.json   # a quarter of it`,
		Args: args(func(cmd *cobra.Command, a []string) error {
			if all && len(a) > 0 {
				return fmt.Errorf("--all runs the built-in library: give it no scenarios as well")
			}
			if !all && len(a) == 0 {
				return fmt.Errorf("requires a scenario file or name, or --all")
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, a []string) error {
			var sh shard.Shard
			if cmd.Flags().Changed("shard") {
				var err error
				if sh, err = shard.Parse(shardArg); err != nil {
					return usageError("--shard: %v", err)
				}
			}
			if parallel < 1 {
				return usageError("--parallel %d: give how many labs to run at once, 1 or more", parallel)
			}
			if all {
				a = scenarios.Names()
			}
			if all || !sh.Whole() || len(a) > 1 {
				if cmd.Flags().Changed("name") {
					return usageError("--name renames one scenario's lab: it cannot be used with several, --all or --shard")
				}
				if keep {
					return usageError("--keep leaves one scenario's lab up: it cannot be used with several, --all or --shard")
				}
				return runSuite(cmd, a, sh, parallel, jsonPath, junitPath, forceRootless)
			}
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
			rep, err := runScenario(cmd.Context(), out, cmd.ErrOrStderr(), isTerminal(out), sc, topo, keep)
			if rep == nil {
				return err
			}
			if err := reports.write(rep); err != nil {
				return err
			}
			if err != nil {
				return err
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
	cmd.Flags().BoolVar(&all, "all", false, "run every built-in scenario (natlab list)")
	cmd.Flags().IntVar(&parallel, "parallel", 1, "with several scenarios or --all, how many labs to run at once")
	cmd.Flags().StringVar(&shardArg, "shard", "", "run only shard `i/n` of the scenarios: every n-th of the sorted list, from the i-th")
	addRootlessFlag(cmd, &forceRootless)
	return cmd
}

// runScenario brings topo's lab up, runs its steps with a line for each
// on out (and, if tty, the step running now), and takes the lab down
// unless keep. The report is nil if the lab did not come up; an error
// with a report means the run was interrupted.
func runScenario(ctx context.Context, out, errOut io.Writer, tty bool, sc *scenario, topo *topology.Topology, keep bool) (*runner.Report, error) {
	start := time.Now()
	st, err := lab.Up(ctx, topo, lab.Options{Source: sc.source, Scenario: sc.data})
	if err != nil {
		return nil, err
	}
	up := time.Since(start)
	// The lab goes down before the report is returned, so that the
	// report can say how long that took; the deferred call is for a
	// panic on the way.
	var downTook time.Duration
	takeDown := sync.OnceFunc(func() {
		if keep {
			return
		}
		start := time.Now()
		if _, err := lab.Down(context.Background(), st.Name, nil); err != nil {
			fmt.Fprintf(errOut, "natlab: taking lab %s down: %v\n", st.Name, err)
		}
		downTook = time.Since(start)
	})
	defer takeDown()
	fmt.Fprintf(out, "lab %s is up (%d nodes, %v); running %d steps\n", st.Name, len(topo.Nodes), up.Round(time.Millisecond), len(topo.Steps))
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
		Finished: func(r step.Result) {
			if tty {
				fmt.Fprint(out, "\r\033[K")
			}
			printStep(out, r, len(topo.Steps), width)
		},
	})
	takeDown()
	rep.Up, rep.Down = up, downTook
	fmt.Fprintf(out, "\n%d passed, %d failed\n", len(rep.Steps)-rep.Failed(), rep.Failed())
	if keep {
		fmt.Fprintf(out, "lab %s is still up: sudo natlab down %s removes it\n", st.Name, st.Name)
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return rep, fmt.Errorf("interrupted after %d of %d steps; the lab was taken down", len(rep.Steps), len(topo.Steps))
		}
		return rep, runErr
	}
	return rep, nil
}

// runSuite runs several scenarios, parallel labs at a time, in the order
// given (the shard sh of them, sorted by name, if sh is set: every shard
// must split the same list) and writes one report of them all.
// A scenario whose lab does not come up is a failed run, not the end:
// in CI the rest still say what they can.
func runSuite(cmd *cobra.Command, list []string, sh shard.Shard, parallel int, jsonPath, junitPath string, forceRootless bool) error {
	if sh.Whole() {
		list = firstOfEach(list)
	} else {
		list = slices.Compact(slices.Sorted(slices.Values(list)))
	}
	// Every scenario is read, not only this shard's: every shard refuses
	// a bad file, and two that would bring up the same lab, alike.
	loaded := make([]*scenario, len(list))
	labs := map[string]string{}
	for i, arg := range list {
		sc, err := loadScenario(arg)
		if err != nil {
			return err
		}
		sc.tell(cmd.ErrOrStderr())
		if len(sc.topo.Steps) == 0 {
			return usageError("%s has no steps: natlab run runs a scenario's steps", arg)
		}
		if other, ok := labs[sc.topo.Name]; ok {
			return usageError("%s and %s both bring up lab %s: run them apart, or rename one with natlab run --name", other, arg, sc.topo.Name)
		}
		labs[sc.topo.Name] = arg
		loaded[i] = sc
	}
	if err := rootOrRootless(cmd, forceRootless); err != nil {
		return err
	}
	reports, err := createReports(jsonPath, junitPath)
	if err != nil {
		return err
	}
	defer reports.close()
	out := cmd.OutOrStdout()
	picked := shard.Select(sh, loaded)
	what := fmt.Sprintf("%d scenarios", len(picked))
	if !sh.Whole() {
		what = fmt.Sprintf("shard %v: %d of %d scenarios", sh, len(picked), len(list))
	}
	if parallel > 1 {
		fmt.Fprintf(out, "%s, %d at once\n", what, min(parallel, len(picked)))
	} else {
		fmt.Fprintf(out, "%s\n", what)
	}
	var runs []report.Run
	var stop error
	ctx := cmd.Context()
	for i, r := range runScenarios(ctx, cmd, picked, parallel) {
		sc := picked[i]
		if r.rep == nil {
			if r.skipped {
				stop = fmt.Errorf("interrupted before lab %s was brought up", sc.topo.Name)
				break
			}
			if ctx.Err() != nil {
				stop = fmt.Errorf("interrupted while bringing lab %s up; it was taken down", sc.topo.Name)
				break
			}
			fmt.Fprintf(out, "  ERROR %v\n", r.err)
			rep := &runner.Report{Lab: sc.topo.Name, Source: sc.source, Started: r.started, Duration: r.took, Steps: []step.Result{}}
			runs = append(runs, report.Run{Report: *rep, Error: r.err.Error()})
			continue
		}
		runs = append(runs, report.Run{Report: *r.rep})
		if r.err != nil {
			stop = r.err
			break
		}
	}
	suite := report.NewSuite(sh, runs)
	if err := reports.writeSuite(suite); err != nil {
		return err
	}
	if stop != nil {
		return stop
	}
	fmt.Fprintf(out, "\n%s: %d passed, %d failed\n", what, len(runs)-suite.Failed(), suite.Failed())
	for _, r := range runs {
		if !r.Passed || r.Error != "" {
			fmt.Fprintf(out, "  FAIL %s\n", r.Lab)
		}
	}
	if !suite.Passed {
		return &exitError{exitFailure, fmt.Errorf("%d of %d scenarios did not do what they expect", suite.Failed(), len(runs))}
	}
	return nil
}

// scenarioRun is what running one scenario of a suite gave.
type scenarioRun struct {
	rep         *runner.Report
	err         error
	started     time.Time
	took        time.Duration
	out, errOut bytes.Buffer
	// skipped is set on a scenario never started: the run was
	// interrupted first.
	skipped bool
	done    chan struct{}
}

// runScenarios runs the scenarios, parallel at a time, and yields each
// one's run in their order, once it has ended and its lines (headed
// "== i/n NAME") are printed. One at a time, the lines are printed as
// the steps end, as natlab run of one scenario prints them; several at a
// time, each scenario's lines are held until it ends, so that they are
// not interleaved. Stopping the loop early (after an interruption)
// waits for the scenarios already started; ctx's end stops them.
func runScenarios(ctx context.Context, cmd *cobra.Command, picked []*scenario, parallel int) iter.Seq2[int, *scenarioRun] {
	return func(yield func(int, *scenarioRun) bool) {
		out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
		header := func(i int) {
			fmt.Fprintf(out, "\n== %d/%d %s\n", i+1, len(picked), picked[i].topo.Name)
		}
		if parallel <= 1 {
			for i, sc := range picked {
				header(i)
				r := &scenarioRun{started: time.Now()}
				r.rep, r.err = runScenario(ctx, out, errOut, isTerminal(out), sc, sc.topo, false)
				r.took = time.Since(r.started)
				if !yield(i, r) {
					return
				}
			}
			return
		}
		runs := make([]*scenarioRun, len(picked))
		for i := range runs {
			runs[i] = &scenarioRun{done: make(chan struct{})}
		}
		// The workers take the scenarios in order; a stopped loop makes
		// them take no more.
		stopped := make(chan struct{})
		next := make(chan int)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer close(stopped)
		for range min(parallel, len(picked)) {
			wg.Go(func() {
				for i := range next {
					r, sc := runs[i], picked[i]
					r.started = time.Now()
					r.rep, r.err = runScenario(ctx, &r.out, &r.errOut, false, sc, sc.topo, false)
					r.took = time.Since(r.started)
					close(r.done)
				}
			})
		}
		wg.Go(func() {
			defer close(next)
			for i := range picked {
				select {
				case next <- i:
					continue
				case <-stopped:
				case <-ctx.Done():
				}
				// The rest never start.
				for _, r := range runs[i:] {
					r.skipped, r.err = true, ctx.Err()
					close(r.done)
				}
				return
			}
		})
		for i, r := range runs {
			// After an interruption, a scenario running ends soon, its
			// lab taken down; one never started is done at once.
			<-r.done
			if !r.skipped {
				header(i)
				out.Write(r.out.Bytes())
				errOut.Write(r.errOut.Bytes())
			}
			if !yield(i, r) {
				return
			}
		}
	}
}

// firstOfEach is list without repeats, in its order.
func firstOfEach(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func printStep(w io.Writer, r step.Result, total, width int) {
	mark := "PASS"
	if !r.Pass {
		mark = "FAIL"
	}
	fmt.Fprintf(w, "  %s %2d/%d %-*s  %s", mark, r.Index+1, total, width, r.Name, r.Observed)
	if !r.Pass {
		fmt.Fprintf(w, " (expected %s)", r.Expect)
	}
	if m := r.Measured(); m != "" {
		fmt.Fprintf(w, "  %s", m)
	}
	fmt.Fprintf(w, "  %v\n", step.Round(r.Duration))
	if r.Detail != "" {
		fmt.Fprintf(w, "         %s\n", strings.ReplaceAll(r.Detail, "\n", "\n         "))
	}
	if r.Reason != "" && (!r.Pass || r.Observed == "fail") {
		fmt.Fprintf(w, "         %s\n", strings.ReplaceAll(r.Reason, "\n", "\n         "))
	}
}

// reportFiles are the --json and --junit files of a run.
type reportFiles struct {
	files       []*os.File
	writes      []func(io.Writer, *runner.Report) error
	suiteWrites []func(io.Writer, *report.Suite) error
}

func createReports(jsonPath, junitPath string) (*reportFiles, error) {
	r := &reportFiles{}
	for _, out := range []struct {
		path       string
		write      func(io.Writer, *runner.Report) error
		writeSuite func(io.Writer, *report.Suite) error
	}{{jsonPath, report.WriteJSON, report.WriteSuiteJSON}, {junitPath, report.WriteJUnit, report.WriteSuiteJUnit}} {
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
		r.suiteWrites = append(r.suiteWrites, out.writeSuite)
	}
	return r, nil
}

func (r *reportFiles) write(rep *runner.Report) error {
	for i, f := range r.files {
		if err := r.writes[i](f, rep); err != nil {
			return fmt.Errorf("writing %s: %w", f.Name(), err)
		}
	}
	return r.close()
}

func (r *reportFiles) writeSuite(s *report.Suite) error {
	for i, f := range r.files {
		if err := r.suiteWrites[i](f, s); err != nil {
			return fmt.Errorf("writing %s: %w", f.Name(), err)
		}
	}
	return r.close()
}

// close closes the files, once: a file system may report a failed write
// only then.
func (r *reportFiles) close() error {
	var errs []error
	for _, f := range r.files {
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("writing %s: %w", f.Name(), err))
		}
	}
	r.files = nil
	return errors.Join(errs...)
}

func isTerminal(w io.Writer) bool {
	f, ok := fileOf(w)
	return ok && term.IsTerminal(int(f.Fd()))
}

// stepKindsHelp lists every kind of step with what it does, for --help;
// docs/reference.md has their fields.
func stepKindsHelp() string {
	var b strings.Builder
	b.WriteString("Steps (docs/reference.md lists their fields):\n")
	for _, k := range step.All() {
		fmt.Fprintf(&b, "  %-8s %s", k.Key(), strings.ReplaceAll(wrap(k.Doc(), 68), "\n", "\n           "))
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}
