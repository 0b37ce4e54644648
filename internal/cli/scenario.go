package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/internal/suggest"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/scenarios"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

// scenario is a parsed scenario file and where it came from.
type scenario struct {
	topo   *topology.Topology
	data   []byte
	source string // a path, or builtin:NAME
	// notes are lines the command prints on stderr before it goes on:
	// how natlab read what it was given (a built-in scenario for a file
	// that is not there, a LAN with host bits at FILE:LINE:COL).
	notes []string
}

// errNoScenario is loadScenario's error when arg names nothing.
var errNoScenario = errors.New("no such file, and no built-in scenario of that name")

// loadScenario reads arg as a file if one exists at that path, otherwise
// as the name of a built-in scenario. A path that is not there, or a
// directory, whose base name (without .yaml) is a built-in scenario is
// read as that built-in, and a note says so: people are told
// "natlab up scenarios/symmetric.yaml" and type it far from a checkout.
func loadScenario(arg string) (*scenario, error) {
	fi, err := os.Stat(arg)
	builtin := builtinFor(arg)
	switch {
	case errors.Is(err, os.ErrNotExist) && builtin == arg:
		return loadBuiltin(arg)
	case errors.Is(err, os.ErrNotExist) && builtin != "":
		return loadBuiltin(builtin, fmt.Sprintf("natlab: %s: no such file; using the built-in scenario %s", arg, builtin))
	case errors.Is(err, os.ErrNotExist):
		msg := ""
		if sug := suggest.Closest(arg, scenarios.Names()); sug != "" && !strings.Contains(arg, "/") {
			msg = "; did you mean " + sug + "?"
		}
		return nil, &exitError{exitUsage, fmt.Errorf("%s: %w%s (natlab list shows them)", arg, errNoScenario, msg)}
	case err == nil && fi.IsDir() && builtin != "":
		return loadBuiltin(builtin, fmt.Sprintf("natlab: %s is a directory, not a scenario file; using the built-in scenario %s", arg, builtin))
	}
	// Whatever is at the path, topology reads it or says clearly why not
	// (a directory, a FIFO, too large, not readable).
	data, err := topology.ReadFile(arg)
	if err != nil {
		return nil, err
	}
	topo, err := step.Parse(arg, data)
	if err != nil {
		return nil, err
	}
	return withWarnings(&scenario{topo: topo, data: data, source: arg}), nil
}

// builtinFor is the built-in scenario arg's base name, without .yaml or
// .yml, names, or "".
func builtinFor(arg string) string {
	base := filepath.Base(arg)
	for _, ext := range []string{".yaml", ".yml"} {
		base = strings.TrimSuffix(base, ext)
	}
	if _, _, ok := scenarios.Read(base); ok && base != "." && base != ".." {
		return base
	}
	return ""
}

func loadBuiltin(name string, notes ...string) (*scenario, error) {
	data, path, ok := scenarios.Read(name)
	if !ok {
		return nil, usageError("%s: %w (natlab list shows them)", name, errNoScenario)
	}
	topo, err := step.Parse(path, data)
	if err != nil {
		return nil, err
	}
	return withWarnings(&scenario{topo: topo, data: data, source: "builtin:" + name, notes: notes}), nil
}

func withWarnings(sc *scenario) *scenario {
	for _, w := range sc.topo.Warnings {
		sc.notes = append(sc.notes, w.Error())
	}
	return sc
}

// tell prints the scenario's notes, one line each.
func (sc *scenario) tell(w io.Writer) {
	for _, n := range sc.notes {
		fmt.Fprintln(w, n)
	}
}

// renamed returns topo under another lab name.
func renamed(topo *topology.Topology, name string) *topology.Topology {
	t := *topo
	t.Name = name
	return &t
}

// labOrFile is the topology a LAB|FILE|NAME argument names: the recorded
// one of a lab that is up, else the scenario the argument names. An
// argument that cannot be a lab name (a path, say) is never looked up as
// a lab.
func labOrFile(cmd *cobra.Command, arg string) (*topology.Topology, error) {
	if topology.CheckLabName(arg) == nil {
		_, err := labstate.Load(arg)
		if err == nil {
			_, topo, err := runningLab(arg)
			return topo, err
		}
		if !errors.Is(err, labstate.ErrNotFound) {
			return nil, err
		}
	}
	sc, err := loadScenario(arg)
	if err != nil {
		return nil, orLab(err, arg)
	}
	sc.tell(cmd.ErrOrStderr())
	return sc.topo, nil
}

// runningLab reads a lab's record and its topology.
func runningLab(name string) (*labstate.State, *topology.Topology, error) {
	st, err := labstate.Load(name)
	if errors.Is(err, labstate.ErrNotFound) {
		// The message is natlab's own; ErrNotFound stays in the chain for
		// callers that must tell "gone" from "broken".
		return nil, nil, &exitError{exitUsage, notUpError{name, suggestLab(name), err}}
	}
	if err != nil {
		return nil, nil, err
	}
	topo, err := st.Topology()
	return st, topo, err
}

type notUpError struct {
	name string
	near string // a lab that is up, which name may be a typo of
	err  error
}

func (e notUpError) Error() string {
	if e.near != "" {
		return fmt.Sprintf("lab %s is not up; did you mean %s? (natlab status lists the labs that are)", e.name, e.near)
	}
	return fmt.Sprintf("lab %s is not up (natlab status lists the labs that are)", e.name)
}

func (e notUpError) Unwrap() error { return e.err }

// suggestLab is the lab that is up which name, of a lab that is not, is
// probably a typo of, or "". Every command that takes a lab name says it
// through here. Names that differ only in digits and hyphens (lab1 and
// lab2, a second tour's tour-1-address-problem-2) are other labs, not
// typos.
func suggestLab(name string) string {
	labs, err := labstate.Names()
	if err != nil {
		return ""
	}
	letters := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '-' || '0' <= r && r <= '9' {
				return -1
			}
			return r
		}, s)
	}
	var near []string
	for _, l := range labs {
		if letters(l) != letters(name) {
			near = append(near, l)
		}
	}
	return suggest.Closest(name, near)
}

// orLab adds to loadScenario's error for arg, in a command that also
// takes a running lab (LAB|FILE|NAME), the lab that is up arg is
// probably a typo of.
func orLab(err error, arg string) error {
	if !errors.Is(err, errNoScenario) {
		return err
	}
	if near := suggestLab(arg); near != "" {
		return usageError("%s: no lab of that name is up, and %w; did you mean %s?", arg, errNoScenario, near)
	}
	return err
}

func cutBuiltin(source string) (string, bool) { return strings.CutPrefix(source, "builtin:") }
