package ui

import (
	"encoding/json"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/topology"
)

// TestViewNamesEveryKnob checks that the page's state shows every knob of
// topology.NATKnobs of a nat as a scenario file writes it, which is what
// natlab status --json shows too (cli's TestStatusNamesEveryKnob).
func TestViewNamesEveryKnob(t *testing.T) {
	testutil.CheckRoutines(t)
	topo, err := topology.Parse("knobs.yaml", []byte(`
nodes:
  cgn: {kind: nat, mapping: address-dependent, ports: sequential, port-range: 20000-20999, hairpin: false, timeout: 24h}
  home: {kind: nat, type: symmetric, behind: cgn, forward: [{proto: tcp, port: 80, to: alice}]}
  alice: {kind: host, behind: home}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(newStateView(&labstate.State{Name: "knobs"}, topo, nil))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Nodes []struct {
			Name string
			NAT  map[string]any
		}
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	for _, n := range v.Nodes {
		node := topo.Node(n.Name)
		if node.NAT == nil {
			continue
		}
		for i := range topology.NATKnobs {
			k := &topology.NATKnobs[i]
			if got, ok := n.NAT[k.JSONKey()]; !ok || got != k.Value(node.NAT.Behaviour) {
				t.Errorf("%s: %s is %#v, want %#v", n.Name, k.JSONKey(), got, k.Value(node.NAT.Behaviour))
			}
		}
		for _, key := range []string{"type", "lan", "gateway"} {
			if _, ok := n.NAT[key]; !ok {
				t.Errorf("%s: no %s in %v", n.Name, key, n.NAT)
			}
		}
	}
	// The timeout as a file writes it (it was 1d) and the port range,
	// which the page did not have.
	if cgn := v.Nodes[0].NAT; cgn["timeout"] != "24h" || cgn["port_range"] != "20000-20999" || cgn["type"] != "" {
		t.Errorf("cgn: %v", cgn)
	}
	if home := v.Nodes[1].NAT; home["type"] != "symmetric" || len(home["forwards"].([]any)) != 1 {
		t.Errorf("home: %v", home)
	}
}
