// Command natlab-bench measures natlab against its goals and its peers,
// each comparison made in the same run on the same machine, and prints a
// table of ratios with OK or SHORT for each goal:
//
//   - lifecycle: natlab up+down of scenarios/symmetric.yaml against the same
//     topology built by a script of ip and nft commands, by Mininet, and by
//     a floor program that only makes the namespaces and veth pairs;
//   - scale: 100 NATs with 10 hosts each, up and down, with natlab's peak
//     memory, and how time grows from 10 to 1,000 hosts;
//   - data path: UDP packets/s and TCP throughput through a NAT against
//     plain routing, and with the NAT's maps holding 10,000 entries;
//   - traversal: the punch matrix's wall time, and the time from two punch
//     agents starting to the first direct packet;
//   - parallel: 20 labs up and down at once against one after another;
//   - links: packets/s and added delay through a link of 10 ms delay
//     against the same flow unshaped, the delay line's memory under a
//     flood, and up of a lab of 100 shaped links against it unshaped;
//   - library: what CI users pay, natlab run --all (the scenario library)
//     and natlab matrix, with where the time goes (bringing labs up,
//     waiting out silences and timeouts, connecting).
//
// It needs root, and builds every namespace it uses under names starting
// "nlb" and removes them. With -quick it runs small sizes, for CI, so that
// the code keeps working; its ratios then say little.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/service/serve"
)

func main() {
	// The services of the labs it brings up itself (the traversal suite)
	// run in this program started again inside the node.
	if serve.IsServiceProcess() {
		os.Exit(serve.Main())
	}
	cfg := config{}
	flag.StringVar(&cfg.natlab, "natlab", "bin/natlab", "the natlab binary to measure")
	flag.StringVar(&cfg.floor, "floor", "bin/natlab-floor", "the floor program (go build -o bin/natlab-floor ./bench/floor)")
	flag.StringVar(&cfg.out, "out", "bench/results.json", "where to write the results as JSON (empty: nowhere)")
	flag.BoolVar(&cfg.quick, "quick", false, "small sizes and few repetitions, to check that the benchmarks run")
	flag.StringVar(&cfg.only, "only", "", "run only these suites, comma-separated: "+strings.Join(suiteNames(), ","))
	flag.BoolVar(&cfg.noInstall, "no-install", false, "do not install Debian packages (mininet, iperf3); skip what needs them")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "natlab-bench needs root: it builds network namespaces (sudo make bench)")
		os.Exit(1)
	}
	var err error
	for _, p := range []*string{&cfg.natlab, &cfg.floor} {
		if *p, err = filepath.Abs(*p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if cfg.repo, err = repoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, cfg, os.Stdout))
}

type config struct {
	natlab, floor, out, only, repo string
	quick, noInstall               bool
}

// goal is one goal of the performance issue and what was measured for it.
type goal struct {
	Suite string `json:"suite"`
	Name  string `json:"name"`
	// Value is the measured quantity, Target what the goal asks; Higher
	// says whether more is better.
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target float64 `json:"target"`
	Higher bool    `json:"higher_is_better"`
	OK     bool    `json:"ok"`
	// Detail holds the numbers behind the value (medians, spreads).
	Detail string `json:"detail"`
	// Skipped says why the goal was not measured.
	Skipped string `json:"skipped,omitempty"`
	// Info marks a measurement reported for reference, with no target.
	Info bool `json:"info,omitempty"`
}

// report collects a run's goals and raw measurements.
type report struct {
	Date     time.Time          `json:"date"`
	Machine  machine            `json:"machine"`
	Quick    bool               `json:"quick"`
	Goals    []*goal            `json:"goals"`
	Measured map[string]any     `json:"measured"`
	Took     map[string]float64 `json:"suite_seconds"`
}

type machine struct {
	CPUs    int    `json:"cpus"`
	Kernel  string `json:"kernel"`
	MemoryK int64  `json:"memory_kib"`
}

