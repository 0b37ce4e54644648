package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

const root = "../.."

// TestUpToDate fails when the committed schema or reference is not what
// the format types give now.
func TestUpToDate(t *testing.T) {
	schema, ref, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]byte{schemaPath: schema, referencePath: ref} {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatalf("%v; run make generate", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what topology/format.go gives; run make generate", path)
		}
	}
}

// compile compiles the committed schema, which the compiler checks against
// the 2020-12 meta-schema, and returns the schema at fragment of it.
func compile(t *testing.T, fragment string) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join(root, schemaPath))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("read %s: %v", schemaPath, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID + fragment)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return s
}

// instance converts a YAML document to what the schema validates, as an
// editor's YAML language server does: anchors and merge keys resolved.
func instance(t *testing.T, data []byte) any {
	t.Helper()
	// Through a Go value rather than goccy's YAMLToJSON, which writes
	// control characters as \x escapes that JSON does not have.
	var y any
	if err := yaml.Unmarshal(data, &y); err != nil {
		t.Fatalf("read YAML: %v", err)
	}
	j, err := json.Marshal(y)
	if err != nil {
		t.Fatalf("YAML to JSON: %v", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatalf("read JSON: %v", err)
	}
	return v
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s: %v", pattern, err)
	}
	return files
}

// TestValidFiles checks that the schema accepts every file the parser
// does: the built-in scenarios and the parser's valid test files.
func TestValidFiles(t *testing.T) {
	s := compile(t, "")
	files := append(glob(t, "scenarios/*.yaml"), glob(t, "topology/testdata/valid/*.yaml")...)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := step.Parse(file, data); err != nil {
				t.Fatalf("the parser rejects it: %v", err)
			}
			if err := s.Validate(instance(t, data)); err != nil {
				t.Errorf("the schema rejects it:\n%v", err)
			}
		})
	}
}

// TestInvalidFiles checks that the schema rejects the parser's invalid
// test files whose mistakes are of the kind a schema sees: unknown keys,
// values of the wrong type or not among the words, missing keys. The
// others (overlapping subnets, references to missing nodes) are the
// parser's alone.
func TestInvalidFiles(t *testing.T) {
	s := compile(t, "")
	for _, name := range []string{
		"bad-names", "forwards", "kind", "knob-values", "missing-nodes", "no-nodes",
		"null-nodes", "port-mapping", "port-range", "reserved-name", "step-between",
		"step-classification", "step-durations", "step-exec", "step-expect",
		"step-family", "step-missing-fields", "step-name", "step-not-mapping", "step-table",
		"step-two-kinds", "step-unknown-fields", "step-unknown-kind", "step-wait",
		"steps-not-list", "top-list", "unknown-keys", "wrong-types", "wrong-types-nodes",
		"firewall6", "internet-invalid", "internet6-not-string",
		"link-keys", "link-values", "link-directions", "step-events",
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(root, "topology/testdata/invalid", name+".yaml")
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := step.Parse(file, data); err == nil {
				t.Fatal("the parser accepts it")
			}
			if err := s.Validate(instance(t, data)); err == nil {
				t.Error("the schema accepts it")
			}
		})
	}
}

