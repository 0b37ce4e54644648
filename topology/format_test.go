package topology

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The parser's lists of keys come from the format types (formatKeys); these
// tests check, for the nodes (package step checks its kinds), the rest of
// the agreement: that the parser reads every key
// the types declare, and accepts exactly the words their enums list.

// probeBase is a lab in which every kind of step can succeed; probeSteps
// are a minimal step of each kind in it.
func probeBase() map[string]any {
	return map[string]any{
		"internet6": "2001:db8::/32",
		"nodes": map[string]any{
			"srv":   map[string]any{"kind": "server", "services": []any{"stun", "turn", "rendezvous", "tunnel", "derp"}},
			"srv2":  map[string]any{"kind": "server", "services": []any{"stun"}},
			"nat":   map[string]any{"kind": "nat", "port-mapping": "nat-pmp", "forward": []any{map[string]any{"proto": "tcp", "port": 80, "to": "alice"}}},
			"alice": map[string]any{"kind": "host", "behind": "nat"},
			"bob":   map[string]any{"kind": "host", "behind": "nat"},
		},
	}
}

// probeSite is one place of a file where a format type's keys go.
type probeSite struct {
	t reflect.Type
	// path is the parser's name for the place.
	path string
	// doc returns a file with m at the place.
	doc func(m map[string]any) map[string]any
}

func probeSites() []probeSite {
	node := func(kind Kind) func(map[string]any) map[string]any {
		return func(m map[string]any) map[string]any {
			d := probeBase()
			m["kind"] = string(kind)
			d["nodes"].(map[string]any)["probe"] = m
			return d
		}
	}
	sites := []probeSite{
		{reflect.TypeFor[File](), "", func(m map[string]any) map[string]any {
			d := probeBase()
			for k, v := range m {
				d[k] = v
			}
			return d
		}},
		{reflect.TypeFor[ServerNode](), "nodes.probe", node(KindServer)},
		{reflect.TypeFor[NATNode](), "nodes.probe", node(KindNAT)},
		{reflect.TypeFor[HostNode](), "nodes.probe", node(KindHost)},
		{reflect.TypeFor[LinkEntry](), "nodes.alice.link", func(m map[string]any) map[string]any {
			d := probeBase()
			d["nodes"].(map[string]any)["alice"].(map[string]any)["link"] = m
			return d
		}},
		{reflect.TypeFor[LinkDirection](), "nodes.alice.link.down", func(m map[string]any) map[string]any {
			d := probeBase()
			d["nodes"].(map[string]any)["alice"].(map[string]any)["link"] = map[string]any{"down": m}
			return d
		}},
		{reflect.TypeFor[PortForward](), "nodes.nat.forward[0]", func(m map[string]any) map[string]any {
			d := probeBase()
			f := d["nodes"].(map[string]any)["nat"].(map[string]any)["forward"].([]any)[0].(map[string]any)
			for k, v := range m {
				f[k] = v
			}
			return d
		}},
	}
	return sites
}

// parseDoc parses d, written as JSON, which is YAML too.
func parseDoc(t *testing.T, d map[string]any) []string {
	t.Helper()
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("probe.yaml", data, nil)
	if err == nil {
		return nil
	}
	var msgs []string
	for _, e := range err.(ErrorList) {
		msgs = append(msgs, e.Msg)
	}
	return msgs
}

// TestProbeBase checks that the probes start from a valid lab, so that an
// error they see comes from the key probed.
func TestProbeBase(t *testing.T) {
	for _, s := range probeSites() {
		if msgs := parseDoc(t, s.doc(map[string]any{})); len(msgs) > 0 {
			t.Errorf("%s: the probe's lab is invalid: %s", s.path, strings.Join(msgs, "; "))
		}
	}
}