func (r *report) add(g *goal) {
	if g.Skipped == "" && !g.Info {
		if g.Higher {
			g.OK = g.Value >= g.Target
		} else {
			g.OK = g.Value <= g.Target
		}
	}
	r.Goals = append(r.Goals, g)
}

func (r *report) skip(suite, name, why string) {
	r.Goals = append(r.Goals, &goal{Suite: suite, Name: name, Skipped: why})
}

// suite is one group of benchmarks.
type suite struct {
	name string
	run  func(ctx context.Context, cfg config, r *report, log io.Writer) error
}

var suites = []suite{
	{"lifecycle", lifecycle},
	{"scale", scale},
	{"datapath", datapath},
	{"traversal", traversal},
	{"parallel", parallel},
	{"links", links},
	{"library", library},
}

func suiteNames() []string {
	var n []string
	for _, s := range suites {
		n = append(n, s.name)
	}
	return n
}

func run(ctx context.Context, cfg config, out io.Writer) int {
	rep := &report{Date: time.Now().UTC(), Machine: readMachine(), Quick: cfg.quick, Measured: map[string]any{}, Took: map[string]float64{}}
	want := map[string]bool{}
	for _, s := range strings.Split(cfg.only, ",") {
		if s != "" {
			want[s] = true
		}
	}
	failed := false
	for _, s := range suites {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "== %s\n", s.name)
		start := time.Now()
		if err := s.run(ctx, cfg, rep, os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "natlab-bench: %s: %v\n", s.name, err)
			rep.skip(s.name, s.name, "failed: "+err.Error())
			failed = true
		}
		rep.Took[s.name] = time.Since(start).Seconds()
	}
	printTable(out, rep)
	if cfg.out != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		err := os.MkdirAll(filepath.Dir(cfg.out), 0o755)
		if err == nil {
			err = os.WriteFile(cfg.out, append(data, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "natlab-bench: write %s: %v\n", cfg.out, err)
			return 1
		}
		fmt.Fprintf(out, "\nresults: %s\n", cfg.out)
	}
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

func printTable(w io.Writer, r *report) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "\nSUITE\tGOAL\tMEASURED\tTARGET\t\tDETAIL\n")
	for _, g := range r.Goals {
		if g.Skipped != "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\tSKIPPED\t%s\n", g.Suite, g.Name, g.Skipped)
			continue
		}
		if g.Info {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\tINFO\t%s\n", g.Suite, g.Name, num(g.Value, g.Unit), g.Detail)
			continue
		}
		verdict := "OK"
		if !g.OK {
			verdict = "SHORT"
		}
		cmp := "<="
		if g.Higher {
			cmp = ">="
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\t%s\n", g.Suite, g.Name, num(g.Value, g.Unit), cmp, num(g.Target, g.Unit), verdict, g.Detail)
	}
	tw.Flush()
	if r.Quick {
		fmt.Fprintln(w, "\n(-quick: small sizes and few repetitions; the verdicts are not the goals' verdicts)")
	}
}

func num(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f%s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f%s", v, unit)
	}
	return fmt.Sprintf("%.2f%s", v, unit)
}

func readMachine() machine {
	m := machine{CPUs: runtime.NumCPU()}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		m.Kernel = b.String()
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		m.MemoryK = int64(si.Totalram) * int64(si.Unit) / 1024
	}
	return m
}

// repoRoot finds the repository from the working directory, for the
// scenarios and scripts the benchmarks use.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scenarios", "symmetric.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run natlab-bench from the natlab repository (no scenarios/symmetric.yaml above %s)", dir)
		}
		dir = parent
	}
}

// downLab takes down a lab a measurement brought up. Its error is the
// measurement's too: a lab left behind would skew every later one.
func downLab(name string) error {
	if _, err := lab.Down(context.Background(), name, nil); err != nil {
		return fmt.Errorf("taking down lab %s: %w", name, err)
	}
	return nil
}
