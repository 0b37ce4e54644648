package step_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

// Each kind's keys come from its value type; these tests check the rest of
// the agreement: that its Read reads every key the type declares, and
// accepts exactly the words the enums of its fields list.

// probeBase is a lab in which every kind of step can succeed.
func probeBase() map[string]any {
	return map[string]any{
		"internet6": "2001:db8::/32",
		"nodes": map[string]any{
			"srv":   map[string]any{"kind": "server", "services": []any{"stun", "turn", "rendezvous", "tunnel", "derp"}},
			"srv2":  map[string]any{"kind": "server", "services": []any{"stun"}},
			"nat":   map[string]any{"kind": "nat", "port-mapping": []any{"nat-pmp", "pcp", "upnp"}, "forward": []any{map[string]any{"proto": "tcp", "port": 80, "to": "alice"}}},
			"alice": map[string]any{"kind": "host", "behind": "nat"},
			"bob":   map[string]any{"kind": "host", "behind": "nat"},
			"nat2":  map[string]any{"kind": "nat"},
		},
	}
}

// probeSteps are a minimal step of each kind with fields in probeBase.
var probeSteps = map[string]map[string]any{
	"stun":       {"from": "alice"},
	"punch":      {"between": []any{"alice", "bob"}},
	"relay":      {"between": []any{"alice", "bob"}},
	"upgrade":    {"between": []any{"alice", "bob"}},
	"ice":        {"between": []any{"alice", "bob"}},
	"send":       {"from": "alice", "to": "bob"},
	"throughput": {"from": "alice", "to": "bob"},
	"portmap":    {"from": "alice", "port": 8080},
	"tunnel":     {"from": "alice", "port": 8080},
	"table":      {"node": "nat"},
	"exec":       {"node": "alice", "command": "true"},
	"link":       {"node": "alice", "delay": "10ms"},
	"reboot":     {"node": "nat"},
	"renumber":   {"node": "nat", "public": "203.0.113.77"},
	"move":       {"node": "alice", "behind": "nat2"},
}

// probeKey is one key of a kind's value, and the format its value takes.
type probeKey struct {
	kind, key string
	format    reflect.Type
}

// probeKeys lists every key of every kind with fields.
func probeKeys() []probeKey {
	var keys []probeKey
	for _, k := range step.All() {
		if k.Scalar() {
			continue
		}
		t := k.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if key := f.Tag.Get("yaml"); key != "" {
				keys = append(keys, probeKey{k.Key(), key, topology.FieldFormat(f)})
			}
		}
		keys = append(keys, probeKey{k.Key(), "name", reflect.TypeFor[topology.StepName]()})
	}
	return keys
}

// probe parses probeBase with one step of kind: its minimal fields and m.
func probe(t *testing.T, kind string, m map[string]any) []string {
	t.Helper()
	d := probeBase()
	fields := map[string]any{}
	for k, v := range probeSteps[kind] {
		fields[k] = v
	}
	for k, v := range m {
		fields[k] = v
	}
	d["steps"] = []any{map[string]any{kind: fields}}
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	_, err = step.Parse("probe.yaml", data)
	if err == nil {
		return nil
	}
	var msgs []string
	for _, e := range err.(topology.ErrorList) {
		msgs = append(msgs, e.Msg)
	}
	return msgs
}

// TestEveryKindIsProbed checks that the probes know every kind.
func TestEveryKindIsProbed(t *testing.T) {
	for _, k := range step.All() {
		if _, ok := probeSteps[k.Key()]; !ok && !k.Scalar() {
			t.Errorf("no probe step of kind %s", k.Key())
			continue
		}
		if msgs := probe(t, k.Key(), nil); len(msgs) > 0 && !k.Scalar() {
			t.Errorf("%s: the probe is invalid: %s", k.Key(), strings.Join(msgs, "; "))
		}
	}
}

// TestKindsReadEveryKey gives every key of every kind a value no key
// takes, a mapping of an unknown key, and wants the kind to report it at
// that key: a key the type declares but its Read does not read would be
// accepted silently.
func TestKindsReadEveryKey(t *testing.T) {
	for _, pk := range probeKeys() {
		path := "steps[0]." + pk.kind + "." + pk.key
		t.Run(path, func(t *testing.T) {
			msgs := probe(t, pk.kind, map[string]any{pk.key: map[string]any{"zz-probe": 1}})
			found := false
			for _, m := range msgs {
				if strings.HasPrefix(m, path+": unknown key") {
					t.Fatalf("the kind does not know %s: %s", pk.key, m)
				}
				found = found || strings.HasPrefix(m, path+":") || strings.HasPrefix(m, path+".") || strings.HasPrefix(m, path+"[")
			}
			if !found {
				t.Errorf("a mapping got through at %s: %q", path, msgs)
			}
		})
	}
}

