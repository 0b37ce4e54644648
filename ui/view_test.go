package ui

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
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

// TestViewShowsLinks checks that the page's state has each node's link
// conditions as linkcond.NewView makes them, which natlab status --json
// shows too (cli's TestStatusShowsLinks and TestStatusAndPageAgree), and
// no link for a perfect wire.
// TestViewShowsFirewall checks that the page's state says which hosts
// have a firewall of their own, as natlab status --json does.
func TestViewShowsFirewall(t *testing.T) {
	topo, err := topology.Parse("fw.yaml", []byte("nodes:\n  vps: {kind: host, firewall: stateful}\n  open: {kind: host}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(newStateView(&labstate.State{Name: "fw"}, topo, nil))
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Nodes []map[string]any }
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Nodes) != 2 || v.Nodes[0]["firewall"] != "stateful" || v.Nodes[1]["firewall"] != nil {
		t.Errorf("the page's nodes: %v; want vps with firewall stateful and open without", v.Nodes)
	}
}

func TestViewShowsLinks(t *testing.T) {
	testutil.CheckRoutines(t)
	topo, err := topology.Parse("links.yaml", []byte(linksScenario), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(newStateView(&labstate.State{Name: "links"}, topo, nil))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Nodes []struct {
			Name string
			Link json.RawMessage
		}
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Nodes) != len(topo.Nodes) {
		t.Fatalf("%d nodes in the state, %d in the lab", len(v.Nodes), len(topo.Nodes))
	}
	for _, n := range v.Nodes {
		l := topo.Node(n.Name).Link
		if l.IsZero() {
			if n.Link != nil {
				t.Errorf("%s: a perfect wire shown as %s", n.Name, n.Link)
			}
			continue
		}
		want, _ := json.Marshal(linkcond.NewView(l))
		if string(n.Link) != string(want) {
			t.Errorf("%s: link %s, want %s", n.Name, n.Link, want)
		}
	}
}

// linksScenario has links with conditions on a node of each kind, and a
// host without.
const linksScenario = `
nodes:
  srv:   {kind: server, link: {mtu: 1400}}
  home:  {kind: nat, link: {delay: 10ms, up: {rate: 1mbit}, down: {rate: 20mbit}}}
  alice: {kind: host, behind: home, link: {delay: 30ms, jitter: 5ms, loss: 1%, duplicate: 0.1%, reorder: 1%, rate: 10mbit}}
  bob:   {kind: host, behind: home}
`

// TestViewChoicesForEvents checks what the page's network forms offer:
// every node for a link step, a free address of each NAT's own uplink to
// renumber it to (the CGN's LAN for a NAT behind one), and a link taken
// down marked so.
func TestViewChoicesForEvents(t *testing.T) {
	testutil.CheckRoutines(t)
	topo, err := topology.Parse("events.yaml", []byte(`
nodes:
  cgn:   {kind: nat, public: 203.0.113.1, lan: 100.64.0.0/24}
  home:  {kind: nat, behind: cgn, public: 100.64.0.2}
  other: {kind: nat, behind: cgn}
  cafe:  {kind: nat, public: 203.0.113.2}
  srv:   {kind: server, addresses: [203.0.113.3]}
  alice: {kind: host, behind: home}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &labstate.State{Name: "events", Links: map[string]labstate.LinkState{"alice": {Down: true}}}
	v := newStateView(st, topo, nil)
	if got := strings.Join(v.Choices.Links, " "); got != "cgn home other cafe srv alice" {
		t.Errorf("link step nodes: %s", got)
	}
	for nat, want := range map[string]string{"cgn": "203.0.113.4", "cafe": "203.0.113.4", "home": "100.64.0.4", "other": "100.64.0.4"} {
		if got := v.Choices.Publics[nat]; got != want {
			t.Errorf("the page offers to renumber %s to %q, want %s", nat, got, want)
			continue
		}
		if msg := topo.AddressProblem(topo.Node(nat), netip.MustParseAddr(v.Choices.Publics[nat])); msg != "" {
			t.Errorf("the address offered to %s is refused: %s", nat, msg)
		}
	}
	for _, n := range v.Nodes {
		if n.LinkDown != (n.Name == "alice") {
			t.Errorf("%s: link_down %v", n.Name, n.LinkDown)
		}
	}
}

// The page's NATs say how a pool is shared and what port blocks a
// carrier-grade NAT gives; other NATs say neither.
func TestViewShowsPoolingAndPortBlocks(t *testing.T) {
	topo, err := topology.Parse("p.yaml", []byte(`nodes:
  isp:    {kind: nat, public: [203.0.113.1, 203.0.113.2]}
  mobile: {kind: nat, port-range: 40000-40007, port-block: 2}
  home:   {kind: nat}
  phone:  {kind: host, behind: mobile}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(newStateView(&labstate.State{Name: "p"}, topo, nil))
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
	got := map[string][2]any{}
	for _, n := range v.Nodes {
		if n.NAT != nil {
			got[n.Name] = [2]any{n.NAT["pooling"], n.NAT["port_blocks"]}
		}
	}
	want := map[string][2]any{"isp": {"paired", nil}, "mobile": {nil, "port blocks of 2, ICMP when exhausted"}, "home": {nil, nil}}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: pooling and port blocks %v, want %v", name, got[name], w)
		}
	}
}
