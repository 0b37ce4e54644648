package cli

import (
	"strings"
	"testing"

	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/step"
)

// status and up say where every service a server runs listens: derp and
// tunnel too, in the node list and in status --json.
func TestEveryServiceIsShown(t *testing.T) {
	topo, err := step.Parse("relays.yaml", []byte(`
nodes:
  relay: {kind: server, addresses: [203.0.113.10], services: [stun, turn, rendezvous, derp, tunnel]}
`))
	if err != nil {
		t.Fatal(err)
	}
	relay := topo.Node("relay")
	summary := serviceSummary(relay)
	for _, want := range []string{"stun 203.0.113.10:3478", "turn 203.0.113.10:3478", "rendezvous http://", "derp http://203.0.113.10:80/derp", "tunnel 203.0.113.10:4443"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the services of %s are %q; want %q in it", relay.Name, summary, want)
		}
	}
	l := describeLab(&labstate.State{Name: "relays", Complete: true}, topo, nil)
	for _, s := range l.Nodes[0].Services {
		if s.Address == "" {
			t.Errorf("status --json: service %s has no address", s.Name)
		}
	}
}
