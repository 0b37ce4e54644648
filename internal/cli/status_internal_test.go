package cli

import (
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// natKnobsScenario has a nat whose every knob is off its default.
const natKnobsScenario = `
nodes:
  cgn: {kind: nat, mapping: address-dependent, filtering: endpoint-independent, ports: sequential,
        port-range: 20000-20999, hairpin: false, timeout: {udp: 1h30m, icmp: 30s}, refresh: outbound,
        forward: [{proto: udp, port: 5000, to: alice}]}
  alice: {kind: host, behind: cgn}
`

// TestStatusNamesEveryKnob checks that status --json shows every knob of
// topology.NATKnobs as a scenario file writes it (the page shows the
// same, see ui's TestViewNamesEveryKnob), between type and lan.
func TestStatusNamesEveryKnob(t *testing.T) {
	topo, err := topology.Parse("knobs.yaml", []byte(natKnobsScenario), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := describeLab(&labstate.State{Name: "knobs", Complete: true}, topo, nil)
	data, err := json.Marshal(l.Nodes[0].NAT)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	b := topo.Node("cgn").NAT.Behaviour
	for i := range topology.NATKnobs {
		k := &topology.NATKnobs[i]
		// A value is compared as JSON reads it: a timeout by protocol
		// is an object.
		var want any
		wantJSON, _ := json.Marshal(k.Value(b))
		json.Unmarshal(wantJSON, &want)
		if v, ok := got[k.JSONKey()]; !ok || !reflect.DeepEqual(v, want) {
			t.Errorf("status --json: %s is %#v, want %#v", k.JSONKey(), v, want)
		}
	}
	// What was there before the knobs came from NATKnobs, with the
	// timeout as a file writes it (it was 1h30m0s), every protocol's
	// where one is not the default.
	want := `{"mapping":"address-dependent","filtering":"endpoint-independent","ports":"sequential","port_range":"20000-20999",` +
		`"hairpin":false,"timeout":{"udp":"1h30m","tcp-established":"2h4m","tcp-transitory":"4m","icmp":"30s"},"refresh":"outbound","lan":"192.168.1.0/24","gateway":"192.168.1.1","forwards":[{"proto":"udp","port":5000,"to":"192.168.1.2:5000"}]}`
	if string(data) != want {
		t.Errorf("status --json's nat:\n%s\nwant\n%s", data, want)
	}
}

// TestStatusOneToOne checks that status --json names a one-to-one NAT's
// host, whose private address owns its public address.
func TestStatusOneToOne(t *testing.T) {
	topo, err := topology.Parse("cloud.yaml", []byte("nodes:\n  cloud: {kind: nat, type: one-to-one}\n  vm: {kind: host, behind: cloud}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := describeLab(&labstate.State{Name: "cloud", Complete: true}, topo, nil)
	data, err := json.Marshal(l.Nodes[0].NAT)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"type":"one-to-one",`; !strings.Contains(string(data), want) {
		t.Errorf("status --json's nat: %s; want %s in it", data, want)
	}
	if want := `"one_to_one":{"host":"vm","private":"192.168.1.2"}`; !strings.Contains(string(data), want) {
		t.Errorf("status --json's nat: %s; want %s in it", data, want)
	}
	// It has no port allocation, port range, mapping timeout or refresh
	// of its own: status shows none of them, and its hairpin, which it
	// has.
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ports", "port_range", "timeout", "refresh"} {
		if v, ok := got[key]; ok {
			t.Errorf("status --json shows a one-to-one NAT's %s, %v, which it does not have", key, v)
		}
	}
	for _, key := range []string{"mapping", "filtering", "hairpin"} {
		if _, ok := got[key]; !ok {
			t.Errorf("status --json leaves out a one-to-one NAT's %s", key)
		}
	}
	var text strings.Builder
	printNodes(&text, topo)
	if line := strings.Split(text.String(), "\n")[1]; strings.Contains(line, "timeout") || strings.Contains(line, "ports ") {
		t.Errorf("status shows a one-to-one NAT's ports or timeout: %s", line)
	}
}

// TestStatusShowsFirewall checks that status, in JSON and in text, says
// which hosts have a firewall of their own, and says nothing of one for
// a host without.
func TestStatusShowsFirewall(t *testing.T) {
	topo, err := topology.Parse("fw.yaml", []byte("nodes:\n  vps: {kind: host, firewall: stateful}\n  open: {kind: host}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := describeLab(&labstate.State{Name: "fw", Complete: true}, topo, nil)
	for i, want := range []string{`"firewall":"stateful"`, ""} {
		data, err := json.Marshal(l.Nodes[i])
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(data), `"firewall"`); got != (want != "") || !strings.Contains(string(data), want) {
			t.Errorf("status --json's %s: %s; want firewall %q", l.Nodes[i].Name, data, want)
		}
	}
	var text strings.Builder
	printNodes(&text, topo)
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if !strings.Contains(lines[1], "firewall stateful") || strings.Contains(lines[2], "firewall") {
		t.Errorf("status's nodes:\n%s\nwant firewall stateful on vps's line only", text.String())
	}
}

// TestStatusPool checks that status --json and natlab table name a
// pooled NAT's pooling, and its addresses, and say nothing of pooling for
// a NAT with one address.
func TestStatusPool(t *testing.T) {
	topo, err := topology.Parse("pool.yaml", []byte(`
nodes:
  isp: {kind: nat, public: [203.0.113.1, 203.0.113.2], pooling: arbitrary}
  home: {kind: nat, public: 203.0.113.3}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := describeLab(&labstate.State{Name: "pool", Complete: true}, topo, nil)
	isp, _ := json.Marshal(l.Nodes[0])
	if want := `"addresses":["203.0.113.1","203.0.113.2"]`; !strings.Contains(string(isp), want) {
		t.Errorf("status --json's isp: %s; want %s in it", isp, want)
	}
	if want := `"pooling":"arbitrary"`; !strings.Contains(string(isp), want) {
		t.Errorf("status --json's isp: %s; want %s in it", isp, want)
	}
	if home, _ := json.Marshal(l.Nodes[1]); strings.Contains(string(home), "pooling") {
		t.Errorf("status --json's home, with one address: %s; want no pooling", home)
	}
	for node, want := range map[string]string{"isp": "203.0.113.1 203.0.113.2, pooling arbitrary", "home": "203.0.113.3"} {
		if got := publicOf(topo.Node(node)); got != want {
			t.Errorf("natlab table's %s: %q, want %q", node, got, want)
		}
	}
}

// TestServes checks that a service counts as running only while its
// process listens on its sockets.
func TestServes(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback: %v", err)
	}
	at := l.Addr().(*net.TCPAddr).AddrPort()
	plan := service.Plan{Rendezvous: at, Tunnel: netip.AddrPortFrom(at.Addr(), 1)}
	if !serves(os.Getpid(), plan, topology.ServiceRendezvous) {
		t.Errorf("rendezvous on %v: not serving while it listens", at)
	}
	if serves(os.Getpid(), plan, topology.ServiceTunnel) {
		t.Errorf("tunnel on port 1: serving although nothing listens there")
	}
	if serves(os.Getpid(), plan, topology.ServiceSTUN) {
		t.Errorf("stun without a STUN endpoint: serving")
	}
	l.Close()
	if serves(os.Getpid(), plan, topology.ServiceRendezvous) {
		t.Errorf("rendezvous on %v: serving after its listener closed", at)
	}
}

// linksScenario has links with conditions on a node of each kind, and a
// host without.
const linksScenario = `
nodes:
  srv:   {kind: server, link: {mtu: 1400}}
  home:  {kind: nat, link: {delay: 10ms, up: {rate: 1mbit}, down: {rate: 20mbit}}}
  alice: {kind: host, behind: home, link: {delay: 30ms, jitter: 5ms, loss: 1%, rate: 10mbit}}
  bob:   {kind: host, behind: home}
`

// TestStatusShowsLinks checks that status --json has each node's link
// conditions as linkcond.NewView makes them (the page's state has the
// same, see ui's TestViewShowsLinks), no link for a perfect wire, and that
// status's text shows them in a column of their own.
func TestStatusShowsLinks(t *testing.T) {
	topo, err := topology.Parse("links.yaml", []byte(linksScenario), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := describeLab(&labstate.State{Name: "links", Complete: true}, topo, nil)
	for _, n := range l.Nodes {
		data, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Link json.RawMessage }
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		link := topo.Node(n.Name).Link
		if link.IsZero() {
			if got.Link != nil {
				t.Errorf("%s: a perfect wire shown as %s", n.Name, got.Link)
			}
			continue
		}
		want, _ := json.Marshal(linkcond.NewView(link))
		if string(got.Link) != string(want) {
			t.Errorf("%s: link %s, want %s", n.Name, got.Link, want)
		}
	}
	// The example of the issue, exactly.
	data, _ := json.Marshal(l.Nodes[2].Link)
	if want := `{"up":{"delay":"30ms","jitter":"5ms","loss":1,"rate":"10mbit"},"down":{"delay":"30ms","jitter":"5ms","loss":1,"rate":"10mbit"},"text":"delay 30ms, jitter 5ms, loss 1%, rate 10mbit"}`; string(data) != want {
		t.Errorf("alice's link in status --json:\n%s\nwant\n%s", data, want)
	}

	var text strings.Builder
	printNodes(&text, topo)
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if !strings.Contains(lines[0], "LINK") {
		t.Errorf("no LINK column in\n%s", text.String())
	}
	for i, want := range []string{"mtu 1400", "up: delay 10ms, rate 1mbit; down: delay 10ms, rate 20mbit", "delay 30ms, jitter 5ms, loss 1%, rate 10mbit", "  -"} {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("status line of %s is %q, without %q", topo.Nodes[i].Name, lines[i+1], want)
		}
	}
	// A lab without conditions has no LINK column.
	plain, err := topology.Parse("plain.yaml", []byte("nodes:\n  a: {kind: host}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	text.Reset()
	printNodes(&text, plain)
	if strings.Contains(text.String(), "LINK") {
		t.Errorf("a LINK column for a lab without link conditions:\n%s", text.String())
	}
}

// TestStatusShowsMechanism checks that status says how the links are
// shaped, whether the delay line runs, and which links are down, in text
// and in JSON.
func TestStatusShowsMechanism(t *testing.T) {
	topo, err := topology.Parse("links.yaml", []byte(linksScenario), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &labstate.State{Name: "links", Complete: true, LinkMechanism: "delay-line",
		Links: map[string]labstate.LinkState{"alice": {Link: topo.Node("alice").Link, Down: true}}}
	l := describeLab(st, topo, nil)
	var out strings.Builder
	printLinks(&out, l)
	for _, want := range []string{
		"links: shaped by natlab's delay line (this kernel has no netem); not running",
		"link of alice: DOWN, it drops everything (natlab link links alice --up)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status says\n%s\nwant a line with %q", out.String(), want)
		}
	}
	if strings.Contains(out.String(), "home: DOWN") {
		t.Errorf("status has a link down that is not:\n%s", out.String())
	}
	data, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"link_mechanism":"delay-line"`, `"link_down":true`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("status --json:\n%s\nwant %s", data, want)
		}
	}
	if strings.Count(string(data), `"link_down"`) != 1 {
		t.Errorf("status --json has link_down on links that are up:\n%s", data)
	}
}

// On a lab that came up with the flowtable, status names the NATs that
// offload their established flows and says why the others do not, in
// text and in JSON, in one line.
func TestStatusShowsOffload(t *testing.T) {
	topo, err := topology.Parse("offload.yaml", []byte(`
nodes:
  fast:  {kind: nat, type: full-cone}
  short: {kind: nat, type: full-cone, timeout: 5s}
  alice: {kind: host, behind: fast}
  bob:   {kind: host, behind: short}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &labstate.State{Name: "offload", Complete: true, Flowtable: true}
	l := describeLab(st, topo, nil)
	if l.Flowtable != flowtablePresent {
		t.Fatalf("flowtable %q, want %q", l.Flowtable, flowtablePresent)
	}
	var out strings.Builder
	printFlowtable(&out, l)
	for _, want := range []string{
		"fast path: the kernel's nftables flowtable; fast offloads established flows",
		"; short does not: UDP timeout 5s",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status says\n%s\nwant %q", out.String(), want)
		}
	}
	if strings.Count(out.String(), "\n") != 1 {
		t.Errorf("status gives the fast path more than one line:\n%s", out.String())
	}
	data, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"flowtable":"present"`, `"offloaded":true`, `"not_offloaded":"UDP timeout 5s`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("status --json:\n%s\nwant %s", data, want)
		}
	}
}
