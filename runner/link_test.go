package runner_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
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
	topo, rep := runScript(t, l)
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

// A send with a count measures the path: through two links of 25ms each
// (alice's and the server's), a round trip takes 100ms; with 10% loss on
// alice's link, a probe is lost one way 10% of the time and a round trip
// 19% of the time (1 - 0.9²), within binomial bounds.
func TestSendCountMeasuresLinks(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	const n = 300
	l := labtest.Up(t, `
nodes:
  server: {kind: server, link: {delay: 25ms}}
  home:   {kind: nat}
  alice:  {kind: host, behind: home, link: {delay: 25ms}}
steps:
  - send: {from: alice, to: server, count: 50}
  - link: {node: alice, loss: 10%}
  - send: {from: alice, to: server, count: 300}
`)
	watch := testutil.WatchLateness(t)
	_, rep := runScript(t, l)
	if len(rep.Steps) != 3 {
		t.Fatalf("%d steps ran", len(rep.Steps))
	}
	clean, lossy := rep.Steps[0], rep.Steps[2]
	if !clean.Pass || clean.Probes == nil || clean.RTT == nil {
		t.Fatalf("send over clean links: %+v", clean)
	}
	if p := *clean.Probes; p.Sent != 50 || p.Answered != 50 {
		t.Errorf("over links without loss, %v", clean.Probes)
	}
	// Four holds and two receivers woken per round trip, each of which
	// a busy or emulated machine makes late, as late as it was while the
	// steps ran (testutil.LatenessWatch), and now and then by far more:
	// in make vm-test's emulated machine the median of 50 round trips
	// was 112 ms, the quickest 103 ms and the slowest 215 ms, while its
	// sleepers woke 1.3 ms late. The links' delay is what the round trip
	// that nothing else held took, the quickest, which no lateness of the
	// machine's makes quicker: it may not be quicker than the links allow
	// either.
	late, timed := watch.Late(t), testutil.Timed(t)
	slack := 3*time.Millisecond + 6*late
	linked := func(what string, rtt *step.RTT) {
		t.Helper()
		if timed && !testutil.LateDelay(rtt.Min, 100*time.Millisecond, 3*time.Millisecond, 6, late) {
			t.Errorf("%s: the quickest round trip through two 25ms links took %v, want 100ms -3ms to +%v (%v)", what, rtt.Min, slack, rtt)
		}
	}
	linked("over clean links", clean.RTT)
	if !lossy.Pass || lossy.Probes == nil || lossy.RTT == nil {
		t.Fatalf("send over a lossy link: %+v", lossy)
	}
	// Four standard deviations either side of the mean: n·p ± 4·√(n·p·(1-p)).
	within := func(what string, got int, p float64) {
		mean, sd := n*p, math.Sqrt(n*p*(1-p))
		if float64(got) < mean-4*sd || float64(got) > mean+4*sd {
			t.Errorf("%s: %d of %d, want %.0f ± %.0f", what, got, n, mean, 4*sd)
		}
	}
	p := lossy.Probes
	if p.Sent != n {
		t.Errorf("sent %d, want %d", p.Sent, n)
	}
	within("lost one way", p.Sent-p.Delivered, 0.1)
	within("round trips lost", p.Lost(), 0.19)
	linked("with loss", lossy.RTT)
	t.Logf("clean: %s; lossy: %s", clean.Measured(), lossy.Measured())
	if !strings.Contains(lossy.Measured(), "300 sent") {
		t.Errorf("measured %q", lossy.Measured())
	}
}

// runScript runs the steps of the scenario l was brought up with, and
// returns the session's topology and the report.
func runScript(t *testing.T, l *labtest.Lab) (*topology.Topology, *runner.Report) {
	t.Helper()
	topo, err := step.Parse(l.State.ScenarioFile(), l.State.Scenario)
	if err != nil {
		t.Fatal(err)
	}
	topo.Name = l.Name
	rep, err := runner.Run(context.Background(), l.State, topo, runner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return topo, rep
}
