package runner_test

import (
	"context"
	"testing"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
)

const knockLab = `
nodes:
  server:   {kind: server}
  stranger: {kind: host}
  home:     {kind: nat, type: port-restricted-cone, public: 203.0.113.1}
  alice:    {kind: host, behind: home}
steps:
  - send: {from: alice, to: server}
`

// Steps given to a session one at a time, as natlab ui gives them: a knock
// on a NAT's public port reaches whoever holds it in the NAT's table, if
// the filtering lets the knocker in, and meets the wall otherwise.
func TestSessionKnocks(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	l := labtest.Up(t, knockLab)
	sess := runner.New(l.State, l.Topo)
	defer sess.Close()
	runSteps(t, l, sess, []stepCase{
		{`{send: {from: server, to: "203.0.113.1:5000"}}`, "dropped", "no row of home's table holds that public port, and its wall dropped the packet"},
		{`{send: {from: alice, to: server}}`, "delivered", "reached server, from 203.0.113.1:5000"},
		{`{send: {from: server, to: "203.0.113.1:5000"}}`, "delivered", "reached alice, from 203.0.113."},
		{`{send: {from: stranger, to: "203.0.113.1:5000", expect: dropped}}`, "dropped", "nothing reached alice"},
		{`{send: {from: server, to: "203.0.113.1:5001", expect: dropped}}`, "dropped", "its wall dropped the packet"},
		{`{send: {from: server, to: "203.0.113.1:5001", proto: tcp, expect: dropped}}`, "dropped", "its wall dropped the packet"},
	})
}

// stepCase is a step given to a session as natlab ui gives one, what it
// must observe, and what its detail must hold.
type stepCase struct {
	step     string
	observed string
	detail   string
}

// runSteps gives the session each step in turn and checks what it saw.
func runSteps(t *testing.T, l *labtest.Lab, sess *runner.Session, cases []stepCase) {
	t.Helper()
	for _, tc := range cases {
		one, err := step.ParseOne(l.State.ScenarioFile(), l.State.Scenario, "action", []byte(tc.step))
		if err != nil {
			t.Fatal(err)
		}
		res := sess.Step(context.Background(), *one)
		if res.Observed != tc.observed || !contains(res.Detail, tc.detail) {
			t.Errorf("%s: observed %q (%s; %s), want %q with %q", tc.step, res.Observed, res.Detail, res.Reason, tc.observed, tc.detail)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
