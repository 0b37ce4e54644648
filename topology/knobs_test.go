package topology

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/nat"
)

// TestKnobsCoverBehaviour checks that every field of nat.Behaviour is set
// by exactly one knob of NATKnobs, of the field's type: a field added to
// nat.Behaviour without a knob, which no file could set and no view would
// show, fails here.
func TestKnobsCoverBehaviour(t *testing.T) {
	bt := reflect.TypeFor[nat.Behaviour]()
	setBy := make(map[string][]string)
	for i := range NATKnobs {
		k := &NATKnobs[i]
		var b nat.Behaviour
		k.set(&b, k.def(nat.Symmetric))
		changed := 0
		for j := range bt.NumField() {
			f := bt.Field(j)
			if !reflect.ValueOf(b).Field(j).IsZero() {
				changed++
				setBy[f.Name] = append(setBy[f.Name], k.Key)
				if f.Type != k.Field() {
					t.Errorf("%s sets %s, a %s, but its field type is %s", k.Key, f.Name, f.Type, k.Field())
				}
			}
		}
		if changed != 1 {
			t.Errorf("%s sets %d fields of nat.Behaviour, want 1", k.Key, changed)
		}
	}
	for j := range bt.NumField() {
		if f := bt.Field(j); len(setBy[f.Name]) != 1 {
			t.Errorf("nat.Behaviour.%s is set by the knobs %v, want exactly one", f.Name, setBy[f.Name])
		}
	}
}

// TestKnobsInTheFormat checks that NATNode has the keys of NATKnobs, in
// order, right after type, and that each knob's words are what the parser
// accepts.
func TestKnobsInTheFormat(t *testing.T) {
	keys := formatKeys[NATNode]()
	at := slices.Index(keys, "type")
	var knobKeys []string
	for _, k := range NATKnobs {
		knobKeys = append(knobKeys, k.Key)
		if NATKnobNamed(k.Key) == nil || NATKnobNamed(k.Key).Key != k.Key {
			t.Errorf("NATKnobNamed(%q) does not find it", k.Key)
		}
	}
	if at < 0 || !slices.Equal(keys[at+1:at+1+len(knobKeys)], knobKeys) {
		t.Errorf("NATNode's keys are %v, want the knobs %v after type", keys, knobKeys)
	}
	if NATKnobNamed("lan") != nil {
		t.Error("lan is a knob")
	}
}

