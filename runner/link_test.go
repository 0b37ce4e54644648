package runner_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
)

// A script's link steps change the running lab: a link that is down drops
// a send, one brought up again carries it, and a delay set by a step
// shows in the session's topology.
func TestLinkSteps(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  server: {kind: server}
  home:   {kind: nat}
  alice:  {kind: host, behind: home, link: {delay: 5ms}}
steps:
  - send: {from: alice, to: server}
  - link: {node: alice, down: true}
  - send: {from: alice, to: server, expect: dropped}
  - link: {node: alice, down: false, delay: 20ms, loss: 0%}
  - send: {from: alice, to: server}
`)
	topo, err := step.Parse(l.State.ScenarioFile(), l.State.Scenario)
	if err != nil {
		t.Fatal(err)
	}
	topo.Name = l.Name
	rep, err := runner.Run(context.Background(), l.State, topo, runner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Steps {
		if !s.Pass {
			t.Errorf("%s: expected %s, observed %s (%s; %s)", s.Name, s.Expect, s.Observed, s.Detail, s.Reason)
		}
	}
	if d := topo.Node("alice").Link.Up.Delay; d != 20*time.Millisecond {
		t.Errorf("after the link step, the session's topology has alice's delay %v", d)
	}
	if len(rep.Steps) != 5 || !strings.Contains(rep.Steps[3].Detail, "delay 20ms") {
		t.Errorf("the link step says %q", rep.Steps[3].Detail)
	}
}
