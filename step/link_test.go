package step

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/topology"
)

// linkScenario has alice's link at 30 ms.
const linkScenario = `
nodes:
  nat:   {kind: nat}
  alice: {kind: host, behind: nat, link: {delay: 30ms}}
steps:
`

func linkSteps(t *testing.T, steps string) []*Link {
	t.Helper()
	topo, err := Parse("link.yaml", []byte(linkScenario+steps))
	if err != nil {
		t.Fatal(err)
	}
	var links []*Link
	for _, s := range topo.Steps {
		links = append(links, s.Spec.(*Link))
	}
	return links
}

func TestLinkRead(t *testing.T) {
	ms := time.Millisecond
	s := linkSteps(t, `
  - link: {node: alice, delay: 100ms, up: {rate: 1mbit}, down: {loss: 1%}}
  - link: {node: alice, down: true}
  - link: {node: nat, clear: true, mtu: 1400, down: false}
`)
	c := s[0].Set.Change
	if *c.Both.Delay != 100*ms || *c.Up.Rate != 1_000_000 || *c.Down.Loss != 1 || s[0].Set.State != nil || s[0].Set.Clear {
		t.Errorf("step 0 reads as %+v", s[0].Set)
	}
	if st := s[1].Set.State; st == nil || *st || !s[1].Set.Change.IsZero() {
		t.Errorf("down: true reads as %+v", s[1].Set)
	}
	if st := s[2].Set.State; st == nil || !*st || !s[2].Set.Clear || s[2].Set.Change.Apply(linkcond.Link{Up: linkcond.Direction{Delay: ms}}) != (linkcond.Link{MTU: 1400}) {
		t.Errorf("clear with mtu and down: false reads as %+v", s[2].Set)
	}
	for i, want := range []string{
		"link alice of alice: delay 100ms; up: rate 1mbit; down: loss 1%",
		"link alice of alice: down",
		"link nat of nat: clear, then delay 0, jitter 0, loss 0%, duplicate 0%, reorder 0%, rate none; mtu 1400; up",
	} {
		if got := "link " + s[i].Node + s[i].Describe(); got != want {
			t.Errorf("step %d: %q, want %q", i, got, want)
		}
	}
}

// A link step is checked over the link as the file and the steps before
// it leave it, each problem at its value.
func TestLinkReadRefuses(t *testing.T) {
	for _, c := range []struct {
		steps, want string
	}{
		{"  - link: {node: alice, loss: 150%}", "link.yaml:6:31: steps[0].link: loss 150% is outside 0-100%"},
		{"  - link: {node: alice, delay: -5ms}", "delay -5ms is negative"},
		{"  - link: {node: alice, delay: 30}", "steps[0].link.delay: 30 has no unit"},
		{"  - link: {node: alice, rate: 10mbps}", "write 10mbit"},
		// Alice's delay is 30 ms: jitter of 40 ms is more.
		{"  - link: {node: alice, jitter: 40ms}", "link.yaml:6:33: steps[0].link: jitter 40ms is more than the delay 30ms"},
		// The first step takes the delay away: the second's jitter has none.
		{"  - link: {node: alice, delay: 0}\n  - link: {node: alice, jitter: 5ms}", "steps[1].link: jitter 5ms is more than the delay 0"},
		{"  - link: {node: alice}", "steps[0].link: nothing to change"},
		{"  - link: {node: alice, down: yes}", "want true (the link goes down), false (it comes up) or the down direction's conditions"},
		{"  - link: {node: alice, up: {mtu: 1400}}", "mtu is the whole link's"},
		{"  - link: {node: internet, delay: 5ms}", "steps[0].link.node"},
		{"  - link: {node: carol, delay: 5ms}", "carol"},
		{"  - link: {delay: 5ms}", "missing node"},
	} {
		_, err := Parse("link.yaml", []byte(linkScenario+c.steps+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", strings.TrimSpace(c.steps), err, c.want)
		}
	}
}

func TestLinkRun(t *testing.T) {
	testutil.CheckRoutines(t)
	env := newLoopEnv(t, "alice", "127.0.0.1")
	d := 100 * time.Millisecond
	res, err := (&Link{Node: "alice", Set: topology.LinkStep{Change: linkcond.Change{Both: linkcond.Setting{Delay: &d}}}}).Run(context.Background(), env)
	if err != nil || !res.Pass || res.Detail != "alice's link: delay 100ms" {
		t.Errorf("delay 100ms: %+v, %v", res, err)
	}
	if env.topo.Node("alice").Link.Down.Delay != d {
		t.Errorf("the link is %v", env.topo.Node("alice").Link)
	}
	down := false
	res, err = (&Link{Node: "alice", Set: topology.LinkStep{State: &down}}).Run(context.Background(), env)
	if err != nil || !res.Pass || !env.linkDown["alice"] || !strings.Contains(res.Detail, "down") {
		t.Errorf("down: %+v, %v", res, err)
	}
	if _, err := (&Link{Node: "bob", Set: topology.LinkStep{State: &down}}).Run(context.Background(), env); err == nil {
		t.Error("a link step on a node that is not there: no error")
	}
}
