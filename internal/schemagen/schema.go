package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

// SchemaID is where the schema is published: the raw file on the main
// branch, which editors fetch.
const SchemaID = "https://raw.githubusercontent.com/natlab/natlab/main/schema/natlab.schema.json"

// object is a JSON object that keeps its keys in the order they were set,
// so that the schema reads in the order of the Go types.
type object struct {
	keys []string
	vals map[string]any
}

// obj makes an object of key, value pairs.
func obj(kv ...any) *object {
	o := &object{vals: make(map[string]any)}
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

func (o *object) set(k string, v any) *object {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
	return o
}

func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, err := marshal(k)
		if err != nil {
			return nil, err
		}
		vj, err := marshal(o.vals[k])
		if err != nil {
			return nil, fmt.Errorf("marshal %s: %w", k, err)
		}
		b.Write(kj)
		b.WriteByte(':')
		b.Write(vj)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without escaping <, > and &, which the
// descriptions hold and people read.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// ref points at the definition of t.
func ref(t reflect.Type) *object { return obj("$ref", "#/$defs/"+t.Name()) }

// docs are the doc comments of topology's types and their fields, keyed
// TypeName and TypeName.FieldName.
type docs map[string]string

// readDocs reads the doc comments of the Go files of dir, the topology
// package: reflection does not carry them.
func readDocs(dir string) (docs, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	d := make(docs)
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("read doc comments: %w", err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				d[ts.Name.Name] = typeText(ts.Name.Name, text(doc))
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, field := range st.Fields.List {
					for _, name := range field.Names {
						d[ts.Name.Name+"."+name.Name] = text(field.Doc)
					}
				}
			}
		}
	}
	return d, nil
}

// text is a comment as one paragraph.
func text(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	return strings.Join(strings.Fields(g.Text()), " ")
}

// typeText turns the doc comment of a type, "Duration is a Go duration",
// into a description, "A Go duration".
func typeText(name, doc string) string {
	rest, ok := strings.CutPrefix(doc, name+" is ")
	if !ok || rest == "" {
		return doc
	}
	return strings.ToUpper(rest[:1]) + rest[1:]
}

// tag is a field's schema tag: keywords, with values or not.
type tag struct {
	flags    []string
	keywords [][2]string
}

func parseTag(f reflect.StructField) tag {
	var t tag
	for opt := range strings.SplitSeq(f.Tag.Get("schema"), ",") {
		switch k, v, ok := strings.Cut(opt, "="); {
		case opt == "":
		case ok:
			t.keywords = append(t.keywords, [2]string{k, v})
		default:
			t.flags = append(t.flags, opt)
		}
	}
	return t
}

func (t tag) has(flag string) bool { return slices.Contains(t.flags, flag) }

func (t tag) get(k string) (string, bool) {
	for _, kv := range t.keywords {
		if kv[0] == k {
			return kv[1], true
		}
	}
	return "", false
}

// apply sets the keywords other than const on s: numbers as numbers,
// flags such as uniqueItems as true.
func (t tag) apply(s *object) {
	for _, kv := range t.keywords {
		if kv[0] == "const" {
			continue
		}
		n, err := strconv.Atoi(kv[1])
		if err != nil {
			s.set(kv[0], kv[1])
		} else {
			s.set(kv[0], n)
		}
	}
	for _, f := range t.flags {
		if f != "required" && f != "prefix" {
			s.set(f, true)
		}
	}
}

// generator turns the format types into a schema.
type generator struct {
	docs docs
	defs *object
	// defined lists the types given a definition, in the order met.
	defined []reflect.Type
}

// fields are the fields of a struct type that are keys, those with a yaml
// tag; a blank field holds keywords for the type itself, and one whose
// type has a KeyFields method stands for the keys of a registry, such as
// the NAT knobs of topology.NATKnobs (topology.RegistryKeys).
func fields(t reflect.Type) (keys []reflect.StructField, self []reflect.StructField) {
	for i := range t.NumField() {
		f := t.Field(i)
		if kfs, ok := topology.RegistryKeys(f); ok {
			keys = append(keys, kfs...)
			continue
		}
		if f.Name == "_" {
			self = append(self, f)
			continue
		}
		if f.Tag.Get("yaml") != "" {
			keys = append(keys, f)
		}
	}
	return keys, self
}

// stepName is, for a step kind's value, the default of its name: key,
// which its blank field's name tag gives.
func stepName(self []reflect.StructField) (string, bool) {
	for _, f := range self {
		if name := f.Tag.Get("name"); name != "" {
			return name, true
		}
	}
	return "", false
}

