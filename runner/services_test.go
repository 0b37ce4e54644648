package runner_test

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
)

// A step that fails because a service it needed died says so, naming the
// service and its node, besides what the step itself saw.
func TestStepsSayWhichServiceIsDown(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  srv:   {kind: server, services: [stun, turn, rendezvous, tunnel]}
  nat-a: {kind: nat, type: port-restricted-cone, port-mapping: nat-pmp}
  nat-b: {kind: nat, type: port-restricted-cone}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host, behind: nat-b}
`)
	for _, p := range l.State.Processes {
		if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
			t.Fatalf("kill the services of %s (pid %d): %v", p.Node, p.PID, err)
		}
		for deadline := time.Now().Add(5 * time.Second); lab.ProcessAlive(p.PID, p.StartTime); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the services of %s (pid %d) still run after SIGKILL", p.Node, p.PID)
			}
		}
	}
	sess := runner.New(l.State, l.Topo)
	defer sess.Close()
	steps := []struct{ step, want string }{
		{`{stun: {from: alice}}`, "the STUN service on srv is not running"},
		{`{stun: {from: alice, expect: {type: port-restricted-cone}}}`, "the STUN service on srv is not running"},
		{`{punch: {between: [alice, bob], timeout: 1s}}`, "the STUN and rendezvous services on srv are not running"},
		{`{relay: {between: [alice, bob], timeout: 1s}}`, "the TURN service on srv is not running"},
		{`{ice: {between: [alice, bob], timeout: 1s}}`, "the STUN and TURN services on srv are not running"},
		{`{upgrade: {between: [alice, bob], timeout: 1s}}`, "the STUN and TURN services on srv are not running"},
		{`{tunnel: {from: alice, port: 8080}}`, "the tunnel service on srv is not running"},
		{`{portmap: {from: alice, port: 8080}}`, "the NAT-PMP service on nat-a is not running"},
	}
	// Each waits out its timeout: all at once.
	var wg sync.WaitGroup
	for _, tc := range steps {
		one, err := step.ParseOne(l.State.ScenarioFile(), l.State.Scenario, "step", []byte(tc.step))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			res := sess.Step(context.Background(), *one)
			if res.Pass || !strings.Contains(res.Reason, tc.want) {
				t.Errorf("%s: pass=%v, reason %q; want a failure saying %q", tc.step, res.Pass, res.Reason, tc.want)
			}
		})
	}
	wg.Wait()
}