// TestKnobValues checks each knob's value as a file writes it: parsing
// it back gives the behaviour again, and the JSON views' form of it.
func TestKnobValues(t *testing.T) {
	b := nat.Behaviour{Mapping: nat.AddressDependent, Filtering: nat.EndpointIndependent, Ports: nat.PortSequential,
		PortRange: nat.PortRange{First: 20000, Last: 20999}, Hairpin: false, Timeout: nat.UDPOnly(90 * time.Second), Refresh: nat.RefreshOutbound}
	want := map[string]any{"mapping": "address-dependent", "filtering": "endpoint-independent", "ports": "sequential",
		"port-range": "20000-20999", "hairpin": false, "timeout": "1m30s", "refresh": "outbound"}
	node := map[string]any{"kind": "nat"}
	for i := range NATKnobs {
		k := &NATKnobs[i]
		got := k.Value(b)
		if got != want[k.Key] {
			t.Errorf("%s: Value = %#v, want %#v", k.Key, got, want[k.Key])
		}
		node[k.Key] = got
	}
	data, err := json.Marshal(map[string]any{"nodes": map[string]any{"n": node}})
	if err != nil {
		t.Fatal(err)
	}
	topo, err := Parse("knobs.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Node("n").NAT.Behaviour; got != b {
		t.Errorf("the values written back parse as %+v, want %+v", got, b)
	}
	if len(want) != len(NATKnobs) {
		t.Errorf("the test knows %d knobs, NATKnobs has %d", len(want), len(NATKnobs))
	}

	obj, err := NATJSON(struct {
		Type string `json:"type"`
	}{"x"}, "", b, struct {
		LAN string `json:"lan"`
	}{"192.168.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"type":"x","mapping":"address-dependent","filtering":"endpoint-independent","ports":"sequential",` +
		`"port_range":"20000-20999","hairpin":false,"timeout":"1m30s","refresh":"outbound","lan":"192.168.1.0/24"}`
	if string(obj) != wantJSON {
		t.Errorf("NATJSON =\n%s\nwant\n%s", obj, wantJSON)
	}
	if obj, err := NATJSON(struct{}{}, "", b, struct{}{}); err != nil || !json.Valid(obj) || !strings.HasPrefix(string(obj), `{"mapping":`) {
		t.Errorf("NATJSON with empty objects around = %s, %v", obj, err)
	}
	if _, err := NATJSON(1, "", b, nil); err == nil {
		t.Error("NATJSON takes a number for an object")
	}
	// A one-to-one nat shows only the knobs it takes.
	obj, err = NATJSON(struct{}{}, nat.OneToOne, b, struct{}{})
	if want := `{"mapping":"address-dependent","filtering":"endpoint-independent","hairpin":false}`; err != nil || string(obj) != want {
		t.Errorf("NATJSON of a one-to-one nat = %s, %v; want %s", obj, err, want)
	}
}

// TestKnobDefaults checks what each knob is when a file leaves it out,
// for each classic type, against the Default the reference prints.
func TestKnobDefaults(t *testing.T) {
	for _, typ := range nat.Types {
		data := fmt.Appendf(nil, "nodes: {n: {kind: nat, type: %s}}\n", typ)
		topo, err := Parse("defaults.yaml", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := topo.Node("n").NAT.Behaviour
		want := nat.Behaviour{Mapping: typ.Mapping(), Filtering: typ.Filtering(), Ports: typ.DefaultPorts(),
			PortRange: nat.DefaultPortRange, Hairpin: true, Timeout: nat.DefaultTimeouts, Refresh: nat.RefreshBoth}
		if b != want {
			t.Errorf("%s: %+v, want %+v", typ, b, want)
		}
	}
	for _, k := range NATKnobs {
		var b nat.Behaviour
		k.set(&b, k.def(nat.PortRestrictedCone))
		if v := fmt.Sprint(k.Value(b)); !k.typed && k.Key != "ports" && v != k.Default {
			t.Errorf("%s: the default is %s, its Default says %q", k.Key, v, k.Default)
		}
	}
}

// TestDescribeBehaviourNamesEveryKnob checks natlab show's line of a nat
// against the phrases of the knobs.
func TestDescribeBehaviourNamesEveryKnob(t *testing.T) {
	n := &NAT{Type: nat.Symmetric, Behaviour: nat.Behaviour{Mapping: nat.AddressAndPortDependent,
		Filtering: nat.AddressAndPortDependent, Ports: nat.PortRandom, PortRange: nat.PortRange{First: 5, Last: 6},
		Timeout: nat.UDPOnly(24 * time.Hour), Refresh: nat.RefreshOutbound}}
	got := n.describeBehaviour()
	want := "symmetric: mapping address-and-port-dependent, filtering address-and-port-dependent, ports random 5-6, no hairpin, timeout 24h, refresh outbound, port-mapping none"
	if got != want {
		t.Errorf("describeBehaviour =\n%s\nwant\n%s", got, want)
	}
	for _, k := range NATKnobs {
		if p := k.phrase(k.get(n.Behaviour)); !strings.Contains(got, p) {
			t.Errorf("%s: %q not in %q", k.Key, p, got)
		}
	}
}

// TestBehaviourStringShowsEveryKnob checks that nat.Behaviour.String, the
// summary natlab status, up and tour print of a nat, changes with every
// knob set off its default: a knob it leaves out would be invisible there.
func TestBehaviourStringShowsEveryKnob(t *testing.T) {
	var base nat.Behaviour
	for _, k := range NATKnobs {
		k.set(&base, k.def(nat.PortRestrictedCone))
	}
	off := nat.Behaviour{Mapping: nat.AddressDependent, Filtering: nat.EndpointIndependent, Ports: nat.PortSequential,
		PortRange: nat.PortRange{First: 20000, Last: 20999}, Hairpin: false, Timeout: nat.UDPOnly(90 * time.Second), Refresh: nat.RefreshOutbound}
	for _, k := range NATKnobs {
		b := base
		k.set(&b, k.get(off))
		if b == base {
			t.Fatalf("%s: the test's value is the default", k.Key)
		}
		if b.String() == base.String() {
			t.Errorf("%s: nat.Behaviour.String does not show it: %q either way", k.Key, b.String())
		}
	}
}
