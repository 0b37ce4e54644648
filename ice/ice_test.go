package ice_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/natlab/natlab/ice"
	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/nodenet"
	"github.com/natlab/natlab/service"
)

func agent(t *testing.T, l *labtest.Lab, name string) ice.Agent {
	n, err := nodenet.Open(l.Namespace(name), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	pn, err := n.PionNet()
	if err != nil {
		t.Fatal(err)
	}
	return ice.Agent{Name: name, Net: pn}
}

func servers(l *labtest.Lab) []ice.Server {
	plan := service.PlanFor(l.Topo.Node("servers"))
	cred := l.State.TURN
	return []ice.Server{
		{Addr: plan.STUNServer()},
		{TURN: true, Addr: plan.TURN, User: cred.User, Password: cred.Password},
	}
}

// The ladder: host on one LAN, reflexive across punchable NATs, relay
// where punching fails.
func TestLadder(t *testing.T) {
	testutil.CheckRoutines(t)
	for _, tc := range []struct {
		name, scenario string
		want           []ice.Rung
	}{
		{"one LAN", `
nodes:
  servers: {kind: server, services: [stun, turn]}
  home:    {kind: nat, type: symmetric}
  alice:   {kind: host, behind: home}
  bob:     {kind: host, behind: home}
`, []ice.Rung{ice.Host}},
		{"cone NATs", twoHomes("full-cone", "port-restricted-cone"), []ice.Rung{ice.Srflx, ice.Prflx}},
		{"symmetric vs full cone", twoHomes("symmetric", "full-cone"), []ice.Rung{ice.Srflx, ice.Prflx}},
		{"symmetric vs port-restricted", twoHomes("symmetric", "port-restricted-cone"), []ice.Rung{ice.Relay}},
		{"symmetric vs symmetric", twoHomes("symmetric", "symmetric"), []ice.Rung{ice.Relay}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, tc.scenario)
			res, err := ice.Connect(context.Background(), ice.Config{Servers: servers(l), Timeout: 8 * time.Second}, agent(t, l, "alice"), agent(t, l, "bob"))
			if err != nil {
				t.Fatal(err)
			}
			ok := false
			for _, w := range tc.want {
				ok = ok || res.Rung == w
			}
			if !ok {
				t.Errorf("selected %s (%+v <-> %+v), want %v; gathered %v", res.Rung, res.Local, res.Remote, tc.want, res.Gathered)
			}
			t.Logf("%s: %s %+v <-> %+v in %v", tc.name, res.Rung, res.Local, res.Remote, res.Connected)
			if res.Gathered[0]["host"] == 0 || res.Gathered[0]["relay"] == 0 {
				t.Errorf("alice gathered %v, want host and relay candidates", res.Gathered[0])
			}
		})
	}
}

func twoHomes(a, b string) string {
	return fmt.Sprintf(`
nodes:
  servers: {kind: server, services: [stun, turn]}
  nat-a:   {kind: nat, type: %s}
  nat-b:   {kind: nat, type: %s}
  alice:   {kind: host, behind: nat-a}
  bob:     {kind: host, behind: nat-b}
`, a, b)
}
