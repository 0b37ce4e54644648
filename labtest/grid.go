package labtest

import (
	"fmt"
	"html/template"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

// A Preset is one row and one column of a Grid: a NAT under a name, such
// as one of the classic types (TypePresets) or a NAT of particular knobs
// ("cgnat", "easy", "hard").
type Preset struct {
	// Name heads the row and the column; it names the cell's subtests.
	Name string
	// NAT is the NAT of the preset; its Name and Behind are set by the
	// cell's lab (see PairSpec).
	NAT NodeSpec
}

// TypePresets makes a preset of each classic type, named as the type.
func TypePresets(types ...nat.Type) []Preset {
	ps := make([]Preset, len(types))
	for i, t := range types {
		ps[i] = Preset{Name: string(t), NAT: NAT(string(t), t)}
	}
	return ps
}

// PairSpec is the lab of one cell unless a Grid says otherwise: a server
// "server" running STUN on the internet, the row's preset as NAT "a" with
// host "alice" behind it, and the column's as NAT "b" with host "bob".
func PairSpec(row, col Preset) Spec {
	a, b := row.NAT, col.NAT
	a.Name, a.Kind, a.Behind = "a", topology.KindNAT, ""
	b.Name, b.Kind, b.Behind = "b", topology.KindNAT, ""
	return Spec{Nodes: []NodeSpec{
		Server("server", topology.ServiceSTUN),
		a, Host("alice", "a"),
		b, Host("bob", "b"),
	}}
}

// Grid runs one test function in a lab of its own for every pair of a list
// of presets, and writes the outcome as a table whose rows and columns are
// the presets, as Tailscale's NAT integration tests write theirs:
//
//	func TestPunchGrid(t *testing.T) {
//		g := labtest.Grid{
//			Presets:  labtest.TypePresets(nat.Types...),
//			Markdown: "grid.md", HTML: "grid.html",
//		}
//		g.Run(t, func(t *testing.T, lb *labtest.Lab) string {
//			// alice behind NAT "a" and bob behind NAT "b" try to meet.
//			return "direct"
//		})
//	}
//
// Each cell is a subtest named ROW/COL (go test -run 'TestPunchGrid/symmetric/'
// runs one row), and the cells run in parallel, as many at once as go test's
// -parallel allows (GOMAXPROCS by default) and at most Parallel if that is
// set. A cell's text is what the function returns, with the time it took
// (not counting the lab's up and down). A cell that failed shows FAIL and
// what the function returned, if it returned (t.Fatal ends it before); one
// that skipped shows SKIP. What a cell logged is in go test's output, as
// for any subtest.
type Grid struct {
	// Presets are the rows and, in the same order, the columns.
	Presets []Preset
	// Lab makes the lab of the cell of row and col; PairSpec if nil.
	Lab func(row, col Preset) Spec
	// Unordered runs only the cells on and above the diagonal, for tests
	// where a pair and its mirror are the same; the cells below show "=".
	Unordered bool
	// Parallel, if above 0, is the most cells that run at once.
	Parallel int
	// Title heads the files; the test's name if empty.
	Title string
	// Markdown and HTML are files the outcome is written to when every
	// cell has run; "" writes none.
	Markdown, HTML string
}

// Outcome is what every cell of a Grid gave.
type Outcome struct {
	Title string
	// Names are the presets' names, the rows' and the columns'.
	Names []string
	// Cells holds the outcome of each cell, by row and column name.
	Cells map[[2]string]Cell
	// Unordered says the cells below the diagonal were not run.
	Unordered bool
}

// Cell is the outcome of one cell.
type Cell struct {
	// Ran says the cell ran (go test -run may leave cells out).
	Ran bool
	// Text is what the test function returned (its first line is shown).
	Text    string
	Failed  bool
	Skipped bool
	// Took is the test function's time, without the lab's up and down.
	Took time.Duration
}

// Run runs fn in every cell, waits for all of them, writes the files and
// returns the outcome. fn gets its cell's lab, which is up already and is
// taken down when the cell ends.
func (g Grid) Run(t *testing.T, fn func(t *testing.T, lb *Lab) string) *Outcome {
	t.Helper()
	spec := g.Lab
	if spec == nil {
		spec = PairSpec
	}
	out := &Outcome{Title: g.Title, Cells: map[[2]string]Cell{}, Unordered: g.Unordered}
	if out.Title == "" {
		out.Title = t.Name()
	}
	names, err := g.names()
	if err != nil {
		t.Fatalf("labtest: %v", err)
	}
	out.Names = names
	var mu sync.Mutex
	var slots chan struct{}
	if g.Parallel > 0 {
		slots = make(chan struct{}, g.Parallel)
	}
	// The group returns when every parallel cell in it has finished.
	t.Run("grid", func(t *testing.T) {
		for i, row := range g.Presets {
			t.Run(row.Name, func(t *testing.T) {
				t.Parallel()
				for j, col := range g.Presets {
					if g.Unordered && j < i {
						continue
					}
					t.Run(col.Name, func(t *testing.T) {
						t.Parallel()
						if slots != nil {
							slots <- struct{}{}
							defer func() { <-slots }()
						}
						var c Cell
						var start time.Time
						defer func() {
							c.Ran, c.Failed, c.Skipped = true, t.Failed(), t.Skipped()
							if !start.IsZero() {
								c.Took = time.Since(start)
							}
							mu.Lock()
							out.Cells[[2]string{row.Name, col.Name}] = c
							mu.Unlock()
						}()
						lb := UpSpec(t, spec(row, col))
						start = time.Now()
						c.Text = fn(t, lb)
					})
				}
			})
		}
	})
	if g.Markdown != "" {
		if err := os.WriteFile(g.Markdown, []byte(out.Markdown()), 0o644); err != nil {
			t.Errorf("labtest: grid: %v", err)
		}
	}
	if g.HTML != "" {
		if err := os.WriteFile(g.HTML, []byte(out.HTML()), 0o644); err != nil {
			t.Errorf("labtest: grid: %v", err)
		}
	}
	return out
}

// names are the presets' names, which name subtests: unique, not empty,
// without a slash (which would split the subtest's name) or a space.
func (g Grid) names() ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, p := range g.Presets {
		if p.Name == "" || seen[p.Name] || strings.ContainsAny(p.Name, "/ ") {
			return nil, fmt.Errorf("grid preset names must be unique, not empty, without / or spaces: %q", p.Name)
		}
		seen[p.Name] = true
		names = append(names, p.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("a grid needs presets")
	}
	return names, nil
}

// cell is the outcome of the cell at row and col, or mirrored if it is
// below the diagonal of an unordered grid, which runs only its mirror.
func (o *Outcome) cell(row, col int) (Cell, bool) {
	if o.Unordered && col < row {
		return Cell{}, true
	}
	return o.Cells[[2]string{o.Names[row], o.Names[col]}], false
}

// label is a cell's text as the files show it.
func (c Cell) label() string {
	switch {
	case !c.Ran:
		return "not run"
	case c.Skipped:
		return "SKIP"
	case c.Failed && c.Text == "":
		return "FAIL"
	case c.Failed:
		return "FAIL: " + firstLine(c.Text)
	}
	return fmt.Sprintf("%s (%s)", firstLine(c.Text), roundTook(c.Took))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// roundTook shows a cell's time to a precision a reader compares.
func roundTook(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// Markdown is the outcome as a markdown table.
func (o *Outcome) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", o.Title)
	b.WriteString("| row \\ column |")
	for _, n := range o.Names {
		fmt.Fprintf(&b, " %s |", mdEscape(n))
	}
	b.WriteString("\n|---|")
	for range o.Names {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for i, row := range o.Names {
		fmt.Fprintf(&b, "| **%s** |", mdEscape(row))
		for j := range o.Names {
			c, mirrored := o.cell(i, j)
			text := c.label()
			if mirrored {
				text = "="
			}
			fmt.Fprintf(&b, " %s |", mdEscape(text))
		}
		b.WriteString("\n")
	}
	if o.Unordered {
		b.WriteString("\n= is the same pair as the cell across the diagonal.\n")
	}
	return b.String()
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

var gridHTML = template.Must(template.New("grid").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body { font: 15px system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: .4em .7em; text-align: left; }
th { background: #eee; }
td.pass { background: #dff3df; }
td.fail { background: #f7d4d4; }
td.skip, td.none { background: #f2f2f2; color: #666; }
</style></head><body>
<h1>{{.Title}}</h1>
<table>
<tr><th>row \ column</th>{{range .Names}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><th>{{.Name}}</th>{{range .Cells}}<td class="{{.Class}}">{{.Text}}</td>{{end}}</tr>
{{end}}</table>
{{if .Unordered}}<p>= is the same pair as the cell across the diagonal.</p>
{{end}}</body></html>
`))

// HTML is the outcome as a page of its own: a table, its cells coloured
// by pass, fail and skip.
func (o *Outcome) HTML() string {
	type cell struct{ Class, Text string }
	type row struct {
		Name  string
		Cells []cell
	}
	var rows []row
	for i, name := range o.Names {
		r := row{Name: name}
		for j := range o.Names {
			c, mirrored := o.cell(i, j)
			class := "pass"
			switch {
			case mirrored, !c.Ran:
				class = "none"
			case c.Skipped:
				class = "skip"
			case c.Failed:
				class = "fail"
			}
			text := c.label()
			if mirrored {
				text = "="
			}
			r.Cells = append(r.Cells, cell{class, text})
		}
		rows = append(rows, r)
	}
	var b strings.Builder
	if err := gridHTML.Execute(&b, map[string]any{"Title": o.Title, "Names": o.Names, "Rows": rows, "Unordered": o.Unordered}); err != nil {
		// The template and its data are this package's: it cannot fail
		// on a strings.Builder.
		panic(err)
	}
	return b.String()
}