func key(f reflect.StructField) string { return f.Tag.Get("yaml") }

// fieldDoc is the doc comment of field f of struct t, or the doc tag
// of a field that stands for a key without one of its own (a NAT knob).
func (g *generator) fieldDoc(t reflect.Type, f reflect.StructField) string {
	if d, ok := f.Tag.Lookup("doc"); ok {
		return d
	}
	return g.docs[t.Name()+"."+f.Name]
}

// describe is a field's description: its doc comment, and its default.
func (g *generator) describe(t reflect.Type, f reflect.StructField) string {
	d := g.fieldDoc(t, f)
	if def := f.Tag.Get("default"); def != "" {
		d += " Default: " + def + "."
	}
	return d
}

// schemaOf is the schema of a value of type t: a reference to the
// definition of a named type, or the schema of a list or mapping.
func (g *generator) schemaOf(t reflect.Type) *object {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if ours(t) {
		g.define(t)
		return ref(t)
	}
	switch t.Kind() {
	case reflect.Bool:
		return obj("type", "boolean")
	case reflect.Slice:
		return obj("type", "array", "items", g.schemaOf(t.Elem()))
	case reflect.Map:
		return obj("type", "object", "propertyNames", g.schemaOf(t.Key()), "additionalProperties", g.schemaOf(t.Elem()))
	case reflect.Interface:
		return obj()
	}
	panic(fmt.Sprintf("schemagen: no schema for %s; give it a value format in values.go", t))
}

// define adds the definition of named type t, once.
func (g *generator) define(t reflect.Type) {
	if _, ok := g.defs.vals[t.Name()]; ok {
		return
	}
	s := obj("description", g.docs[t.Name()])
	if k := kindOf(t); k != nil {
		s.set("description", "What "+topology.StepWhat(k.Key())+" takes.")
	}
	// Placed before its parts are defined, so that recursion stops.
	g.defs.set(t.Name(), s)
	g.defined = append(g.defined, t)
	zero := reflect.Zero(t).Interface()
	if vf, ok := valueFormats[t]; ok {
		merge(s, vf.schema())
		return
	}
	if t == reflect.TypeFor[topology.StepEntry]() {
		g.stepEntry(s)
		return
	}
	switch v := zero.(type) {
	case interface{ Values() []string }:
		s.set("type", "string").set("enum", v.Values())
		return
	case interface{ Variants() []any }:
		g.variants(s, v.Variants())
		return
	}
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("schemagen: no schema for %s; give it a value format in values.go", t))
	}
	g.object(s, t)
}

func merge(dst, src *object) {
	for _, k := range src.keys {
		dst.set(k, src.vals[k])
	}
}

// object fills in s, the schema of struct t: its keys, none other.
func (g *generator) object(s *object, t reflect.Type) {
	s.set("type", "object")
	keys, self := fields(t)
	props := obj()
	var required []string
	var prefixes *object
	for _, f := range keys {
		tg := parseTag(f)
		if tg.has("prefix") {
			if prefixes == nil {
				prefixes = obj()
			}
			p := g.schemaOf(f.Type)
			p.set("description", g.describe(t, f))
			prefixes.set("^"+regexpQuote(key(f)), p)
			continue
		}
		var p *object
		if c, ok := tg.get("const"); ok {
			p = obj("const", c)
		} else {
			p = g.schemaOf(topology.FieldFormat(f))
		}
		// The description goes first, as in a definition.
		ps := obj("description", g.describe(t, f))
		merge(ps, p)
		tg.apply(ps)
		props.set(key(f), ps)
		if tg.has("required") {
			required = append(required, key(f))
		}
	}
	if name, ok := stepName(self); ok {
		ps := obj("description", "A label for reports. Default: "+name+".")
		merge(ps, g.schemaOf(reflect.TypeFor[topology.StepName]()))
		props.set("name", ps)
	}
	s.set("properties", props)
	if prefixes != nil {
		s.set("patternProperties", prefixes)
	}
	s.set("additionalProperties", false)
	if len(required) > 0 {
		s.set("required", required)
	}
	for _, f := range self {
		parseTag(f).apply(s)
	}
}

// discriminator returns the key and word that struct t is told apart by:
// its field with a const.
func discriminator(t reflect.Type) (reflect.StructField, string, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, "", false
	}
	keys, _ := fields(t)
	for _, f := range keys {
		if c, ok := parseTag(f).get("const"); ok {
			return f, c, true
		}
	}
	return reflect.StructField{}, "", false
}

