package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/natlab/natlab/matrix"
	natreport "github.com/natlab/natlab/report"
)

// libraryTarget is the goal for the whole scenario library on this
// two-core machine.
const libraryTarget = 30 * time.Second

// library times what a CI job pays for natlab run --all, the built-in
// scenario library one lab after another, and says where the time goes.
// (The traversal suite does the same for natlab matrix.)
func library(ctx context.Context, cfg config, r *report, log io.Writer) error {
	dir, err := os.MkdirTemp("", "natlab-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	scenarios := []string{"--all"}
	what := "the scenario library (natlab run --all)"
	if cfg.quick {
		scenarios = []string{"act1-address-problem", "act3-the-wall"}
		what = "two scenarios (-quick)"
	}
	// One after another, the time splits cleanly into its parts.
	out := filepath.Join(dir, "all.json")
	took, _, err := runNatlab(ctx, cfg.natlab, append([]string{"run", "--json", out}, scenarios...)...)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	var suite natreport.Suite
	if err := json.Unmarshal(data, &suite); err != nil {
		return fmt.Errorf("read natlab run's report: %w", err)
	}
	parts := splitRuns(suite.Runs, took)
	fmt.Fprintf(log, "  %s, one after another: %v\n", what, round(took))
	for _, p := range parts {
		fmt.Fprintf(log, "    %-62s %7v  %d\n", p.What, round(p.Took), p.Count)
	}
	r.Measured["library_parts"] = parts
	r.add(&goal{Suite: "library", Name: what + ", one after another", Value: took.Seconds(), Unit: "s", Info: true,
		Detail: fmt.Sprintf("%d scenarios; %s", len(suite.Runs), summary(parts, 3))})

	// At once, as a CI job runs it to save the waiting.
	ptook, _, err := runNatlab(ctx, cfg.natlab, append([]string{"run", "--parallel", fmt.Sprint(libraryParallel)}, scenarios...)...)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "  %s, --parallel %d: %v\n", what, libraryParallel, round(ptook))
	r.add(&goal{Suite: "library", Name: fmt.Sprintf("%s, --parallel %d", what, libraryParallel), Value: ptook.Seconds(), Unit: "s", Target: libraryTarget.Seconds(),
		Detail: fmt.Sprintf("%.1fx faster than one after another", took.Seconds()/ptook.Seconds())})
	return nil
}

// libraryParallel is how many labs the library runs at once: on two
// cores, more only adds waiting for the CPU to the steps that time.
const libraryParallel = 4

// part is a share of a run's time: what it was spent on, how long, and
// over how many steps (or labs).
type part struct {
	What  string        `json:"what"`
	Took  time.Duration `json:"took_ns"`
	Count int           `json:"count"`
}

// The parts of the library's time, by what the time is spent doing.
const (
	partUp      = "bringing labs up"
	partDown    = "taking labs down"
	partProcess = "the rest: starting natlab, reading scenarios, printing"
	partSilence = "send expecting silence: waiting out 1s to call it dropped"
	partSTUN    = "stun: asking servers (discovery waits out unanswered tests)"
	partPunchNo = "punch that fails: waiting out its timeout"
	partPunchOK = "punch that succeeds"
	partConnect = "ice, relay, upgrade: connecting"
	partWait    = "wait steps: the scenario's own pauses"
	partSending = "throughput: sending for the step's duration"
	partOther   = "other steps"
	partRelay   = "relay, where the punch failed"
)

// stepPart is the part a step's time belongs to.
func stepPart(kind, observed string) string {
	switch kind {
	case "send":
		if observed == "dropped" || observed == "lost" {
			return partSilence
		}
		return partOther
	case "stun":
		return partSTUN
	case "punch":
		if observed == "ok" {
			return partPunchOK
		}
		return partPunchNo
	case "ice", "relay", "upgrade":
		return partConnect
	case "wait":
		return partWait
	case "throughput":
		return partSending
	}
	return partOther
}

// splitRuns says where the wall time of a natlab run of these runs went,
// longest part first.
func splitRuns(runs []natreport.Run, wall time.Duration) []part {
	sum := map[string]*part{}
	add := func(what string, d time.Duration) {
		p := sum[what]
		if p == nil {
			p = &part{What: what}
			sum[what] = p
		}
		p.Took += d
		p.Count++
	}
	accounted := time.Duration(0)
	for _, run := range runs {
		add(partUp, run.Up)
		add(partDown, run.Down)
		accounted += run.Up + run.Down
		for _, s := range run.Steps {
			add(stepPart(s.Kind, s.Observed), s.Duration)
			accounted += s.Duration
		}
	}
	if rest := wall - accounted; rest > 0 {
		sum[partProcess] = &part{What: partProcess, Took: rest, Count: 1}
	}
	return sorted(sum)
}

// splitCells says where the lab-seconds of a matrix went.
func splitCells(cells []matrix.Cell) []part {
	sum := map[string]*part{}
	add := func(what string, d time.Duration) {
		if d == 0 {
			return
		}
		p := sum[what]
		if p == nil {
			p = &part{What: what}
			sum[what] = p
		}
		p.Took += d
		p.Count++
	}
	for _, c := range cells {
		add(partUp, c.Up)
		add(partDown, c.Down)
		if c.Punched {
			add(partPunchOK, c.Punch)
		} else {
			add(partPunchNo, c.Punch)
		}
		add(partRelay, c.Relay)
	}
	return sorted(sum)
}

func sorted(sum map[string]*part) []part {
	var parts []part
	for _, p := range sum {
		parts = append(parts, *p)
	}
	slices.SortFunc(parts, func(a, b part) int {
		return cmp.Or(cmp.Compare(b.Took, a.Took), strings.Compare(a.What, b.What))
	})
	return parts
}

// summary names the n largest parts.
func summary(parts []part, n int) string {
	var s []string
	for _, p := range parts[:min(n, len(parts))] {
		s = append(s, fmt.Sprintf("%s %v", p.What, round(p.Took)))
	}
	return strings.Join(s, "; ")
}
