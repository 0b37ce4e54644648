package runner_test

import (
	"testing"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/runner"
)

// Reboot and renumber steps on a running lab: a path a host opened stops
// at the reboot until the host sends out again, and after the renumber
// STUN sees the new address, and the mappings of the old one are gone.
func TestSessionRebootRenumber(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  server: {kind: server, services: [stun]}
  home:   {kind: nat, type: port-restricted-cone, public: 203.0.113.1}
  alice:  {kind: host, behind: home}
`)
	sess := runner.New(l.State, l.Topo)
	defer sess.Close()
	runSteps(t, l, sess, []stepCase{
		{`{stun: {from: alice}}`, "ok", "203.0.113.1:"},
		{`{send: {from: alice, to: server}}`, "delivered", "from 203.0.113.1:5000"},
		{`{send: {from: server, to: "203.0.113.1:5000"}}`, "delivered", "reached alice"},
		{`{reboot: {node: home}}`, "ok", "home rebooted"},
		{`{table: {node: home, expect: {mappings: 0, flows: 0}}}`, "{mappings 0, flows 0}", ""},
		{`{send: {from: server, to: "203.0.113.1:5000", expect: dropped}}`, "dropped", "its wall dropped the packet"},
		{`{send: {from: alice, to: server}}`, "delivered", "from 203.0.113.1:5000"},
		{`{send: {from: server, to: "203.0.113.1:5000"}}`, "delivered", "reached alice"},
		{`{renumber: {node: home, public: 203.0.113.77}}`, "ok", "home's public address is 203.0.113.77, was 203.0.113.1"},
		// The mapping alice's port 5000 had is not carried over.
		{`{send: {from: server, to: "203.0.113.77:5000", expect: dropped}}`, "dropped", "its wall dropped the packet"},
		{`{stun: {from: alice}}`, "ok", "203.0.113.77:"},
		{`{send: {from: alice, to: server, seen-as: 203.0.113.77}}`, "delivered", "from 203.0.113.77:5000"},
		{`{send: {from: server, to: "203.0.113.77:5000"}}`, "delivered", "reached alice"},
	})
}

// A move step: the host goes out through the other NAT, and the one it
// left holds nothing of it.
func TestSessionMove(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  server: {kind: server, services: [stun]}
  home:   {kind: nat, type: port-restricted-cone, public: 203.0.113.1}
  cell:   {kind: nat, type: symmetric, public: 203.0.113.2, lan: 10.20.0.0/24}
  alice:  {kind: host, behind: home}
`)
	sess := runner.New(l.State, l.Topo)
	defer sess.Close()
	runSteps(t, l, sess, []stepCase{
		{`{send: {from: alice, to: server, seen-as: home}}`, "delivered", "from 203.0.113.1:5000"},
		{`{move: {node: alice, behind: cell}}`, "ok", "alice left home (192.168.1.2) and is behind cell at 10.20.0.2"},
		{`{table: {node: home, expect: {mappings: 0, flows: 0}}}`, "{mappings 0, flows 0}", ""},
		{`{send: {from: alice, to: server, seen-as: cell}}`, "delivered", "from 203.0.113.2:"},
		{`{stun: {from: alice}}`, "ok", "alice 10.20.0.2:"},
	})
}
