package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/scenarios"
	"github.com/natlab/natlab/topology"
)

// scenario is a parsed scenario file and where it came from.
type scenario struct {
	topo   *topology.Topology
	data   []byte
	source string // a path, or builtin:NAME
}

// loadScenario reads arg as a file if one exists at that path, otherwise
// as the name of a built-in scenario.
func loadScenario(arg string) (*scenario, error) {
	if _, err := os.Stat(arg); errors.Is(err, os.ErrNotExist) {
		data, path, ok := scenarios.Read(arg)
		if !ok {
			return nil, usageError("%s: no such file, and no built-in scenario of that name (natlab list shows them)", arg)
		}
		topo, err := topology.Parse(path, data)
		if err != nil {
			return nil, err
		}
		return &scenario{topo, data, "builtin:" + arg}, nil
	}
	// Whatever is at the path, topology reads it or says clearly why not
	// (a directory, a FIFO, too large, not readable).
	data, err := topology.ReadFile(arg)
	if err != nil {
		return nil, err
	}
	topo, err := topology.Parse(arg, data)
	if err != nil {
		return nil, err
	}
	return &scenario{topo, data, arg}, nil
}

// renamed returns topo under another lab name.
func renamed(topo *topology.Topology, name string) *topology.Topology {
	t := *topo
	t.Name = name
	return &t
}

// runningLab reads a lab's record and its topology.
func runningLab(name string) (*labstate.State, *topology.Topology, error) {
	st, err := labstate.Load(name)
	if errors.Is(err, labstate.ErrNotFound) {
		// The message is natlab's own; ErrNotFound stays in the chain for
		// callers that must tell "gone" from "broken".
		return nil, nil, &exitError{exitUsage, notUpError{name, err}}
	}
	if err != nil {
		return nil, nil, err
	}
	topo, err := st.Topology()
	return st, topo, err
}

type notUpError struct {
	name string
	err  error
}

func (e notUpError) Error() string {
	return fmt.Sprintf("lab %s is not up (natlab status lists the labs that are)", e.name)
}

func (e notUpError) Unwrap() error { return e.err }

func cutBuiltin(source string) (string, bool) { return strings.CutPrefix(source, "builtin:") }
