package tour

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/scenarios"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

// maxLabName is how long a tour's lab name may be.
const maxLabName = 32

// Load is a built-in scenario's topology and its file, as an act shows it.
func Load(scenario string) (*topology.Topology, []byte, error) {
	data, path, ok := scenarios.Read(scenario)
	if !ok {
		return nil, nil, fmt.Errorf("tour: no built-in scenario %s", scenario)
	}
	topo, err := step.Parse(path, data)
	if err != nil {
		return nil, nil, err
	}
	return topo, data, nil
}

// Prefix begins the names of the tour's labs.
const Prefix = "tour-"

// LabName is the name an act's lab is brought up under first: prefix
// and the scenario's name without "act", as tour-1-address-problem, a
// name a class can read and type.
func LabName(prefix, scenario string) string {
	name := prefix + strings.TrimPrefix(scenario, "act")
	return name[:min(len(name), maxLabName)]
}

// Up brings a scenario's lab up for the tour under LabName(prefix,
// scenario), or, if another tour on this machine has that lab up, under
// the first free one of base-2 ... base-9. It returns the lab and its
// topology, named as the lab is. A bring-up stopped by ctx removes what
// it built.
func Up(ctx context.Context, prefix, scenario string, topo *topology.Topology, data []byte) (*labstate.State, *topology.Topology, error) {
	base := LabName(prefix, scenario)
	var err error
	for i := 1; i <= 9; i++ {
		name := base
		if i > 1 {
			suffix := fmt.Sprintf("-%d", i)
			name = base[:min(len(base), maxLabName-len(suffix))] + suffix
		}
		named := *topo
		named.Name = name
		var st *labstate.State
		st, err = lab.Up(ctx, &named, lab.Options{Source: "builtin:" + scenario, Scenario: data})
		if err == nil {
			return st, &named, nil
		}
		if !errors.Is(err, lab.ErrExists) && !errors.Is(err, labstate.ErrBusy) {
			return nil, nil, err
		}
	}
	return nil, nil, err
}
