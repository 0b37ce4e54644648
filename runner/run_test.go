package runner

import (
	"context"
	"errors"
	"testing"

	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

// A run stopped while Started waits (the tour's "[Enter: ...]" prompt,
// at which Ctrl-C comes) ends without starting the step.
func TestRunStoppedWhileStartedWaits(t *testing.T) {
	topo, err := step.Parse("stopped.yaml", []byte(`nodes:
  home: {kind: nat, type: full-cone}
  alice: {kind: host, behind: home}
steps:
  - wait: 1ms
  - wait: 1ms
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := Run(ctx, &labstate.State{Name: topo.Name}, topo, Options{
		Started:  func(int, topology.Step) { cancel() },
		Finished: func(r step.Result) { t.Errorf("step %s ran after the run was stopped: %s", r.Name, r.Observed) },
	})
	if !errors.Is(err, context.Canceled) || len(rep.Steps) != 0 {
		t.Errorf("Run stopped in Started: %v, %d steps; want context.Canceled and none", err, len(rep.Steps))
	}
}
