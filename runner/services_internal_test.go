package runner

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/step"
)

// Which services a failed step names as not running: only those it talks
// to, whose node's process is gone (or is another process now that its
// PID was reused), grouped by node.
func TestServicesDown(t *testing.T) {
	testutil.CheckRoutines(t)
	scenario := []byte(`
name: down
nodes:
  one:   {kind: server, services: [stun, turn, rendezvous]}
  two:   {kind: server, services: [stun, turn]}
  home:  {kind: nat, port-mapping: nat-pmp}
  alice: {kind: host, behind: home}
  bob:   {kind: host}
`)
	topo, err := step.Parse("lab.yaml", scenario)
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	start := ownStartTime(t)
	live := labstate.Process{PID: self, StartTime: start}
	// The same PID, started at another time: the process that had it is
	// gone.
	dead := labstate.Process{PID: self, StartTime: start + 1}
	at := func(p labstate.Process, node string) labstate.Process { p.Node = node; return p }
	for _, tc := range []struct {
		name  string
		procs []labstate.Process
		step  string
		want  string
	}{
		{"all running", []labstate.Process{at(live, "one"), at(live, "two"), at(live, "home")}, `{punch: {between: [alice, bob]}}`, ""},
		{"not recorded", nil, `{stun: {from: alice}}`, ""},
		{"stun", []labstate.Process{at(dead, "one")}, `{stun: {from: alice}}`, "the STUN service on one is not running"},
		{"another server", []labstate.Process{at(dead, "one"), at(live, "two")}, `{stun: {from: alice, server: two}}`, ""},
		{"two servers", []labstate.Process{at(dead, "one"), at(dead, "two")}, `{stun: {from: alice, servers: [one, two]}}`,
			"the STUN service on one is not running; the STUN service on two is not running"},
		{"punch", []labstate.Process{at(dead, "one")}, `{punch: {between: [alice, bob]}}`, "the STUN and rendezvous services on one are not running"},
		{"relay", []labstate.Process{at(dead, "one")}, `{relay: {between: [alice, bob]}}`, "the TURN service on one is not running"},
		{"ice", []labstate.Process{at(live, "one"), at(dead, "two")}, `{ice: {between: [alice, bob]}}`, "the STUN and TURN services on two are not running"},
		{"a send needs none", []labstate.Process{at(dead, "one")}, `{send: {from: alice, to: bob}}`, ""},
		{"portmap", []labstate.Process{at(dead, "home")}, `{portmap: {from: alice, port: 8080}}`, "the NAT-PMP service on home is not running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &labstate.State{Name: "down", Processes: tc.procs}
			s, err := step.ParseOne("lab.yaml", scenario, "step", []byte(tc.step))
			if err != nil {
				t.Fatal(err)
			}
			r := New(st, topo)
			defer r.Close()
			if got := step.ServicesDown(r.Env(), step.UnitOf(*s)); got != tc.want {
				t.Errorf("%s: %q, want %q", tc.step, got, tc.want)
			}
		})
	}
}

// ownStartTime is this process's start time, /proc/self/stat field 22.
func ownStartTime(t *testing.T) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return start
}
