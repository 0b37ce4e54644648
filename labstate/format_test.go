package labstate

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/nat"
)

// recordV1 is a record as natlab has written them (format 1) since lab
// records began, with a NAT switched by natlab ui: the records of labs
// that are up when natlab is upgraded.
const recordV1 = `{
  "version": 1,
  "name": "home",
  "id": "0123456789ab",
  "source": "builtin:home",
  "scenario": "bm9kZXM6IHt9Cg==",
  "created": "2026-12-03T10:00:00Z",
  "complete": true,
  "namespaces": [{"name": "natlab-home-nat", "node": "nat"}],
  "processes": [{"pid": 42, "node": "stun", "what": "services", "start_time": 12345}],
  "nat_changes": {
    "nat": {
      "type": "symmetric",
      "behaviour": {"Mapping": "address-and-port-dependent", "Filtering": "address-and-port-dependent",
        "Ports": "random", "PortRange": {"First": 1024, "Last": 65535}, "Hairpin": true, "Timeout": 120000000000}
    }
  }
}`

func TestDecodeVersion1(t *testing.T) {
	s, err := decode([]byte(recordV1))
	if err != nil {
		t.Fatal(err)
	}
	want := NATChange{Type: nat.Symmetric, Behaviour: nat.Behaviour{
		Mapping: nat.AddressAndPortDependent, Filtering: nat.AddressAndPortDependent, Ports: nat.PortRandom,
		PortRange: nat.DefaultPortRange, Hairpin: true,
		// Format 1 held UDP's timeout alone and had no refresh knob:
		// the others read as the defaults, every NAT refreshed both ways.
		Timeout: nat.UDPOnly(2 * time.Minute), Refresh: nat.RefreshBoth}}
	switch {
	case s.Version != 1 || s.Name != "home" || s.ID != "0123456789ab" || s.Source != "builtin:home" || !s.Complete:
		t.Errorf("record reads as %+v", s)
	case string(s.Scenario) != "nodes: {}\n" || !s.Created.Equal(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)):
		t.Errorf("scenario %q, created %v", s.Scenario, s.Created)
	case len(s.Namespaces) != 1 || s.Namespaces[0] != (Namespace{Name: "natlab-home-nat", Node: "nat"}):
		t.Errorf("namespaces %+v", s.Namespaces)
	case len(s.Processes) != 1 || s.Processes[0] != (Process{PID: 42, Node: "stun", What: "services", StartTime: 12345}):
		t.Errorf("processes %+v", s.Processes)
	case s.NATChanges["nat"] != want:
		t.Errorf("NAT change %+v, want %+v", s.NATChanges["nat"], want)
	}
}

// TestEncodeDecode checks that what Save writes (json.MarshalIndent of
// the State) reads back, NAT changes included.
func TestEncodeDecode(t *testing.T) {
	s, err := decode([]byte(recordV1))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	back, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.NATChanges["nat"] != s.NATChanges["nat"] || back.Processes[0] != s.Processes[0] || back.ID != s.ID {
		t.Errorf("record does not survive a round trip:\n%s", data)
	}
}

// recordV2 is a record of format 2: a lab whose links natlab shaped, one
// of them since taken down, by the delay line.
const recordV2 = `{
  "version": 2,
  "name": "home",
  "id": "0123456789ab",
  "source": "builtin:home",
  "scenario": "bm9kZXM6IHt9Cg==",
  "created": "2026-12-03T10:00:00Z",
  "complete": true,
  "namespaces": [{"name": "natlab-home-nat", "node": "nat"}],
  "processes": [{"pid": 43, "node": "", "what": "delay line", "start_time": 12346}],
  "links": {
    "alice": {"link": {"up": {"delay_ns": 30000000, "loss": 1, "rate_bps": 1000000}, "down": {"delay_ns": 30000000, "jitter_ns": 5000000, "duplicate": 0.5, "reorder": 2}, "mtu": 1400}, "mac": "02:00:00:00:00:01"},
    "bob": {"link": {"up": {}, "down": {}}, "down": true}
  },
  "link_mechanism": "delay-line"
}`

