package topology

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/nat"
)

// TestStepValues checks the parsed steps themselves, beyond what their
// String shows in the golden files.
func TestStepValues(t *testing.T) {
	topo, err := ParseFile("testdata/valid/steps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	steps := topo.Steps
	step := func(i int, kind StepKind) Step {
		t.Helper()
		if i >= len(steps) || steps[i].Kind != kind {
			t.Fatalf("steps[%d] is not a %s step: %+v", i, kind, steps)
		}
		return steps[i]
	}

	if s := step(0, StepSTUN); s.From != "alice" || s.Server != "stun" || s.Port != 0 || s.Expect != (Expect{Outcome: "ok"}) || s.Name != "stun from alice" {
		t.Errorf("stun with defaults: %+v", s)
	}
	c := step(2, StepSTUN).Expect.Classification
	if c == nil || c.Type != nat.Symmetric || c.Mapping != nat.AddressAndPortDependent || c.Filtering != nat.AddressAndPortDependent ||
		c.Ports != nat.PortRandom || c.Hairpin == nil || *c.Hairpin {
		t.Errorf("classification from type: %+v", c)
	}
	if c := step(3, StepSTUN).Expect.Classification; c == nil || c.Type != "" || c.Mapping != nat.EndpointIndependent || c.Hairpin != nil {
		t.Errorf("classification without type: %+v", c)
	}
	if s := step(5, StepPunch); s.Between != [2]string{"alice", "bob"} || s.Server != "stun" || s.Rendezvous != "stun" || s.Timeout != 5*time.Second || s.Predict {
		t.Errorf("punch with defaults: %+v", s)
	}
	if s := step(6, StepPunch); s.Between != [2]string{"bob", "alice"} || s.Rendezvous != "meet" || s.Timeout != 100*time.Millisecond || !s.Predict || s.Name != "predicted ports" {
		t.Errorf("punch: %+v", s)
	}
	if s := step(9, StepICE); s.Expect.Outcome != "" || s.Timeout != 10*time.Second {
		t.Errorf("ice with defaults: %+v", s)
	}
	if s := step(15, StepSend); s.To != "alice" || s.ToAddr.IsValid() || s.Proto != UDP || s.Port != DefaultSendPort || s.Expect.Outcome != "delivered" {
		t.Errorf("send with defaults: %+v", s)
	}
	if s := step(17, StepSend); s.To != "" || s.ToAddr != netip.MustParseAddrPort("203.0.113.5:25565") || s.Port != 25565 || s.Proto != TCP {
		t.Errorf("send to an address: %+v", s)
	}
	if s := step(22, StepWait); s.Duration != 600*time.Second || s.Name != "wait 10m" {
		t.Errorf("wait in seconds: %+v", s)
	}
	if s := step(24, StepExec); !s.Shell || !slices.Equal(s.Command, []string{"ping -c1 203.0.113.10"}) || s.Timeout != 30*time.Second {
		t.Errorf("exec of a shell command: %+v", s)
	}
	if s := step(25, StepExec); s.Shell || !slices.Equal(s.Command, []string{"nft", "list", "ruleset"}) || s.Node != "nat-a" || s.Expect.Outcome != "fail" {
		t.Errorf("exec of an argv: %+v", s)
	}
	if s := step(26, StepExec); s.Node != Internet || s.Command[0] != "ip -br addr\nip route\n" {
		t.Errorf("exec on the internet: %+v", s)
	}
	for _, s := range steps {
		if n := len([]rune(s.Name)); n == 0 || n > MaxStepNameLen {
			t.Errorf("step %q has a name of %d characters", s.Name, n)
		}
	}

	topo, err = ParseFile("testdata/valid/steps-no-rendezvous.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s := topo.Steps[1]; s.Kind != StepPunch || s.Server != "stun" || s.Rendezvous != "" {
		t.Errorf("punch without a rendezvous server: %+v", s)
	}
}

func TestParseStep(t *testing.T) {
	scenario := []byte(`
nodes:
  stun:  {kind: server, services: [stun]}
  nat:   {kind: nat}
  alice: {kind: host, behind: nat}
  bob:   {kind: host, behind: nat}
`)
	for _, tc := range []struct {
		step string
		want string // the step's name, or the error
	}{
		{`{"send": {"from": "alice", "to": "stun"}}`, "send alice -> stun"},
		{`{punch: {between: [alice, bob]}}`, "punch alice bob"},
		{`{"stun": {"from": "alice"}}`, "stun from alice"},
		{`{"send": {"from": "carol", "to": "stun"}}`, `action:1:19: step.send.from: no node named "carol"; the hosts and servers are alice, bob, stun`},
		{`{"send": {"from": "alice"}}`, "action:1:2: step.send: missing to"},
		{`{"relay": {"between": [alice, bob]}}`, "action:1:2: step.relay: relay needs a server with services: [turn]"},
		{`[1, 2]`, "action:1:1: step: want a step"},
		{`{"send": `, "action:1:"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			s, err := ParseStep("lab.yaml", scenario, "action", []byte(tc.step))
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = s.Name
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("ParseStep(%s) = %q, want it to start %q", tc.step, got, tc.want)
			}
		})
	}
	if _, err := ParseStep("lab.yaml", []byte("nodes: 3"), "action", []byte(`{wait: 1s}`)); err == nil || !strings.HasPrefix(err.Error(), "lab.yaml:1:8:") {
		t.Errorf("a scenario that does not parse: err = %v, want its own position", err)
	}
}
