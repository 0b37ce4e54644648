package matrix_test

import (
	"context"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/matrix"
	"github.com/natlab/natlab/nat"
)

// Every cell of the classic matrix and of the variants matches theory, and
// the relay connects every cell punching cannot.
func TestMatrix(t *testing.T) {
	testutil.RequireRoot(t)
	rows := append(matrix.Rows(nat.Types), matrix.Variants...)
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