// variants fills in s, the schema of a value that takes one of several
// forms. Structs told apart by one key, as nodes by kind, are chosen by
// it with if and then, so that a mistake is reported against the form
// the file meant rather than against every form.
func (g *generator) variants(s *object, vs []any) {
	var forms []any
	var byKey []any
	var dkey string
	var dtype reflect.Type
	for _, v := range vs {
		t := reflect.TypeOf(v)
		forms = append(forms, g.schemaOf(t))
		f, word, ok := discriminator(t)
		if !ok || dkey != "" && key(f) != dkey {
			byKey = nil
			dkey = "-"
			continue
		}
		dkey, dtype = key(f), f.Type
		byKey = append(byKey, obj(
			"if", obj("properties", obj(dkey, obj("const", word)), "required", []string{dkey}),
			"then", g.schemaOf(t),
		))
	}
	if dkey == "" || dkey == "-" {
		s.set("oneOf", forms)
		return
	}
	s.set("type", "object")
	s.set("properties", obj(dkey, g.schemaOf(dtype)))
	s.set("required", []string{dkey})
	s.set("allOf", byKey)
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// schema generates the JSON Schema of topology.File.
func (g *generator) schema() ([]byte, error) {
	root := obj(
		"$schema", "https://json-schema.org/draft/2020-12/schema",
		"$id", SchemaID,
		"title", "natlab scenario",
	)
	g.defs = obj()
	file := reflect.TypeFor[topology.File]()
	g.define(file)
	// The root is File itself, for tools that look at its properties
	// rather than follow a $ref.
	merge(root, g.defs.vals[file.Name()].(*object))
	delete(g.defs.vals, file.Name())
	g.defs.keys = slices.DeleteFunc(g.defs.keys, func(k string) bool { return k == file.Name() })
	root.set("$defs", g.defs)
	compact, err := marshal(root)
	if err != nil {
		return nil, fmt.Errorf("marshal schema: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("indent schema: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// newGenerator reads the doc comments of the topology package in dir and
// of the step package in stepDir.
func newGenerator(dir, stepDir string) (*generator, error) {
	d, err := readDocs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "format.go")); err != nil {
		return nil, fmt.Errorf("find the format types: %w", err)
	}
	sd, err := readDocs(stepDir)
	if err != nil {
		return nil, err
	}
	// Of package step, only the kinds' value types are of the format,
	// and the types of their fields that a kind declares itself (a word
	// only that kind takes, such as punch's announce).
	values := map[string]bool{}
	stepPkg := reflect.TypeFor[step.Kind]().PkgPath()
	for _, k := range step.All() {
		values[k.Type().Name()] = true
		for i := range k.Type().NumField() {
			if t := topology.FieldFormat(k.Type().Field(i)); t.PkgPath() == stepPkg && t.Name() != "" {
				values[t.Name()] = true
			}
		}
	}
	for k, v := range sd {
		typ, _, _ := strings.Cut(k, ".")
		if !values[typ] {
			continue
		}
		if _, dup := d[k]; dup {
			return nil, fmt.Errorf("the doc of %s is in both topology and step: rename one", k)
		}
		d[k] = v
	}
	return &generator{docs: d}, nil
}

// ours says whether t is a type of the format: topology's, or a step
// kind's value.
func ours(t reflect.Type) bool {
	return t.Name() != "" && (t.PkgPath() == reflect.TypeFor[topology.File]().PkgPath() || t.PkgPath() == reflect.TypeFor[step.Kind]().PkgPath())
}

// kindOf is the kind of step whose value type is t, or nil.
func kindOf(t reflect.Type) *step.Kind {
	for _, k := range step.All() {
		if k.Type() == t {
			return k
		}
	}
	return nil
}

// stepEntry fills in s, the schema of one step: a mapping of exactly one
// kind, each kind's value its type (or, for a scalar kind, its value's
// format), documented with the kind's doc.
func (g *generator) stepEntry(s *object) {
	props := obj()
	for _, k := range step.All() {
		t := k.Value()
		if t == nil {
			t = k.Type()
		}
		p := obj("description", k.Doc())
		merge(p, g.schemaOf(t))
		props.set(k.Key(), p)
	}
	s.set("type", "object").set("properties", props).set("additionalProperties", false)
	s.set("minProperties", 1).set("maxProperties", 1)
}
