package step

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

// nth returns step i of steps as a *T, failing the test if it is not.
func nth[T any](t *testing.T, steps []topology.Step, i int) *T {
	t.Helper()
	if i >= len(steps) {
		t.Fatalf("no steps[%d]: %d steps", i, len(steps))
	}
	u, ok := any(steps[i].Spec).(*T)
	if !ok {
		t.Fatalf("steps[%d] is a %T, not a %T", i, steps[i].Spec, u)
	}
	return u
}

func parseTestFile(t *testing.T, name string) *topology.Topology {
	t.Helper()
	topo, err := ParseFile("../topology/testdata/valid/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestStepValues checks the parsed steps themselves, beyond what their
// String shows in the golden files.
func TestStepValues(t *testing.T) {
	topo := parseTestFile(t, "steps.yaml")
	steps := topo.Steps
	if s := nth[STUN](t, steps, 0); s.From != "alice" || s.Server != "stun" || s.Port != 0 || s.Expect != "ok" || s.Classification != nil || steps[0].Name != "stun from alice" {
		t.Errorf("stun with defaults: %+v", s)
	}
	c := nth[STUN](t, steps, 2).Classification
	if c == nil || c.Type != nat.Symmetric || c.Mapping != nat.AddressAndPortDependent || c.Filtering != nat.AddressAndPortDependent ||
		c.Ports != nat.PortRandom || c.Hairpin == nil || *c.Hairpin {
		t.Errorf("classification from type: %+v", c)
	}
	if c := nth[STUN](t, steps, 3).Classification; c == nil || c.Type != "" || c.Mapping != nat.EndpointIndependent || c.Hairpin != nil {
		t.Errorf("classification without type: %+v", c)
	}
	if s := nth[Punch](t, steps, 5); s.Between != [2]string{"alice", "bob"} || s.Server != "stun" || s.Rendezvous != "stun" || s.Timeout != 5*time.Second || s.Predict || s.Announce != AnnounceAll {
		t.Errorf("punch with defaults: %+v", s)
	}
	if s := nth[Punch](t, steps, 6); s.Between != [2]string{"bob", "alice"} || s.Rendezvous != "meet" || s.Timeout != 100*time.Millisecond || !s.Predict || s.Announce != AnnouncePublic || steps[6].Name != "predicted ports" {
		t.Errorf("punch: %+v", s)
	}
	if s := nth[ICE](t, steps, 9); s.Expect != "" || s.Timeout != 10*time.Second {
		t.Errorf("ice with defaults: %+v", s)
	}
	if s := nth[Send](t, steps, 15); s.To != "alice" || s.ToAddr.IsValid() || s.Proto != topology.UDP || s.Port != topology.DefaultSendPort || s.Expect != "delivered" {
		t.Errorf("send with defaults: %+v", s)
	}
	if s := nth[Send](t, steps, 17); s.To != "" || s.ToAddr != netip.MustParseAddrPort("203.0.113.5:25565") || s.Port != 25565 || s.Proto != topology.TCP {
		t.Errorf("send to an address: %+v", s)
	}
	if s := nth[Wait](t, steps, 22); s.Duration != 600*time.Second || steps[22].Name != "wait 10m" {
		t.Errorf("wait in seconds: %+v", s)
	}
	if s := nth[Exec](t, steps, 24); !s.Shell || !slices.Equal(s.Command, []string{"ping -c1 203.0.113.10"}) || s.Timeout != 30*time.Second {
		t.Errorf("exec of a shell command: %+v", s)
	}
	if s := nth[Exec](t, steps, 25); s.Shell || !slices.Equal(s.Command, []string{"nft", "list", "ruleset"}) || s.Node != "nat-a" || s.Expect != "fail" {
		t.Errorf("exec of an argv: %+v", s)
	}
	if s := nth[Exec](t, steps, 26); s.Node != topology.Internet || s.Command[0] != "ip -br addr\nip route\n" {
		t.Errorf("exec on the internet: %+v", s)
	}
	for _, s := range steps {
		if n := len([]rune(s.Name)); n == 0 || n > topology.MaxStepNameLen {
			t.Errorf("step %q has a name of %d characters", s.Name, n)
		}
	}
	topo = parseTestFile(t, "steps-no-rendezvous.yaml")
	if s := nth[Punch](t, topo.Steps, 1); s.Server != "stun" || s.Rendezvous != "" {
		t.Errorf("punch without a rendezvous server: %+v", s)
	}
}

// TestActsValues checks the steps of acts.yaml.
func TestActsValues(t *testing.T) {
	steps := parseTestFile(t, "acts.yaml").Steps
	if s := nth[STUN](t, steps, 0); s.Server != "" || !slices.Equal(s.Servers, []string{"stun1", "stun2"}) || s.Expect != "ok" || steps[0].Name != "stun from alice to stun1, stun2" {
		t.Errorf("stun with servers: %+v", s)
	}
	if s := nth[STUN](t, steps, 2); s.Port != 4000 || s.Expect != "different" {
		t.Errorf("stun with servers and every field: %+v", s)
	}
	if s := nth[Send](t, steps, 4); s.SeenAs != "home" || s.SeenAsAddr != netip.MustParseAddrPort("203.0.113.50:0") || s.Family != topology.FamilyIPv4 {
		t.Errorf("send seen as a node: %+v", s)
	}
	if s := nth[Send](t, steps, 5); s.SeenAs != "" || s.SeenAsAddr != netip.MustParseAddrPort("203.0.113.8:0") {
		t.Errorf("send seen as an address: %+v", s)
	}
	if s := nth[Send](t, steps, 6); s.SeenAsAddr != netip.MustParseAddrPort("203.0.113.50:4000") {
		t.Errorf("send seen as an address and port: %+v", s)
	}
	if s := nth[Send](t, steps, 8); s.SeenAs != "" || s.SeenAsAddr.IsValid() {
		t.Errorf("send without seen-as: %+v", s)
	}
	if s := nth[Punch](t, steps, 9); !s.Explain || s.Family != topology.FamilyIPv4 {
		t.Errorf("punch with explain: %+v", s)
	}
	if s := nth[Punch](t, steps, 10); s.Explain || !s.Predict {
		t.Errorf("punch with explain: false: %+v", s)
	}
	if s := nth[Table](t, steps, 11); s.Node != "home" || s.Expect.Mappings != nil || s.Expect.Flows != nil || steps[11].Name != "table home" {
		t.Errorf("table without expect: %+v", s)
	}
	if s := nth[Table](t, steps, 12); s.Expect.Mappings == nil || *s.Expect.Mappings != 2 || s.Expect.Flows != nil {
		t.Errorf("table expecting mappings: %+v", s.Expect)
	}
	if s := nth[Table](t, steps, 13); s.Expect.Mappings == nil || *s.Expect.Mappings != 65535 || s.Expect.Flows == nil || *s.Expect.Flows != 0 {
		t.Errorf("table expecting both: %+v", s.Expect)
	}
	if s := nth[Upgrade](t, steps, 14); s.Server != "relay" || s.STUN != "stun1" || s.Timeout != 10*time.Second || s.Expect != "direct" || steps[14].Name != "upgrade alice bob" {
		t.Errorf("upgrade with defaults: %+v", s)
	}
	if s := nth[Upgrade](t, steps, 15); s.Server != "relay2" || s.Timeout != 100*time.Millisecond || s.Expect != "relay" {
		t.Errorf("upgrade: %+v", s)
	}
	if s := nth[Portmap](t, steps, 16); s.From != "alice" || s.Proto != topology.TCP || s.Port != 8080 || s.PublicPort != 8080 || s.Lifetime != DefaultPortmapLifetime || s.Expect != "ok" {
		t.Errorf("portmap with defaults: %+v", s)
	}
	if s := nth[Portmap](t, steps, 17); s.Proto != topology.UDP || s.PublicPort != 1 || s.Lifetime != time.Second || s.Expect != "fail" {
		t.Errorf("portmap: %+v", s)
	}
	if s := nth[Portmap](t, steps, 19); s.Lifetime != 90*time.Second {
		t.Errorf("portmap lifetime in seconds: %+v", s)
	}
	if s := nth[Portmap](t, steps, 16); s.Protocol != topology.PortMappingNATPMP {
		t.Errorf("portmap by default asks by the nat's only protocol: %+v", s)
	}
	if s := nth[Portmap](t, steps, 20); s.Protocol != topology.PortMappingNATPMP {
		t.Errorf("portmap by nat-pmp: %+v", s)
	}
	if s := nth[Portmap](t, steps, 21); s.From != "carol" || s.Protocol != topology.PortMappingPCP {
		t.Errorf("portmap by default asks by the first protocol the nat speaks, pcp before upnp: %+v", s)
	}
	if s := nth[Portmap](t, steps, 22); s.Protocol != topology.PortMappingUPnP {
		t.Errorf("portmap by upnp: %+v", s)
	}
	if s := nth[Tunnel](t, steps, 23); s.From != "bob" || s.Server != "relay2" || s.Port != 8080 || s.PublicPort != 0 || s.Expect != "ok" {
		t.Errorf("tunnel with defaults: %+v", s)
	}
	if s := nth[Tunnel](t, steps, 24); s.Server != "tun" || s.PublicPort != 1024 || s.Expect != "fail" {
		t.Errorf("tunnel: %+v", s)
	}
}

// TestDualStackSteps checks the steps of dual-stack.yaml.
func TestDualStackSteps(t *testing.T) {
	steps := parseTestFile(t, "dual-stack.yaml").Steps
	addr := netip.MustParseAddr
	if s := nth[Send](t, steps, 0); s.Family != topology.FamilyIPv6 || s.To != "alice" || s.ToAddr.IsValid() {
		t.Errorf("send over IPv6 to a node: %+v", s)
	}
	if s := nth[Send](t, steps, 1); s.ToAddr != netip.MustParseAddrPort("[2001:db8:0:2::b0b]:8080") || s.Port != 8080 {
		t.Errorf("send over IPv6 to an address: %+v", s)
	}
	if s := nth[Send](t, steps, 2); s.SeenAs != "alice" || s.SeenAsAddr != netip.AddrPortFrom(addr("2001:db8:0:3::2"), 0) {
		t.Errorf("send over IPv6 seen as a node: %+v", s)
	}
	if s := nth[Send](t, steps, 4); s.SeenAs != "" || s.SeenAsAddr != netip.MustParseAddrPort("[2001:db8:0:2::b0b]:5000") {
		t.Errorf("send over IPv6 seen as an address and port: %+v", s)
	}
	if s := nth[Send](t, steps, 5); s.Family != topology.FamilyIPv4 || s.SeenAsAddr != netip.MustParseAddrPort("203.0.113.4:0") {
		t.Errorf("send over IPv4 seen as a node: %+v", s)
	}
	if s := nth[Punch](t, steps, 7); s.Family != topology.FamilyIPv6 || steps[7].Name != "punch ipv6 alice bob" {
		t.Errorf("punch over IPv6: %+v", s)
	}
	nth[STUN](t, steps, 9)
}

func TestParseOne(t *testing.T) {
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
		{`{"send": {"from": "alice", "to": "stun", "count": 50}}`, "send alice -> stun"},
		{`{"send": {"from": "alice", "to": "stun", "count": 0}}`, "action:1:51: step.send.count: 0 is out of range; want 1 to 10000"},
		{`{"send": {"from": "alice", "to": "stun", "count": many}}`, "action:1:51: step.send.count: want a number from 1 to 10000"},
		{`{"send": {"from": "alice", "to": "stun", "proto": tcp, "count": 5}}`, "action:1:65: step.send.count: a count of messages is for udp"},
		{`{"relay": {"between": [alice, bob]}}`, "action:1:2: step.relay: relay needs a server with services: [turn]"},
		{`[1, 2]`, "action:1:1: step: want a step"},
		{`{"send": `, "action:1:"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			s, err := ParseOne("lab.yaml", scenario, "action", []byte(tc.step))
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = s.Name
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("ParseOne(%s) = %q, want it to start %q", tc.step, got, tc.want)
			}
		})
	}
	if _, err := ParseOne("lab.yaml", []byte("nodes: 3"), "action", []byte(`{wait: 1s}`)); err == nil || !strings.HasPrefix(err.Error(), "lab.yaml:1:8:") {
		t.Errorf("a scenario that does not parse: err = %v, want its own position", err)
	}
}

// count: is read into the send, and its line says so.
func TestSendCount(t *testing.T) {
	scenario := []byte("nodes:\n  stun: {kind: server}\n  alice: {kind: host}\n")
	st, err := ParseOne("lab.yaml", scenario, "action", []byte(`{send: {from: alice, to: stun, count: 50}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := UnitOf(*st).(*Send)
	if s.Count != 50 || !strings.HasSuffix(s.Describe(), ", 50 messages answered, expect delivered") {
		t.Errorf("count %d, line %q", s.Count, s.Describe())
	}
	st, err = ParseOne("lab.yaml", scenario, "action", []byte(`{send: {from: alice, to: stun}}`))
	if err != nil || UnitOf(*st).(*Send).Count != 0 || strings.Contains(UnitOf(*st).(*Send).Describe(), "answered") {
		t.Errorf("a send without count: %+v, %v", st, err)
	}
}