// TestParserReadsEveryKey gives every key of every format type a value
// no key takes, a mapping of an unknown key, and wants the parser to
// report it at that key: a key the types declare but no code reads would
// be accepted silently.
func TestParserReadsEveryKey(t *testing.T) {
	for _, s := range probeSites() {
		for _, f := range formatFields(s.t) {
			if c := f.field.Tag.Get("schema"); strings.Contains(c, "const=") || f.key == "steps" {
				// Without kinds of step the parser reads no steps;
				// package step's tests probe them.
				continue
			}
			path := joinPath(s.path, f.key)
			t.Run(path, func(t *testing.T) {
				msgs := parseDoc(t, s.doc(map[string]any{f.key: map[string]any{"zz-probe": 1}}))
				found := false
				for _, m := range msgs {
					if strings.HasPrefix(m, path+": unknown key") {
						t.Fatalf("the parser does not know %s: %s", f.key, m)
					}
					found = found || strings.HasPrefix(m, path+":") || strings.HasPrefix(m, path+".") || strings.HasPrefix(m, path+"[")
				}
				if !found {
					t.Errorf("the parser let a mapping through at %s: %q", path, msgs)
				}
			})
		}
	}
}

// TestEnumsAgree checks that the parser accepts every word an enum of the
// format lists where it is used, and rejects one it does not.
func TestEnumsAgree(t *testing.T) {
	for _, s := range probeSites() {
		for _, f := range formatFields(s.t) {
			words := enumValues(f.field.Type)
			list := f.field.Type.Kind() == reflect.Slice
			if list {
				words = enumValues(f.field.Type.Elem())
			}
			if words == nil || strings.Contains(f.field.Tag.Get("schema"), "const=") {
				continue
			}
			path := joinPath(s.path, f.key)
			value := func(w string) any {
				if list {
					return []any{w}
				}
				return w
			}
			t.Run(path, func(t *testing.T) {
				for _, w := range words {
					m := map[string]any{f.key: value(w)}
					if w == "same" || w == "different" {
						// They compare what servers: see.
						m["servers"] = []any{"srv", "srv2"}
					}
					if f.key == "pooling" {
						// Pooling picks from several public addresses.
						m["public"] = []any{"203.0.113.201", "203.0.113.202"}
					}
					doc := s.doc(m)
					if w == "one-to-one" {
						// A one-to-one nat has one host behind it.
						doc["nodes"].(map[string]any)["probe-host"] = map[string]any{"kind": "host", "behind": "probe"}
					}
					if msgs := parseDoc(t, doc); len(msgs) > 0 {
						t.Errorf("%s: %s rejected: %s", path, w, strings.Join(msgs, "; "))
					}
				}
				msgs := parseDoc(t, s.doc(map[string]any{f.key: value("zz-not-a-word")}))
				if !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, path) }) {
					t.Errorf("%s: a word not in %v accepted", path, words)
				}
			})
		}
	}
}

// TestFormatLists checks the lists the parser keeps beside the types.
func TestFormatLists(t *testing.T) {
	var kinds []Kind
	for _, v := range (NodeEntry{}).Variants() {
		for _, f := range formatFields(reflect.TypeOf(v)) {
			_, c, ok := strings.Cut(f.field.Tag.Get("schema"), "const=")
			if f.key == "kind" && ok {
				kind := Kind(strings.Split(c, ",")[0])
				kinds = append(kinds, kind)
				if !slices.Equal(kindKeys[kind], keysOf(formatFields(reflect.TypeOf(v)))) {
					t.Errorf("kindKeys[%s] is %v, not the keys of %T", kind, kindKeys[kind], v)
				}
			}
		}
	}
	if !slices.Equal(kinds, Kinds) {
		t.Errorf("NodeEntry's variants are %v, Kinds is %v", kinds, Kinds)
	}
	prefix := reflect.TypeFor[File]()
	f, _ := prefix.FieldByName("Extensions")
	if f.Tag.Get("yaml") != ignoredPrefix {
		t.Errorf("File's prefix key is %q, the parser ignores keys starting with %q", f.Tag.Get("yaml"), ignoredPrefix)
	}
}
