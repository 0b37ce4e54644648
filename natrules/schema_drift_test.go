package natrules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// ordinaryWords are schema names that are also plain words elsewhere (a
// JSON field, a YAML key, the program's name): spelled as a literal they
// are drift only in code that talks to nftables.
var ordinaryWords = map[string]bool{TableName: true, PortsSet: true, MappingsSet: true, PermitsSet: true}

// schemaNames are the names of every table natlab makes and of every set
// in them, as Build and BuildFirewall6 make them: a set added there is
// guarded here without being listed.
func schemaNames(t *testing.T) map[string]bool {
	names := map[string]bool{TraceTableName: true}
	for _, rs := range allCases(t) {
		names[rs.table.Name] = true
		for _, s := range rs.sets {
			names[s.spec.Name] = true
		}
	}
	for _, n := range []string{TableName, Firewall6Table, HostFirewallTable, PortsSet, MappingsSet, PermitsSet, HairpinPermitsSet, PortMapTCP, PortMapUDP, setOpen6, setPermits6} {
		if !names[n] {
			t.Fatalf("no golden ruleset has %q: the cases miss a table or set", n)
		}
	}
	return names
}

// TestNoOtherPackageSpellsTheSchema fails if a non-test Go file outside
// natrules spells the name of one of natlab's tables or sets as a string
// literal, instead of using natrules' names, or builds a descriptor of one
// of its tables instead of asking natrules for it: the schema is written
// down once, so it cannot drift.
func TestNoOtherPackageSpellsTheSchema(t *testing.T) {
	names := schemaNames(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root: %v", err)
	}
	self, _ := filepath.Abs(".")
	var found []string
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path == self || name == "testdata" || name == "vendor" || (path != root && strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		rel, _ := filepath.Rel(root, path)
		for _, f := range spelledNames(t, path, names) {
			found = append(found, rel+":"+f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("only %d Go files under %s: not the module", files, root)
	}
	sort.Strings(found)
	for _, f := range found {
		t.Error(f)
	}
}

// spelledNames lists the string literals in the file at path that are
// schema names, as "line:column: the literal", and the table descriptors
// it builds of natrules' table names. Import paths and struct tags are
// not code; ordinary words count only in a file that talks to nftables
// (imports google/nftables, or names the nft command).
func spelledNames(t *testing.T, path string, names map[string]bool) []string {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	skip := map[*ast.BasicLit]bool{}
	nft := false
	local := map[string]string{} // import path -> the file's name for it
	for _, imp := range file.Imports {
		skip[imp.Path] = true
		p, _ := strconv.Unquote(imp.Path.Value)
		if strings.HasPrefix(p, "github.com/google/nftables") {
			nft = true
		}
		local[p] = p[strings.LastIndex(p, "/")+1:]
		if imp.Name != nil {
			local[p] = imp.Name.Name
		}
	}
	isSel := func(e ast.Expr, pkg, name string) (string, bool) {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return "", false
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok || local[pkg] == "" || x.Name != local[pkg] || (name != "" && sel.Sel.Name != name) {
			return "", false
		}
		return sel.Sel.Name, true
	}
	var found []string
	at := func(n ast.Node) string {
		pos := fset.Position(n.Pos())
		return strconv.Itoa(pos.Line) + ":" + strconv.Itoa(pos.Column) + ": "
	}
	var lits []*ast.BasicLit
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if _, ok := isSel(n.Type, "github.com/google/nftables", "Table"); !ok {
				break
			}
			for _, e := range n.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
						if name, ok := isSel(kv.Value, "github.com/natlab/natlab/natrules", ""); ok {
							found = append(found, at(n)+"a descriptor of natrules."+name+": use natrules' function for it")
						}
					}
				}
			}
		case *ast.Field:
			if n.Tag != nil {
				skip[n.Tag] = true
			}
		case *ast.BasicLit:
			if n.Kind == token.STRING && !skip[n] {
				if v, err := strconv.Unquote(n.Value); err == nil && v == "nft" {
					nft = true
				}
				lits = append(lits, n)
			}
		}
		return true
	})
	for _, l := range lits {
		v, err := strconv.Unquote(l.Value)
		if err != nil || skip[l] || !names[v] || (ordinaryWords[v] && !nft) {
			continue
		}
		found = append(found, at(l)+l.Value+": use natrules' name for it")
	}
	return found
}

// The check finds what it is for, and leaves the ordinary words alone.
func TestSpelledNames(t *testing.T) {
	names := map[string]bool{TableName: true, PortsSet: true, PortMapTCP: true, TraceTableName: true}
	tests := []struct {
		name, src string
		want      int
	}{
		{"table name in nftables code", `package p
import "github.com/google/nftables"
var t = &nftables.Table{Name: "natlab"}`, 1},
		{"set name in nftables code", `package p
import "github.com/google/nftables/expr"
var l = &expr.Lookup{SetName: "ports"}
var names = []string{"ports", "portmap_tcp"}`, 3},
		{"the nft command", `package p
import "os/exec"
var c = exec.Command("nft", "list", "table", "ip", "natlab")`, 1},
		{"a descriptor of natrules' table", `package p
import (
	"github.com/google/nftables"
	nr "github.com/natlab/natlab/natrules"
)
var t = &nftables.Table{Name: nr.TableName, Family: nftables.TableFamilyIPv4}
var probe = &nftables.Table{Name: "probe"}`, 1},
		{"a distinctive name anywhere", `package p
const trace = "natlab_trace"`, 1},
		{"ordinary words elsewhere", `package p
type S struct {
	Ports string ` + "`json:\"ports\"`" + `
}
var realm = "natlab"
func f(k string) bool { return k == "ports" }`, 0},
		{"tags and imports in nftables code", `package p
import (
	"github.com/google/nftables"
	natlab "github.com/natlab/natlab"
)
type S struct {
	T *nftables.Table ` + "`json:\"natlab\"`" + `
}
var _ = natlab.X`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.go")
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := spelledNames(t, path, names); len(got) != tc.want {
				t.Errorf("found %q, want %d", got, tc.want)
			}
		})
	}
}