func TestDecodeVersion2(t *testing.T) {
	s, err := decode([]byte(recordV2))
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := LinkState{Link: linkcond.Link{
		Up:   linkcond.Direction{Delay: 30 * ms, Loss: 1, Rate: 1_000_000},
		Down: linkcond.Direction{Delay: 30 * ms, Jitter: 5 * ms, Duplicate: 0.5, Reorder: 2},
		MTU:  1400,
	}} // the "mac" it records, which the delay line no longer needs, is ignored
	if got := s.Links["alice"]; got != want {
		t.Errorf("alice's link reads as %+v, want %+v", got, want)
	}
	if got := s.Links["bob"]; got != (LinkState{Down: true}) {
		t.Errorf("bob's link reads as %+v, want down", got)
	}
	if s.LinkMechanism != "delay-line" || s.Processes[0].What != "delay line" {
		t.Errorf("mechanism %q, process %+v", s.LinkMechanism, s.Processes[0])
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	back, err := decode(data)
	if err != nil || back.Links["alice"] != want || back.Links["bob"] != s.Links["bob"] || back.LinkMechanism != s.LinkMechanism {
		t.Errorf("links do not survive a round trip (%v):\n%s", err, data)
	}
}

// recordV3 is a record of format 3: a NAT switched to one-to-one on the
// running lab (the page's switch), whose knobs are a full cone's.
const recordV3 = `{
  "version": 3,
  "name": "cloud",
  "id": "0123456789ab",
  "source": "cloud.yaml",
  "scenario": "bm9kZXM6CiAgbmF0OiB7a2luZDogbmF0fQogIHZtOiB7a2luZDogaG9zdCwgYmVoaW5kOiBuYXR9Cg==",
  "created": "2026-12-04T10:00:00Z",
  "complete": true,
  "namespaces": [{"name": "natlab-cloud-nat", "node": "nat"}],
  "nat_changes": {
    "nat": {
      "type": "one-to-one",
      "behaviour": {"Mapping": "endpoint-independent", "Filtering": "endpoint-independent",
        "Ports": "preserve", "PortRange": {"First": 1024, "Last": 65535}, "Hairpin": true, "Timeout": 120000000000}
    }
  }
}`

func TestDecodeVersion3(t *testing.T) {
	s, err := decode([]byte(recordV3))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := s.Topology()
	if err != nil {
		t.Fatal(err)
	}
	n := topo.Node("nat")
	if n.NAT.Type != nat.OneToOne || n.NAT.Behaviour.Filtering != nat.EndpointIndependent {
		t.Errorf("the switched NAT reads as %s, %v; want one-to-one", n.NAT.Type, n.NAT.Behaviour)
	}
	if host, msg := topo.OneToOneHost(n); host == nil || host.Name != "vm" {
		t.Errorf("its host: %v, %q; want vm", host, msg)
	}
}

func TestDecodeRefusesOtherVersions(t *testing.T) {
	tests := []struct {
		name, record, want string
	}{
		{"newer", `{"version": 5, "name": "home", "nat_changes": {"nat": {"behaviour": {"mapping": "x"}}}}`, "format 5, from a newer natlab; this natlab reads formats 1-4"},
		{"missing", `{"name": "home", "namespaces": []}`, "has none"},
		{"zero", `{"version": 0, "name": "home"}`, "format 0"},
		{"negative", `{"version": -1, "name": "home"}`, "format -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.record))
			if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decode = %v, want ErrVersion saying %q", err, tt.want)
			}
			// natlab down removes a lab whose record is unreadable by
			// its markers; this one must be removable too.
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%v is no ErrCorrupt", err)
			}
		})
	}
}

func TestDecodeCorrupt(t *testing.T) {
	for _, record := range []string{`{not json`, `{"version": "1"}`, `{"version": 1, "namespaces": {}}`} {
		if _, err := decode([]byte(record)); !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrVersion) {
			t.Errorf("decode(%s) = %v, want ErrCorrupt", record, err)
		}
	}
}

// A record's public addresses and moves, as renumber and move write them,
// survive a round trip, and Topology puts each node where they say.
func TestEventsRecorded(t *testing.T) {
	s := &State{Version: FormatVersion, Name: "ev", Scenario: []byte(`nodes:
  home:  {kind: nat, public: 203.0.113.1}
  cell:  {kind: nat, lan: 10.20.0.0/24}
  alice: {kind: host, behind: home}
`),
		Publics: map[string]netip.Addr{"home": netip.MustParseAddr("203.0.113.77")},
		Moves:   map[string]Move{"alice": {Behind: "cell", Address: netip.MustParseAddr("10.20.0.2")}}}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "address6") {
		t.Errorf("a move without IPv6 writes an IPv6 address:\n%s", data)
	}
	back, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := back.Topology()
	if err != nil {
		t.Fatal(err)
	}
	home, alice := topo.Node("home"), topo.Node("alice")
	if home.Addresses[0] != netip.MustParseAddr("203.0.113.77") || alice.Behind != "cell" || alice.Addresses[0] != netip.MustParseAddr("10.20.0.2") || len(alice.Addresses6) != 0 {
		t.Errorf("the recorded topology has home at %v and alice behind %s at %v %v:\n%s", home.Addresses, alice.Behind, alice.Addresses, alice.Addresses6, data)
	}
}
