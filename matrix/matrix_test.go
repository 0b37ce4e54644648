package matrix_test

import (
	"context"
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/matrix"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/step"
)

// rowsFlag picks rows of TestMatrix, which takes minutes in full: go test
// ./matrix -run TestMatrix -rows 'same NAT'.
var rowsFlag = flag.String("rows", "", "run only the rows of TestMatrix whose name contains this")

// Every cell of the classic matrix and of the variants matches theory, and
// the relay connects every cell punching cannot.
func TestMatrix(t *testing.T) {
	testutil.RequireRoot(t)
	rows := slices.DeleteFunc(append(matrix.Rows(nat.Types), matrix.Variants...), func(r matrix.Row) bool {
		return !strings.Contains(r.Name, *rowsFlag)
	})
	if len(rows) == 0 {
		t.Fatalf("no row's name contains %q", *rowsFlag)
	}
	cells, err := matrix.Run(context.Background(), matrix.Options{Rows: rows, Columns: nat.Types})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", matrix.Markdown(cells, rows, nat.Types))
	for _, c := range cells {
		if !c.OK() {
			t.Errorf("%s vs %s: %s; %s%s", c.Row, c.Column, c, c.Reason, c.Err)
		}
	}
}

// BenchmarkMatrix records the wall time of the classic 4x4 matrix: 16
// labs, 16 punches, relays where punching fails.
func BenchmarkMatrix(b *testing.B) {
	testutil.RequireRoot(b)
	rows := matrix.Rows(nat.Types)
	for i := 0; i < b.N; i++ {
		cells, err := matrix.Run(context.Background(), matrix.Options{Rows: rows, Columns: nat.Types})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range cells {
			if !c.OK() {
				b.Fatalf("%s vs %s: %s", c.Row, c.Column, c)
			}
		}
	}
}

// A sharded matrix draws every row and column, with the other shards'
// cells blank, so that each shard's table reads on its own.
func TestMarkdownLeavesOtherShardsBlank(t *testing.T) {
	rows := matrix.Rows([]nat.Type{nat.FullCone, nat.Symmetric})
	cols := []nat.Type{nat.FullCone, nat.Symmetric}
	relayed := true
	cells := []matrix.Cell{
		{Row: "full-cone", Column: nat.FullCone, Expected: true, Punched: true, Done: true},
		{Row: "symmetric", Column: nat.FullCone, Expected: true, Punched: false, Relayed: &relayed, Done: true},
	}
	want := "| alice \\ bob | full-cone | symmetric |\n" +
		"|---|---|---|\n" +
		"| full-cone | ok | |\n" +
		"| symmetric | no, relay ok (UNEXPECTED: theory says ok) | |\n"
	if got := matrix.Markdown(cells, rows, cols); got != want {
		t.Errorf("Markdown =\n%s\nwant\n%s", got, want)
	}
}

// Each cell's scenario, built as Go values, is the lab the matrix always
// built: the same topology as the file written out by hand.
func TestScenario(t *testing.T) {
	const servers = "nodes:\n  servers: {kind: server, services: [stun, turn]}\n"
	variant := func(name string) matrix.Row {
		for _, r := range matrix.Variants {
			if r.Name == name {
				return r
			}
		}
		t.Fatalf("no variant %q", name)
		return matrix.Row{}
	}
	for _, tc := range []struct {
		row  matrix.Row
		col  nat.Type
		want string
	}{
		{matrix.Rows([]nat.Type{nat.Symmetric})[0], nat.FullCone, servers +
			"  nat-a: {kind: nat, type: symmetric}\n  nat-b: {kind: nat, type: full-cone}\n  alice: {kind: host, behind: nat-a}\n  bob: {kind: host, behind: nat-b}\n"},
		{variant("symmetric, sequential ports, prediction"), nat.PortRestrictedCone, servers +
			"  nat-a: {kind: nat, type: symmetric, ports: sequential}\n  nat-b: {kind: nat, type: port-restricted-cone}\n  alice: {kind: host, behind: nat-a}\n  bob: {kind: host, behind: nat-b}\n"},
		{variant("same NAT, no hairpin"), nat.Symmetric, servers +
			"  home: {kind: nat, type: symmetric, hairpin: false}\n  alice: {kind: host, behind: home}\n  bob: {kind: host, behind: home}\n"},
		{variant("full cone behind a port-restricted CGNAT"), nat.AddressRestrictedCone, servers +
			"  carrier: {kind: nat, lan: 100.64.0.0/10, type: port-restricted-cone}\n  nat-a: {kind: nat, behind: carrier, type: full-cone}\n" +
			"  nat-b: {kind: nat, type: address-restricted-cone}\n  alice: {kind: host, behind: nat-a}\n  bob: {kind: host, behind: nat-b}\n"},
		{variant("address-dependent mapping and filtering"), nat.FullCone, servers +
			"  nat-a: {kind: nat, mapping: address-dependent, filtering: address-dependent}\n  nat-b: {kind: nat, type: full-cone}\n  alice: {kind: host, behind: nat-a}\n  bob: {kind: host, behind: nat-b}\n"},
	} {
		t.Run(tc.row.Name+" vs "+string(tc.col), func(t *testing.T) {
			data, err := matrix.Scenario(tc.row, tc.col)
			if err != nil {
				t.Fatal(err)
			}
			got, err := step.Parse("cell.yaml", data)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			want, err := step.Parse("cell.yaml", []byte(tc.want))
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("scenario\n%s\nis\n%s\nwant\n%s", data, got, want)
			}
		})
	}
}