// TestEnumsAgree checks that each kind accepts every word an enum of the
// format lists where it is used, and rejects one it does not.
func TestEnumsAgree(t *testing.T) {
	for _, pk := range probeKeys() {
		words := topology.EnumValues(pk.format)
		if words == nil {
			continue
		}
		path := "steps[0]." + pk.kind + "." + pk.key
		t.Run(path, func(t *testing.T) {
			for _, w := range words {
				m := map[string]any{pk.key: w}
				if w == "same" || w == "different" {
					// They compare what servers: see.
					m["servers"] = []any{"srv", "srv2"}
				}
				if msgs := probe(t, pk.kind, m); len(msgs) > 0 {
					t.Errorf("%s: %s rejected: %s", path, w, strings.Join(msgs, "; "))
				}
			}
			msgs := probe(t, pk.kind, map[string]any{pk.key: "zz-not-a-word"})
			if !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, path) }) {
				t.Errorf("%s: a word not in %v accepted", path, words)
			}
		})
	}
}

// TestExpectationKeys probes the keys of the expectations that are
// mappings: a stun step's classification and a table step's counts.
func TestExpectationKeys(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		format reflect.Type
		extra  map[string]any
	}{
		{"stun", reflect.TypeFor[topology.ClassificationExpect](), map[string]any{"server": "srv"}},
		{"table", reflect.TypeFor[topology.TableExpect](), nil},
	} {
		keys, _ := topology.FormatKeys(tc.format)
		for _, key := range keys {
			path := "steps[0]." + tc.kind + ".expect." + key
			t.Run(path, func(t *testing.T) {
				m := map[string]any{"expect": map[string]any{key: map[string]any{"zz-probe": 1}}}
				for k, v := range tc.extra {
					m[k] = v
				}
				msgs := probe(t, tc.kind, m)
				if !slices.ContainsFunc(msgs, func(m string) bool {
					return strings.HasPrefix(m, path+":") && !strings.HasPrefix(m, path+": unknown key")
				}) {
					t.Errorf("%s not read as a key: %q", path, msgs)
				}
			})
		}
	}
}

// TestStepsNotAList checks that steps: itself is read.
func TestStepsNotAList(t *testing.T) {
	_, err := step.Parse("probe.yaml", []byte("nodes: {alice: {kind: host}}\nsteps: {zz-probe: 1}\n"))
	if err == nil || !strings.Contains(err.Error(), "steps: want a list of steps") {
		t.Errorf("steps: as a mapping: %v", err)
	}
}

// TestKinds checks what each kind says of itself.
func TestKinds(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range step.All() {
		switch {
		case seen[k.Key()]:
			t.Errorf("%s is listed twice", k.Key())
		case k.Doc() == "" || !strings.HasSuffix(k.Doc(), "."):
			t.Errorf("%s: its doc %q is not a sentence", k.Key(), k.Doc())
		case !strings.HasPrefix(k.Example(), k.Key()+": "):
			t.Errorf("%s: its example %q is not a step of the kind", k.Key(), k.Example())
		case step.Of(k.Key()) != k:
			t.Errorf("Of(%q) is not the kind", k.Key())
		}
		seen[k.Key()] = true
		if _, err := step.Parse("example.yaml", []byte("nodes: {alice: {kind: host}, bob: {kind: host}, friend: {kind: host}, nat-a: {kind: nat}, s: {kind: server, services: [stun, turn, tunnel]}}\nsteps: [{"+k.Example()+"}]")); err != nil && k.Key() != "portmap" {
			t.Errorf("%s: its example does not parse: %v", k.Key(), err)
		}
		if !k.Scalar() && (len(k.Fields()) == 0 || k.Fields()[len(k.Fields())-1] != "name") {
			t.Errorf("%s: fields %v do not end with name", k.Key(), k.Fields())
		}
	}
	if !slices.Equal(step.Kinds.Keys(), func() []string {
		var keys []string
		for _, k := range step.All() {
			keys = append(keys, k.Key())
		}
		return keys
	}()) {
		t.Errorf("Kinds and All disagree")
	}
}