// TestValueFormats checks the schemas of values.go on what the parser
// accepts and rejects.
func TestValueFormats(t *testing.T) {
	tests := []struct {
		def       string
		good, bad []string
	}{
		{"LabName", []string{`"a"`, `"nat-a"`, `"1"`, `"` + strings.Repeat("a", 32) + `"`},
			[]string{`""`, `"-a"`, `"a-"`, `"Nat"`, `"a_b"`, `"` + strings.Repeat("a", 33) + `"`, `1`}},
		{"NodeName", []string{`"alice"`}, []string{`"internet"`, `"Alice"`}},
		{"IPv4Addr", []string{`"203.0.113.10"`, `"0.0.0.0"`, `"255.255.255.255"`},
			[]string{`"203.0.113"`, `"256.1.1.1"`, `"01.2.3.4"`, `"203.0.113.10/24"`, `"2001:db8::1"`}},
		{"IPv4Prefix", []string{`"192.168.1.0/24"`, `"10.0.0.0/8"`, `"192.168.1.254/24"`},
			[]string{`"192.168.1.0"`, `"192.168.1.0/33"`, `"2001:db8::/32"`}},
		{"IPv6Addr", []string{`"2001:db8::10"`, `"::1"`, `"::ffff:1.2.3.4"`}, []string{`"203.0.113.10"`, `"2001:db8::/32"`, `"fe80::1%eth0"`}},
		{"IPv6Prefix", []string{`"2001:db8::/32"`, `"fd00:1:2::/48"`}, []string{`"2001:db8::"`, `"2001:db8::/129"`, `"10.0.0.0/8"`}},
		{"Duration", []string{`"2s"`, `"1m30s"`, `"500ms"`, `"1.5h"`, `"10m"`, `30`, `"600"`, `"0"`},
			[]string{`"5 minutes"`, `"1d"`, `"s"`, `-1`, `1.5`, `true`}},
		{"Port", []string{`80`, `65535`, `"8080"`}, []string{`0`, `65536`, `"http"`, `80.5`}},
		{"Count", []string{`0`, `65535`, `"3"`}, []string{`-1`, `65536`, `"many"`}},
		{"PortRange", []string{`"1024-65535"`, `"49152 - 65535"`}, []string{`"1024"`, `1024`, `"a-b"`}},
		{"Command", []string{`"ping -c1 203.0.113.10"`, `["nft", "list", "ruleset"]`, `["sh", "-c", 1]`},
			[]string{`""`, `"  "`, `[]`, `{"run": "ls"}`}},
		{"HostPair", []string{`["alice", "bob"]`}, []string{`["alice"]`, `["alice", "alice"]`, `["a", "b", "c"]`}},
		{"StepName", []string{`"predicted ports"`, `"name\n"`, `"` + strings.Repeat("x", 80) + `"`},
			[]string{`""`, `"two\nlines"`, `"` + strings.Repeat("x", 81) + `"`}},
		{"NATType", []string{`"symmetric"`, `"restricted-cone"`}, []string{`"cone"`, `"Symmetric"`}},
		{"Firewall6", []string{`"off"`, `"endpoint-independent"`}, []string{`false`, `"on"`}},
		{"STUNExpect", []string{`"ok"`, `"same"`, `{"type": "symmetric"}`}, []string{`"delivered"`, `{}`, `{"kind": "nat"}`}},
		{"TableExpect", []string{`{"mappings": 2}`, `{"flows": 0, "mappings": 1}`}, []string{`{}`, `{"entries": 2}`, `2`}},
		{"NodeEntry", []string{`{"kind": "nat", "type": "full-cone"}`, `{"kind": "host", "behind": "nat-a"}`},
			[]string{`{}`, `{"kind": "router"}`, `{"kind": "host", "type": "full-cone"}`, `{"kind": "server", "behind": "nat-a"}`}},
		{"LinkDuration", []string{`"30ms"`, `"1.5s"`, `"250us"`, `"0"`, `0`, `" 5ms "`, `".5ms"`},
			[]string{`30`, `"30"`, `"-5ms"`, `"2m"`, `"1h"`, `"30ns"`, `"ms"`, `true`}},
		{"Percent", []string{`"1%"`, `"0.1%"`, `"100%"`, `"0%"`, `" 10 %"`, `"99.5%"`, `".5%"`},
			[]string{`"101%"`, `"100.5%"`, `"1"`, `1`, `"-1%"`, `"%"`, `"x%"`}},
		{"Rate", []string{`"10mbit"`, `"1.5Mbit"`, `"500kbit"`, `"1gbit"`, `"64000bit"`, `"10 mbit"`},
			[]string{`"10mbps"`, `"10MB"`, `"10"`, `10`, `"-1mbit"`, `"mbit"`}},
		{"MTU", []string{`1400`, `576`, `9000`, `"1500"`}, []string{`575`, `9001`, `1400.5`, `"big"`}},
		{"LinkEntry", []string{`{}`, `{"delay": "30ms", "loss": "1%", "mtu": 1400, "up": {"rate": "1mbit"}, "down": {"rate": "20mbit"}}`},
			[]string{`{"dealy": "30ms"}`, `{"up": {"mtu": 1400}}`, `{"up": "fast"}`, `"30ms"`}},
		{"StepEntry", []string{`{"wait": "2s"}`, `{"punch": {"between": ["a", "b"]}}`},
			[]string{`{}`, `{"wait": "2s", "punch": {"between": ["a", "b"]}}`, `{"punch": {}}`, `{"sleep": "2s"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.def, func(t *testing.T) {
			s := compile(t, "#/$defs/"+tt.def)
			for _, v := range tt.good {
				if err := s.Validate(instance(t, []byte(v))); err != nil {
					t.Errorf("rejects %s: %v", v, err)
				}
			}
			for _, v := range tt.bad {
				if err := s.Validate(instance(t, []byte(v))); err == nil {
					t.Errorf("accepts %s", v)
				}
			}
		})
	}
}

// schemaDef is what the tests of what is documented read of a definition
// of the committed schema.
type schemaDef struct {
	Properties map[string]struct {
		Description string `json:"description"`
		Ref         string `json:"$ref"`
		Type        string `json:"type"`
	} `json:"properties"`
	Enum []string `json:"enum"`
}

// committed reads the definitions of the committed schema and the
// committed reference.
func committed(t *testing.T) (map[string]schemaDef, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, schemaPath))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs map[string]schemaDef `json:"$defs"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	ref, err := os.ReadFile(filepath.Join(root, referencePath))
	if err != nil {
		t.Fatal(err)
	}
	return schema.Defs, string(ref)
}

// TestKnobsDocumented checks that the committed schema and reference
// describe every NAT knob of topology.NATKnobs with its meaning and
// default, and that the schema takes its words.
func TestKnobsDocumented(t *testing.T) {
	defs, ref := committed(t)
	natNode := defs["NATNode"]
	for _, k := range topology.NATKnobs {
		p, ok := natNode.Properties[k.Key]
		if !ok {
			t.Errorf("the schema's NATNode has no %s", k.Key)
			continue
		}
		if want := k.Meaning + " Default: " + k.Default + "."; p.Description != want {
			t.Errorf("%s: described as %q in the schema, want %q", k.Key, p.Description, want)
		}
		if vs, ok := reflect.Zero(k.Format).Interface().(interface{ Values() []string }); ok {
			def := defs[strings.TrimPrefix(p.Ref, "#/$defs/")]
			if !slices.Equal(def.Enum, vs.Values()) {
				t.Errorf("%s: the schema takes %v, the knob %v", k.Key, def.Enum, vs.Values())
			}
		}
		row := fmt.Sprintf("| `%s` | ", k.Key)
		i := strings.Index(ref, row)
		if i < 0 {
			t.Errorf("%s has no row in %s", k.Key, referencePath)
			continue
		}
		line, _, _ := strings.Cut(ref[i:], "\n")
		if !strings.Contains(line, " | "+k.Default+" | "+k.Meaning+" |") {
			t.Errorf("%s's row in %s is %q, without its default %q and meaning %q", k.Key, referencePath, line, k.Default, k.Meaning)
		}
	}
}

// TestLinkConditionsDocumented checks that the committed schema and
// reference describe every condition of topology.LinkConditions, with its
// meaning and default, in link: and (but the whole link's) in up: and
// down:.
func TestLinkConditionsDocumented(t *testing.T) {
	defs, ref := committed(t)
	sections := strings.Split(ref, "\n### ")
	section := func(heading string) string {
		for _, s := range sections {
			if strings.HasPrefix(s, heading+"\n") {
				return s
			}
		}
		t.Fatalf("%s has no section %q", referencePath, heading)
		return ""
	}
	for _, where := range []struct {
		def, heading string
		direction    bool
	}{{"LinkEntry", "link", false}, {"LinkDirection", "up and down", true}} {
		props := defs[where.def].Properties
		sec := section(where.heading)
		for _, k := range topology.LinkConditions {
			p, ok := props[k.Key]
			if where.direction && k.Whole {
				if ok {
					t.Errorf("the schema's %s takes %s, the whole link's", where.def, k.Key)
				}
				if strings.Contains(sec, "| `"+k.Key+"` |") {
					t.Errorf("%s's %s lists %s, the whole link's", referencePath, where.heading, k.Key)
				}
				continue
			}
			if !ok {
				t.Errorf("the schema's %s has no %s", where.def, k.Key)
				continue
			}
			if want := k.Meaning + " Default: " + k.Default + "."; p.Description != want {
				t.Errorf("%s.%s: described as %q in the schema, want %q", where.def, k.Key, p.Description, want)
			}
			if want := "#/$defs/" + k.Format.Name(); p.Ref != want {
				t.Errorf("%s.%s: the schema's value is %s, want %s", where.def, k.Key, p.Ref, want)
			}
			row := "| `" + k.Key + "` | "
			i := strings.Index(sec, row)
			if i < 0 {
				t.Errorf("%s has no row in %s's %s", k.Key, referencePath, where.heading)
				continue
			}
			line, _, _ := strings.Cut(sec[i:], "\n")
			if !strings.Contains(line, " | "+k.Default+" | "+k.Meaning+" |") {
				t.Errorf("%s's row in %s's %s is %q, without its default %q and meaning %q", k.Key, referencePath, where.heading, line, k.Default, k.Meaning)
			}
		}
	}
	for _, kind := range []string{"ServerNode", "NATNode", "HostNode"} {
		if p := defs[kind].Properties["link"]; p.Ref != "#/$defs/LinkEntry" {
			t.Errorf("the schema's %s has no link of LinkEntry: %+v", kind, p)
		}
	}
}
